// Thread names: set, cut to the kernel's limit, and given back by pooled
// threads when their job returns.
#include "daemon/engine/thread_name.h"

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/engine/thread_pool.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

TEST(ThreadNameTest, NamesTheCallingThread) {
  std::string seen;
  std::thread t([&] {
    NameThisThread("migd-test");
    seen = ThisThreadName();
  });
  t.join();
  EXPECT_EQ(seen, "migd-test");
}

TEST(ThreadNameTest, LongNamesAreCutNotRefused) {
  std::string seen;
  std::thread t([&] {
    NameThisThread("a-name-much-longer-than-fifteen");
    seen = ThisThreadName();
  });
  t.join();
  EXPECT_EQ(seen, "a-name-much-lon");
  EXPECT_EQ(seen.size(), kMaxThreadName);
}

TEST(ThreadNameTest, DeviceNamesKeepThePrefix) {
  // A PCI address fits whole after a three-byte prefix.
  EXPECT_EQ(ThreadName("dw:", "0000:3b:00.0"), "dw:0000:3b:00.0");
  EXPECT_EQ(ThreadName("st:", "gpu0"), "st:gpu0");
  EXPECT_EQ(ThreadName("dc:", "a-very-long-device-identifier"),
            "dc:a-very-long-");
  EXPECT_EQ(ThreadName("a-prefix-longer-than-the-limit", "x"),
            "a-prefix-longer");
  EXPECT_EQ(ThreadName("", ""), "");
}

TEST(ThreadNameTest, PooledThreadsAreIdleNamedAndGetTheirNameBack) {
  ThreadPool pool;
  std::string before, during;
  absl::Notification renamed, release;
  pool.Run([&] {
    before = ThisThreadName();
    NameThisThread("st:gpu0");
    during = ThisThreadName();
    renamed.Notify();
    release.WaitForNotification();
  });
  renamed.WaitForNotification();
  EXPECT_EQ(before, ThreadPool::kIdleName);
  EXPECT_EQ(during, "st:gpu0");
  release.Notify();
  // The same thread takes the next job (it is the only one), named idle
  // again.
  std::string next;
  absl::Notification done;
  // Wait until the first job's thread is idle, so that it takes this one.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (pool.idle() != 1) {
    ASSERT_LT(absl::Now(), deadline) << "the first job's thread never idled";
    absl::SleepFor(absl::Milliseconds(1));
  }
  pool.Run([&] {
    next = ThisThreadName();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(next, ThreadPool::kIdleName);
}

}  // namespace
}  // namespace vfiomig
