// SystemdNotifier against a datagram socket standing in for systemd's
// notification socket ($NOTIFY_SOCKET, the protocol of sd_notify(3)): what
// it sends, and that the watchdog pings only while the probe passes.
#include "daemon/systemd_notifier.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{0, 100 * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~NotifySocket() { close(fd_); }

  // Every message that arrives within `window`.
  std::vector<std::string> Receive(absl::Duration window) {
    std::vector<std::string> got;
    const absl::Time end = absl::Now() + window;
    char buf[4096];
    while (absl::Now() < end) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) got.emplace_back(buf, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
};

int Count(const std::vector<std::string>& messages, const std::string& what) {
  int n = 0;
  for (const std::string& m : messages) n += m == what;
  return n;
}

class SystemdNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_.path() / "notify").native();
    socket_ = std::make_unique<NotifySocket>(path_);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
  }
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<NotifySocket> socket_;
};

TEST_F(SystemdNotifierTest, ReadyStatusStopping) {
  SystemdNotifier notifier([] { return absl::OkStatus(); });
  EXPECT_EQ(notifier.watchdog_interval(), absl::ZeroDuration());
  notifier.Ready("serving 3 devices");
  notifier.Status("1 migration running");
  notifier.Stopping("rolling back");
  const std::vector<std::string> got = socket_->Receive(absl::Seconds(0.3));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "READY=1\nSTATUS=serving 3 devices");
  EXPECT_EQ(got[1], "STATUS=1 migration running");
  EXPECT_EQ(got[2], "STOPPING=1\nSTATUS=rolling back");
}

TEST_F(SystemdNotifierTest, WatchdogPingsOnlyWhileTheProbePasses) {
  setenv("WATCHDOG_USEC", "200000", 1);  // pings every 100 ms
  std::atomic<bool> alive{true};
  std::atomic<int> probes{0};
  SystemdNotifier notifier([&] {
    ++probes;
    return alive.load() ? absl::OkStatus()
                        : absl::UnavailableError("server does not answer");
  });
  EXPECT_EQ(notifier.watchdog_interval(), absl::Milliseconds(200));
  // No pings before READY=1.
  EXPECT_EQ(Count(socket_->Receive(absl::Seconds(0.3)), "WATCHDOG=1"), 0);
  notifier.Ready("up");
  std::vector<std::string> got = socket_->Receive(absl::Seconds(1));
  EXPECT_EQ(got.front(), "READY=1\nSTATUS=up");
  EXPECT_GE(Count(got, "WATCHDOG=1"), 6);

  alive = false;
  socket_->Receive(absl::Seconds(0.15));  // a ping already under way
  const int before = probes.load();
  got = socket_->Receive(absl::Seconds(1));
  EXPECT_EQ(Count(got, "WATCHDOG=1"), 0);
  EXPECT_GE(probes.load() - before, 6);  // still probing, not pinging

  alive = true;
  EXPECT_GE(Count(socket_->Receive(absl::Seconds(0.5)), "WATCHDOG=1"), 2);
}

}  // namespace
}  // namespace vfiomig
