// Per-device deadlines from the daemon defaults, the request and the
// per-driver overrides: request > driver > default, per kind.
#include "daemon/migration/driver_deadlines.h"

#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using absl::Milliseconds;

ArcDeadlines Defaults() {
  ArcDeadlines d;
  d.drain = Milliseconds(300);
  d.arc = Milliseconds(1000);
  return d;
}

const std::vector<DeviceDriver> kGroup = {{"gpu0", "nvgrace_gpu_vfio_pci"},
                                          {"nic0", "mlx5_vfio_pci"},
                                          {"nic1", "mlx5_vfio_pci"},
                                          {"acc0", "other"}};

DriverDeadlineOverrides Overrides() {
  DriverDeadlineOverrides o;
  o["mlx5_vfio_pci"].drain = Milliseconds(30000);
  o["nvgrace_gpu_vfio_pci"].drain = Milliseconds(60000);
  o["nvgrace_gpu_vfio_pci"].arc = Milliseconds(20000);
  return o;
}

TEST(ResolveDeadlines, NoOverridesKeepsTheDefaults) {
  ArcDeadlines d = ResolveDeadlines(Defaults(), 0, 0, {}, kGroup);
  EXPECT_EQ(d.drain, Milliseconds(300));
  EXPECT_EQ(d.arc, Milliseconds(1000));
  EXPECT_TRUE(d.by_device.empty());
  EXPECT_EQ(d.For("nic0", DeviceState::RUNNING, DeviceState::RUNNING_P2P),
            Milliseconds(300));
  EXPECT_EQ(d.For("nic0", DeviceState::STOP, DeviceState::STOP_COPY),
            Milliseconds(1000));
}

TEST(ResolveDeadlines, DriverBeatsTheDefaultPerKind) {
  ArcDeadlines d = ResolveDeadlines(Defaults(), 0, 0, Overrides(), kGroup);
  EXPECT_EQ(d.drain, Milliseconds(300));
  EXPECT_EQ(d.by_device.size(), 3u);
  // mlx5: drain only.
  for (const char* nic : {"nic0", "nic1"}) {
    EXPECT_EQ(d.For(nic, DeviceState::RUNNING, DeviceState::RUNNING_P2P),
              Milliseconds(30000));
    EXPECT_EQ(d.For(nic, DeviceState::RUNNING_P2P, DeviceState::STOP),
              Milliseconds(30000));
    EXPECT_EQ(d.For(nic, DeviceState::STOP, DeviceState::STOP_COPY),
              Milliseconds(1000));
  }
  EXPECT_EQ(d.For("gpu0", DeviceState::RUNNING, DeviceState::RUNNING_P2P),
            Milliseconds(60000));
  EXPECT_EQ(d.For("gpu0", DeviceState::STOP, DeviceState::RESUMING),
            Milliseconds(20000));
  EXPECT_EQ(d.For("acc0", DeviceState::RUNNING, DeviceState::RUNNING_P2P),
            Milliseconds(300));
  EXPECT_EQ(d.Of("acc0").arc, Milliseconds(1000));
  EXPECT_EQ(d.Of("gpu0").arc, Milliseconds(20000));
}

TEST(ResolveDeadlines, RequestBeatsDriverPerKind) {
  // The request sets the drain only: drivers still decide the other kind.
  ArcDeadlines d = ResolveDeadlines(Defaults(), 500, 0, Overrides(), kGroup);
  EXPECT_EQ(d.drain, Milliseconds(500));
  EXPECT_EQ(d.arc, Milliseconds(1000));
  EXPECT_EQ(d.For("nic0", DeviceState::RUNNING, DeviceState::RUNNING_P2P),
            Milliseconds(500));
  EXPECT_FALSE(d.by_device.count("nic0"));  // nothing of its own left
  EXPECT_EQ(d.For("gpu0", DeviceState::RUNNING, DeviceState::RUNNING_P2P),
            Milliseconds(500));
  EXPECT_EQ(d.For("gpu0", DeviceState::STOP, DeviceState::STOP_COPY),
            Milliseconds(20000));

  d = ResolveDeadlines(Defaults(), 500, 700, Overrides(), kGroup);
  EXPECT_TRUE(d.by_device.empty());
  EXPECT_EQ(d.For("gpu0", DeviceState::STOP, DeviceState::STOP_COPY),
            Milliseconds(700));
}

TEST(ResolveDeadlines, OverrideEqualToTheBaseAddsNothing) {
  DriverDeadlineOverrides o;
  o["other"].drain = Milliseconds(300);
  EXPECT_TRUE(ResolveDeadlines(Defaults(), 0, 0, o, kGroup).by_device.empty());
}

}  // namespace
}  // namespace vfiomig
