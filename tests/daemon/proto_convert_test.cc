#include "daemon/proto_convert.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using ::testing::ElementsAre;

TEST(DeviceStateProto, KernelValuesTravelUnchangedAndErrorIsEight) {
  for (DeviceState state : kAllDeviceStates) {
    const v1::DeviceState wire = DeviceStateToProto(state);
    if (state == DeviceState::ERROR) {
      EXPECT_EQ(wire, v1::DEVICE_STATE_ERROR);
      EXPECT_EQ(static_cast<int>(wire), 8);
    } else {
      EXPECT_EQ(static_cast<int>(wire), static_cast<int>(state));
    }
    // The wire name is the kernel name with the enum prefix.
    EXPECT_EQ(v1::DeviceState_Name(wire),
              "DEVICE_STATE_" + std::string(DeviceStateName(state)));
    absl::StatusOr<DeviceState> back = DeviceStateFromProto(wire);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, state);
  }
}

TEST(DeviceStateProto, UnspecifiedAndUnknownAreRejected) {
  EXPECT_EQ(DeviceStateFromProto(v1::DEVICE_STATE_UNSPECIFIED).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      DeviceStateFromProto(static_cast<v1::DeviceState>(42)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeviceStateToProto(static_cast<DeviceState>(99)),
            v1::DEVICE_STATE_UNSPECIFIED);
}

TEST(MigrationFeaturesProto, RoundTripsEveryCombination) {
  for (uint32_t flags = 0; flags <= kKnownMigrationFlags; ++flags) {
    google::protobuf::RepeatedField<int> wire;
    MigrationFeaturesToProto(MigrationFeatures(flags), &wire);
    absl::StatusOr<MigrationFeatures> back = MigrationFeaturesFromProto(wire);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->flags(), flags);
  }
  google::protobuf::RepeatedField<int> all;
  MigrationFeaturesToProto(MigrationFeatures(kKnownMigrationFlags | 0x80),
                           &all);
  EXPECT_THAT(all, ElementsAre(v1::MIGRATION_FEATURE_STOP_COPY,
                               v1::MIGRATION_FEATURE_P2P,
                               v1::MIGRATION_FEATURE_PRE_COPY));
}

TEST(MigrationFeaturesProto, RejectsUnspecifiedAndUnknown) {
  google::protobuf::RepeatedField<int> wire;
  wire.Add(v1::MIGRATION_FEATURE_UNSPECIFIED);
  EXPECT_FALSE(MigrationFeaturesFromProto(wire).ok());
  wire.Clear();
  wire.Add(3);
  EXPECT_FALSE(MigrationFeaturesFromProto(wire).ok());
}

