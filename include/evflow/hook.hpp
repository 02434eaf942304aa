// evflow — Prepare, Check and Idle: callbacks around the loop's wait.
#pragma once

#include "../../reactor/hook.hpp"
