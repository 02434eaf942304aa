// evflow — Io: readiness of a descriptor (a socket on Windows).
#pragma once

#include "../../reactor/io.hpp"
