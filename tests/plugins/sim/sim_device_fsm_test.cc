// SimDevice against the kernel FSM: which arcs it accepts, ERROR and reset,
// injected arc failures, and its DeviceInfo.
#include <set>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "plugins/sim/sim_device.h"
#include "plugins/sim/sim_stream_format.h"
#include "tests/plugins/sim/sim_test_util.h"

namespace vfiomig::sim {
namespace {

using testing::DeviceConfig;
using testing::FakeClock;
using testing::kAllFeatures;
using testing::SaveAll;
using testing::Walk;
using S = DeviceState;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr uint64_t kSmall = 1000;  // one short block: cheap to save

// Puts a fresh device into `from`; true when it got there.
bool Prepare(SimDevice& device, S from, std::unique_ptr<DataSession>& keep) {
  if (from == S::ERROR) return false;
  if (from == S::RUNNING) return true;  // where every device starts
  absl::StatusOr<std::unique_ptr<DataSession>> s = Walk(device, from);
  if (!s.ok()) return false;
  keep = *std::move(s);
  if (from == S::RESUMING) {
    // RESUMING -> STOP needs a complete stream to succeed.
    FakeClock clock;
    std::shared_ptr<SimDevice> src = SimDevice::Create(
        DeviceConfig("src", VFIO_MIGRATION_STOP_COPY, kSmall), clock.clock());
    absl::StatusOr<std::vector<uint8_t>> stream = SaveAll(*src, 4096);
    EXPECT_TRUE(stream.ok()) << stream.status();
    EXPECT_TRUE(keep->Write(*stream).ok());
  }
  return device.GetState().value() == from;
}

// The set of arcs the device accepts, found by trying every pair.
std::set<std::pair<S, S>> AcceptedArcs(uint32_t flags) {
  std::set<std::pair<S, S>> accepted;
  for (S from : kAllDeviceStates) {
    for (S to : kAllDeviceStates) {
      FakeClock clock;
      std::shared_ptr<SimDevice> device =
          SimDevice::Create(DeviceConfig("d", flags, kSmall), clock.clock());
      std::unique_ptr<DataSession> keep;
      if (!Prepare(*device, from, keep)) continue;
      absl::StatusOr<std::unique_ptr<DataSession>> r = device->SetState(to);
      bool single = IsSingleArc(MigrationFeatures(flags), from, to);
      EXPECT_EQ(r.ok(), single)
          << ArcName(from, to) << " flags " << flags << ": " << r.status();
      if (r.ok()) {
        accepted.insert({from, to});
        EXPECT_EQ(device->GetState().value(), to);
        EXPECT_EQ(*r != nullptr,
                  ArcOpensDataSession(from, to) !=
                      decltype(ArcOpensDataSession(from, to))::kNone)
            << ArcName(from, to);
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_EQ(device->GetState().value(), from) << ArcName(from, to);
      }
    }
  }
  return accepted;
}

TEST(SimDeviceFsmTest, AcceptsExactlyTheSingleKernelArcsForEveryFeatureSet) {
  for (uint32_t flags = 0; flags <= kAllFeatures; ++flags) {
    SCOPED_TRACE(MigrationFeatures(flags).ToString());
    std::set<std::pair<S, S>> accepted = AcceptedArcs(flags);
    if (!(flags & VFIO_MIGRATION_STOP_COPY)) {
      EXPECT_TRUE(accepted.empty());
    }
  }
}

// Written out from the kernel's vfio_from_fsm_table rather than computed,
// so that a wrong oracle cannot hide a wrong device.
TEST(SimDeviceFsmTest, FullFeatureArcsAreTheKernelsFifteen) {
  std::set<std::pair<S, S>> expected = {
      {S::RUNNING, S::RUNNING_P2P},      {S::RUNNING, S::PRE_COPY},
      {S::RUNNING_P2P, S::RUNNING},      {S::RUNNING_P2P, S::STOP},
      {S::RUNNING_P2P, S::PRE_COPY_P2P}, {S::STOP, S::RUNNING_P2P},
      {S::STOP, S::STOP_COPY},           {S::STOP, S::RESUMING},
      {S::STOP_COPY, S::STOP},           {S::RESUMING, S::STOP},
      {S::PRE_COPY, S::RUNNING},         {S::PRE_COPY, S::PRE_COPY_P2P},
      {S::PRE_COPY_P2P, S::RUNNING_P2P}, {S::PRE_COPY_P2P, S::STOP_COPY},
      {S::PRE_COPY_P2P, S::PRE_COPY},
  };
  EXPECT_EQ(AcceptedArcs(kAllFeatures), expected);
}

TEST(SimDeviceFsmTest, StopCopyOnlyArcs) {
  std::set<std::pair<S, S>> expected = {
      {S::RUNNING, S::STOP},   {S::STOP, S::RUNNING},  {S::STOP, S::STOP_COPY},
      {S::STOP_COPY, S::STOP}, {S::STOP, S::RESUMING}, {S::RESUMING, S::STOP},
  };
  EXPECT_EQ(AcceptedArcs(VFIO_MIGRATION_STOP_COPY), expected);
}

TEST(SimDeviceFsmTest, RefusalExplainsTheKernelPath) {
  FakeClock clock;
  auto device = SimDevice::Create(DeviceConfig("gpu0", kAllFeatures, kSmall),
                                  clock.clock());
  absl::StatusOr<std::unique_ptr<DataSession>> r =
      device->SetState(S::STOP_COPY);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Msg(r.status()),
            "gpu0: RUNNING>STOP_COPY is not a single kernel arc for features "
            "'stop_copy,p2p,pre_copy' (kernel path: RUNNING RUNNING_P2P STOP "
            "STOP_COPY)");
  r = device->SetState(S::RUNNING);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Msg(r.status()).find("already in RUNNING"), std::string::npos);
  r = device->SetState(S::ERROR);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(device->GetState().value(), S::RUNNING);
}

