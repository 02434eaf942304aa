// echo: copies standard input to standard output through an evflow loop, and counts
// the idle iterations it spent waiting. Try: `seq 5 | build/release/examples/echo`.
// With a regular file as input it shows the error evflow reports for it (EPERM).
#include <unistd.h>

#include <cstdio>

#include <evflow/evflow.hpp>

int main() {
  evflow::Loop loop;
  if (auto err = loop.open()) {
    std::fprintf(stderr, "echo: cannot open the loop: %s\n", err.message());
    return 1;
  }
  long bytes = 0;
  evflow::Io in(loop);
  auto on_readable = [&bytes](evflow::Io& self, evflow::Events) {
    char buffer[4096];
    const ssize_t n = ::read(self.fd(), buffer, sizeof buffer);
    if (n <= 0) {  // end of input (or an error): stop watching, and run() returns
      self.stop();
      return;
    }
    bytes += n;
    (void)!::write(STDOUT_FILENO, buffer, static_cast<size_t>(n));
  };
  if (auto err = in.start(STDIN_FILENO, evflow::Readable, on_readable)) {
    std::fprintf(stderr, "echo: cannot watch standard input: %s\n", err.message());
    return 1;
  }
  if (auto err = loop.run()) {
    std::fprintf(stderr, "echo: %s\n", err.message());
    return 1;
  }
  std::fprintf(stderr, "echo: %ld bytes in %llu iterations\n", bytes,
               static_cast<unsigned long long>(loop.iteration()));
  return 0;
}
