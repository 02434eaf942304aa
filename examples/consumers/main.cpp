// The program each way of using evflow as a package builds (examples/consumers/*/):
// it includes <evflow/evflow.hpp> and nothing else of evflow, runs a loop until a 1 ms
// timer stops it, and exits 0 when the timer fired.
#include <chrono>
#include <cstdio>

#include <evflow/evflow.hpp>

int main() {
  evflow::Loop loop;
  if (auto err = loop.open()) {
    std::fprintf(stderr, "consumer: cannot open the loop: %s\n", err.message());
    return 1;
  }
  bool fired = false;
  evflow::Timer timer(loop);
  auto on_timeout = [&fired](evflow::Timer& self) {  // a Timer's callback captures one pointer
    fired = true;
    self.loop().stop();
  };
  if (auto err = timer.start(std::chrono::milliseconds(1), on_timeout)) {
    std::fprintf(stderr, "consumer: cannot start the timer: %s\n", err.message());
    return 1;
  }
  if (auto err = loop.run()) {
    std::fprintf(stderr, "consumer: run: %s\n", err.message());
    return 1;
  }
  if (!fired) {
    std::fprintf(stderr, "consumer: the loop returned before the timer fired\n");
    return 1;
  }
  return 0;
}
