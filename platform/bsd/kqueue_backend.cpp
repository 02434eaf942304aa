// evflow — the kqueue backend for the system this is compiled for (FreeBSD, macOS): one
// explicit instantiation, so that the library carries its code and every build of it is
// checked by the compiler.
#include "kqueue_sys.hpp"

#if defined(__FreeBSD__) || defined(__APPLE__)
namespace evflow::detail {
template class BasicKqueueBackend<NativeKqueue>;
}  // namespace evflow::detail
#endif
