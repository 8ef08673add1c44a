// Arc latencies and drains, observability during a hanging drain, and
// devices far larger than memory.
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "plugins/sim/sim_device.h"
#include "plugins/sim/sim_stream_format.h"
#include "tests/plugins/sim/sim_test_util.h"

namespace vfiomig::sim {
namespace {

using testing::DeviceConfig;
using testing::FakeClock;
using testing::kAllFeatures;
using S = DeviceState;

TEST(SimTimingTest, ArcsTakeLatencyAndDrainArcsDrainToo) {
  FakeClock clock;
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, 100);
  c.arc_latency = absl::Milliseconds(7);
  c.drain = absl::Milliseconds(100);
  auto device = SimDevice::Create(c, clock.clock());
  absl::Time t0 = clock.Now();
  ASSERT_TRUE(device->SetState(S::RUNNING_P2P).ok());  // drain arc
  EXPECT_EQ(clock.Now() - t0, absl::Milliseconds(107));
  ASSERT_TRUE(device->SetState(S::RUNNING).ok());
  EXPECT_EQ(clock.Now() - t0, absl::Milliseconds(114));
  // A refused arc does not wait.
  EXPECT_FALSE(device->SetState(S::STOP).ok());
  EXPECT_EQ(clock.Now() - t0, absl::Milliseconds(114));
}

TEST(SimTimingTest, DrainDoesNotBlockObservers) {
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, 3 * kBlockSize);
  // Margins for a loaded machine: observers that waited for the drain would
  // take most of its 3 s; ones that do not return in far less than that
  // even when the scheduler is slow.
  c.drain = absl::Seconds(3);
  auto device = SimDevice::Create(c);  // the real clock
  std::atomic<bool> done = false;
  absl::Time start = absl::Now();
  std::thread arc([&] {
    EXPECT_TRUE(device->SetState(S::RUNNING_P2P).ok());
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  absl::Time t = absl::Now();
  EXPECT_EQ(device->GetState().value(), S::RUNNING);  // the arc is not done
  EXPECT_TRUE(device->ContentDigest().ok());
  EXPECT_TRUE(device->StopCopySize().ok());
  EXPECT_LT(absl::Now() - t, absl::Milliseconds(1500));
  EXPECT_FALSE(done);
  arc.join();
  EXPECT_GE(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(device->GetState().value(), S::RUNNING_P2P);
}

uint64_t ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) {
    pages_resident = 0;
  }
  std::fclose(f);
  return static_cast<uint64_t>(pages_resident) * 4096;
}

TEST(SimTimingTest, HugeDevicesCostMetadataNotState) {
  uint64_t before = ResidentBytes();
  absl::Time t = absl::Now();
  auto huge = SimDevice::Create(
      DeviceConfig("huge", kAllFeatures, uint64_t{512} << 30));
  EXPECT_LT(absl::Now() - t, absl::Seconds(1));
  EXPECT_EQ(huge->StopCopySize().value(), FullStreamSize(uint64_t{512} << 30));
  // 512 GiB of state: metadata of half a million blocks, well under 64 MiB.
  EXPECT_LT(ResidentBytes() - before, uint64_t{64} << 20);

  auto gib =
      SimDevice::Create(DeviceConfig("gib", kAllFeatures, uint64_t{1} << 30));
  std::string digest = gib->ContentDigest().value();  // hashes 1 GiB
  EXPECT_EQ(digest.size(), 16u);
  EXPECT_EQ(gib->ContentDigest().value(), digest);  // cached now
  EXPECT_LT(ResidentBytes() - before, uint64_t{128} << 20);
}

}  // namespace
}  // namespace vfiomig::sim
