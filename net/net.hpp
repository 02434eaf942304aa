// evflow — cooperative sockets on tasks: SocketAddress; TcpListener, TcpStream;
// UnixListener, UnixStream; UdpSocket, UnixDatagram. Each read, write, accept and connect
// is an await of a task (net/socket.hpp says how it runs).
#pragma once

#include "address.hpp"
#include "datagram.hpp"
#include "listener.hpp"
#include "resolve.hpp"
#include "socket.hpp"
#include "stream.hpp"
