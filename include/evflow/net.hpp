// evflow — sockets for tasks: TCP, UDP and Unix-domain streams and datagrams, addresses.
#pragma once

#include "../../net/net.hpp"
