// The test runner: GoogleTest, plus a watchdog so that a hang fails loudly instead of
// stalling CI. Each test gets 120 s of wall time (generous on purpose: the aarch64
// suite runs under emulation on a loaded machine); tests never rely on speed.
#include <gtest/gtest.h>

#include <csignal>

#if defined(_WIN32)
#include <winsock2.h>
#else
#include <unistd.h>
#endif

namespace {

#if !defined(_WIN32)
class Watchdog : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { ::alarm(120); }
  void OnTestEnd(const ::testing::TestInfo&) override { ::alarm(0); }
};
#endif

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
#if defined(_WIN32)
  // No alarm(): the wine runner (.ci/wine-run) bounds the whole run instead. Winsock for
  // the tests' own sockets (tests/support/descriptors.hpp).
  WSADATA winsock;
  if (WSAStartup(MAKEWORD(2, 2), &winsock) != 0) return 1;
#else
  ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog);
  std::signal(SIGPIPE, SIG_IGN);
#endif
  return RUN_ALL_TESTS();
}
