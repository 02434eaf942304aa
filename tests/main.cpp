// The test runner: GoogleTest, plus a watchdog so that a hang fails loudly instead of
// stalling CI. Each test gets 120 s of wall time (generous on purpose: the aarch64
// suite runs under emulation on a loaded machine); tests never rely on speed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

namespace {

class Watchdog : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { ::alarm(120); }
  void OnTestEnd(const ::testing::TestInfo&) override { ::alarm(0); }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog);
  std::signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