DeviceSnapshot MakeSnapshot() {
  DeviceSnapshot snapshot;
  snapshot.info.id = "gpu0";
  snapshot.info.backend = "sim";
  snapshot.info.driver = "sim";
  snapshot.info.description = "a GPU";
  snapshot.info.features =
      MigrationFeatures(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
  snapshot.state = DeviceState::RUNNING_P2P;
  return snapshot;
}

TEST(DeviceSnapshotProto, CarriesEveryField) {
  DeviceSnapshot snapshot = MakeSnapshot();
  snapshot.stop_copy_bytes = 4096;
  snapshot.digest = "00112233";
  v1::Device device;
  DeviceSnapshotToProto(snapshot, &device);
  EXPECT_EQ(device.id(), "gpu0");
  EXPECT_EQ(device.backend(), "sim");
  EXPECT_EQ(device.driver(), "sim");
  EXPECT_EQ(device.description(), "a GPU");
  EXPECT_THAT(device.features(), ElementsAre(v1::MIGRATION_FEATURE_STOP_COPY,
                                             v1::MIGRATION_FEATURE_P2P));
  EXPECT_EQ(device.migration_flags(), 3u);
  EXPECT_EQ(device.state(), v1::DEVICE_STATE_RUNNING_P2P);
  EXPECT_EQ(device.state_name(), "RUNNING_P2P");
  EXPECT_TRUE(device.migratable());
  EXPECT_EQ(device.not_migratable_reason(), "");
  ASSERT_TRUE(device.has_stop_copy_bytes());
  EXPECT_EQ(device.stop_copy_bytes(), 4096u);
  ASSERT_TRUE(device.has_digest());
  EXPECT_EQ(device.digest(), "00112233");
}

TEST(DeviceSnapshotProto, UnreadableStateMakesTheDeviceNotMigratable) {
  DeviceSnapshot snapshot = MakeSnapshot();
  snapshot.state = absl::UnavailableError("ioctl failed: EIO");
  v1::Device device;
  DeviceSnapshotToProto(snapshot, &device);
  EXPECT_EQ(device.state(), v1::DEVICE_STATE_UNSPECIFIED);
  EXPECT_EQ(device.state_name(), "");
  EXPECT_FALSE(device.migratable());
  EXPECT_THAT(device.not_migratable_reason(),
              ::testing::HasSubstr("ioctl failed: EIO"));
  EXPECT_FALSE(device.has_stop_copy_bytes());
  EXPECT_FALSE(device.has_digest());
}

TEST(DeviceSnapshotProto, ErrorStateIsReportedAsErrorNotUnset) {
  DeviceSnapshot snapshot = MakeSnapshot();
  snapshot.state = DeviceState::ERROR;
  v1::Device device;
  DeviceSnapshotToProto(snapshot, &device);
  EXPECT_EQ(device.state(), v1::DEVICE_STATE_ERROR);
  EXPECT_EQ(device.state_name(), "ERROR");
}

TEST(GroupPlanProto, CarriesWavesPathsBlockersAndWarnings) {
  GroupPlan plan;
  plan.migratable = true;
  plan.source.push_back(Wave{
      WavePhase::kP2pQuiesce,
      {PlannedArc{"gpu0", DeviceState::RUNNING, DeviceState::RUNNING_P2P}}});
  plan.source.push_back(
      Wave{WavePhase::kStopCopy,
           {PlannedArc{"gpu0", DeviceState::STOP, DeviceState::STOP_COPY}}});
  plan.destination.push_back(
      Wave{WavePhase::kResuming,
           {PlannedArc{"gpu0", DeviceState::STOP, DeviceState::RESUMING}}});
  plan.devices.push_back(DeviceRoute{
      "gpu0",
      {DeviceState::RUNNING, DeviceState::RUNNING_P2P, DeviceState::STOP},
      {DeviceState::STOP, DeviceState::RESUMING},
      {"has P2P"}});
  plan.blockers.push_back(Blocker{"", "group-level"});
  plan.warnings.push_back("accepted a risk");

  v1::MigrationPlan wire;
  GroupPlanToProto(plan, &wire);
  EXPECT_TRUE(wire.migratable());
  ASSERT_EQ(wire.source_waves_size(), 2);
  EXPECT_EQ(wire.source_waves(0).phase(),
            std::string(WavePhaseName(WavePhase::kP2pQuiesce)));
  EXPECT_EQ(wire.source_waves(0).description(),
            std::string(WavePhaseDescription(WavePhase::kP2pQuiesce)));
  ASSERT_EQ(wire.source_waves(0).arcs_size(), 1);
  const v1::Arc& quiesce = wire.source_waves(0).arcs(0);
  EXPECT_EQ(quiesce.device_id(), "gpu0");
  EXPECT_EQ(quiesce.from(), v1::DEVICE_STATE_RUNNING);
  EXPECT_EQ(quiesce.to(), v1::DEVICE_STATE_RUNNING_P2P);
  // Entering RUNNING_P2P drains; STOP -> STOP_COPY does not.
  EXPECT_TRUE(quiesce.drain());
  EXPECT_FALSE(wire.source_waves(1).arcs(0).drain());
  ASSERT_EQ(wire.destination_waves_size(), 1);
  EXPECT_EQ(wire.destination_waves(0).arcs(0).to(), v1::DEVICE_STATE_RESUMING);
  ASSERT_EQ(wire.devices_size(), 1);
  EXPECT_THAT(wire.devices(0).source_path(),
              ElementsAre(v1::DEVICE_STATE_RUNNING,
                          v1::DEVICE_STATE_RUNNING_P2P, v1::DEVICE_STATE_STOP));
  EXPECT_THAT(wire.devices(0).destination_path(),
              ElementsAre(v1::DEVICE_STATE_STOP, v1::DEVICE_STATE_RESUMING));
  EXPECT_THAT(wire.devices(0).reasons(), ElementsAre("has P2P"));
  ASSERT_EQ(wire.blockers_size(), 1);
  EXPECT_EQ(wire.blockers(0).device_id(), "");
  EXPECT_EQ(wire.blockers(0).reason(), "group-level");
  EXPECT_THAT(wire.warnings(), ElementsAre("accepted a risk"));
}

TEST(PlanOptionsProto, CarriesAllowNoP2p) {
  v1::PlanOptions wire;
  EXPECT_FALSE(PlanOptionsFromProto(wire).allow_no_p2p);
  wire.set_allow_no_p2p(true);
  EXPECT_TRUE(PlanOptionsFromProto(wire).allow_no_p2p);
}

TEST(GrpcStatus, KeepsCodeAndMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status not_found = ToGrpcStatus(absl::NotFoundError("no gpu9"));
  EXPECT_EQ(not_found.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(not_found.error_message(), "no gpu9");
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace vfiomig
