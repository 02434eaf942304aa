#include "fatal.hpp"

#include <unistd.h>
#include <cstdlib>
#include <cstring>

namespace evflow::detail {

void fatal(const char* message) noexcept {
  // write(2) is async-signal-safe; partial writes are not worth retrying on the way out.
  const char prefix[] = "evflow: fatal: ";
  (void)!::write(2, prefix, sizeof prefix - 1);
  (void)!::write(2, message, std::strlen(message));
  (void)!::write(2, "\n", 1);
  std::abort();
}

}  // namespace evflow::detail
