// evflow — Signal: a POSIX signal (a console control event on Windows), delivered in the loop.
#pragma once

#include "../../reactor/signal.hpp"
