// evflow — Child: the exit of a child process.
#pragma once

#include "../../reactor/child.hpp"