TEST(SimDeviceFsmTest, ErrorIsLeftOnlyByReset) {
  FakeClock clock;
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSmall);
  c.fail_arcs = {{S::RUNNING, S::RUNNING_P2P, /*to_error=*/true}};
  auto device = SimDevice::Create(c, clock.clock());
  absl::StatusOr<std::unique_ptr<DataSession>> r =
      device->SetState(S::RUNNING_P2P);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Msg(r.status()).find("device is in ERROR"), std::string::npos);
  EXPECT_EQ(device->GetState().value(), S::ERROR);
  for (S to : kAllDeviceStates) {
    r = device->SetState(to);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
        << DeviceStateName(to);
    EXPECT_EQ(device->GetState().value(), S::ERROR);
  }
  ASSERT_TRUE(device->Reset().ok());
  EXPECT_EQ(device->GetState().value(), S::RUNNING);
  EXPECT_TRUE(device->SetState(S::PRE_COPY).ok());
}

TEST(SimDeviceFsmTest, FailedArcLeavesTheDeviceInItsSourceState) {
  FakeClock clock;
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSmall);
  c.fail_arcs = {{S::RUNNING_P2P, S::STOP, /*to_error=*/false}};
  auto device = SimDevice::Create(c, clock.clock());
  ASSERT_TRUE(device->SetState(S::RUNNING_P2P).ok());
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<std::unique_ptr<DataSession>> r = device->SetState(S::STOP);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(Msg(r.status()),
              "gpu0: RUNNING_P2P>STOP failed (fail_arcs); device is in "
              "RUNNING_P2P");
    EXPECT_EQ(device->GetState().value(), S::RUNNING_P2P);
  }
  // Other arcs are unaffected: the rollback works.
  EXPECT_TRUE(device->SetState(S::RUNNING).ok());
}

TEST(SimDeviceFsmTest, FailingIntoErrorClosesTheSaveSession) {
  FakeClock clock;
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSmall);
  c.fail_arcs = {{S::PRE_COPY, S::PRE_COPY_P2P, /*to_error=*/true}};
  auto device = SimDevice::Create(c, clock.clock());
  absl::StatusOr<std::unique_ptr<DataSession>> session =
      device->SetState(S::PRE_COPY);
  ASSERT_TRUE(session.ok() && *session);
  uint8_t buf[16];
  ASSERT_TRUE((*session)->Read(absl::MakeSpan(buf)).ok());
  EXPECT_FALSE(device->SetState(S::PRE_COPY_P2P).ok());
  EXPECT_EQ(device->GetState().value(), S::ERROR);
  absl::StatusOr<size_t> n = (*session)->Read(absl::MakeSpan(buf));
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(Msg(n.status()).find("session is closed (device is ERROR)"),
            std::string::npos);
}

TEST(SimDeviceFsmTest, InfoDescribesTheDevice) {
  FakeClock clock;
  auto device = SimDevice::Create(
      DeviceConfig("gpu0", kAllFeatures, uint64_t{4} << 30), clock.clock());
  const DeviceInfo& info = device->info();
  EXPECT_EQ(info.id, "gpu0");
  EXPECT_EQ(info.backend, "sim");
  EXPECT_EQ(info.driver, "sim");
  EXPECT_EQ(info.features.flags(), kAllFeatures);
  EXPECT_TRUE(info.migratable);
  EXPECT_EQ(info.description,
            "simulated device, 4 GiB of state, migration "
            "'stop_copy,p2p,pre_copy'");

  SimDeviceConfig c = DeviceConfig("nic0", VFIO_MIGRATION_P2P, 100);
  c.description = "a NIC without migration";
  auto nic = SimDevice::Create(c, clock.clock());
  EXPECT_FALSE(nic->info().migratable);
  EXPECT_EQ(nic->info().not_migratable_reason,
            "no STOP_COPY migration support");
  EXPECT_EQ(nic->info().description, "a NIC without migration");
  EXPECT_FALSE(nic->SetState(S::RUNNING_P2P).ok());
}

}  // namespace
}  // namespace vfiomig::sim
