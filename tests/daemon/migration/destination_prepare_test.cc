// PeerService.Prepare over gRPC: every device is checked before any is
// touched, and a refusal leaves every target RUNNING with its content.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "daemon/migration/migration_manager.h"
#include "tests/daemon/migration/destination_test_fixture.h"

namespace vfiomig::testing {
namespace {

using ::testing::HasSubstr;

// The verdict for `target`, or an empty one.
v1::DeviceVerdict VerdictFor(const v1::PrepareResponse& response,
                             const std::string& target) {
  for (const v1::DeviceVerdict& v : response.verdicts()) {
    if (v.target_device_id() == target) return v;
  }
  return v1::DeviceVerdict();
}

using DestinationPrepareTest = DestinationTest;

TEST_F(DestinationPrepareTest, AcceptsAndEntersResuming) {
  SavedStream gpu, nic;
  PrepareTwo("m-ok", &gpu, &nic);
  EXPECT_EQ(leases_.Owner("dgpu0"), "m-ok");
  const v1::Migration record = Record("m-ok");
  EXPECT_EQ(record.role(), "destination");
  EXPECT_EQ(record.peer(), kSourceHost);
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  ASSERT_EQ(record.devices_size(), 2);
  EXPECT_EQ(record.devices(0).state(), v1::DEVICE_STATE_RESUMING);
  EXPECT_EQ(service_->ListMigrations().size(), 1u);
}

TEST_F(DestinationPrepareTest, RefusesEveryBadDeviceAndTouchesNone) {
  const SavedStream gpu = Save("gpu0", "m-bad");
  const SavedStream nic = Save("nic0", "m-bad");
  // Someone else's migration holds dnic0.
  absl::StatusOr<Lease> other = leases_.Acquire({"dnic0"}, "m-other");
  ASSERT_TRUE(other.ok());

  v1::PrepareRequest request =
      PrepareRequestFor("m-bad",
                        {{"gpu0", "dgpu0"},    // fine on its own
                         {"gpu0", "nothere"},  // unknown target
                         {"gpu0", "plain0"},   // lacks pre_copy
                         {"gpu0", "small0"},   // too small
                         {"nic0", "dnic0"},    // busy
                         {"gpu0", "dgpu0"}},   // named twice
                        {&gpu, &gpu, &gpu, &gpu, &nic, &gpu});
  v1::PrepareResponse response;
  ASSERT_TRUE(Prepare(request, &response).ok());
  EXPECT_FALSE(response.ready());
  ASSERT_EQ(response.verdicts_size(), 6);
  EXPECT_TRUE(response.verdicts(0).accepted()) << response.DebugString();
  EXPECT_THAT(VerdictFor(response, "nothere").reason(),
              HasSubstr("no device 'nothere'"));
  EXPECT_THAT(VerdictFor(response, "plain0").reason(),
              HasSubstr("lacks migration features the source had: pre_copy"));
  EXPECT_THAT(VerdictFor(response, "small0").reason(), HasSubstr("capacity"));
  EXPECT_THAT(VerdictFor(response, "dnic0").reason(),
              HasSubstr("busy: in migration m-other"));
  EXPECT_FALSE(response.verdicts(5).accepted());
  EXPECT_THAT(response.verdicts(5).reason(), HasSubstr("named twice"));
  EXPECT_THAT(response.error(), HasSubstr("small0"));

  other->Release();
  ExpectTargetsUntouched();
  // Recorded as refused; the id is free again.
  EXPECT_EQ(Record("m-bad").outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(service_->registry().active(), 0u);
}

TEST_F(DestinationPrepareTest, RefusesHeaderOfAnotherMigrationOrDevice) {
  SavedStream gpu = Save("gpu0", "m-other");
  v1::PrepareRequest request =
      PrepareRequestFor("m-hdr", {{"gpu1", "dgpu0"}}, {&gpu});
  v1::PrepareResponse response;
  ASSERT_TRUE(Prepare(request, &response).ok());
  EXPECT_FALSE(response.ready());
  EXPECT_THAT(response.verdicts(0).reason(),
              HasSubstr("header is for migration 'm-other'"));
  EXPECT_THAT(response.verdicts(0).reason(),
              HasSubstr("describes source device 'gpu0'"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationPrepareTest, RefusesTargetNotRunning) {
  absl::StatusOr<std::shared_ptr<Device>> d = destination_->Find("dnic0");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->SetState(DeviceState::RUNNING_P2P).ok());
  SavedStream nic = Save("nic0", "m-state");
  v1::PrepareResponse response;
  ASSERT_TRUE(Prepare(PrepareRequestFor("m-state", {{"nic0", "dnic0"}}, {&nic}),
                      &response)
                  .ok());
  EXPECT_FALSE(response.ready());
  EXPECT_THAT(response.verdicts(0).reason(),
              HasSubstr("RUNNING_P2P, not RUNNING"));
  EXPECT_EQ(TargetState("dnic0"), DeviceState::RUNNING_P2P);
}

TEST_F(DestinationPrepareTest, DuplicateIdIsAlreadyExists) {
  SavedStream gpu, nic;
  PrepareTwo("m-dup", &gpu, &nic);
  v1::PrepareResponse response;
  grpc::Status status = Prepare(
      PrepareRequestFor("m-dup", {{"nic0", "small0"}}, {&nic}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // The first one is unaffected.
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RESUMING);
  EXPECT_EQ(TargetState("small0"), DeviceState::RUNNING);
}

TEST_F(DestinationPrepareTest, MalformedRequestIsInvalidArgument) {
  SavedStream nic = Save("nic0", "m x");
  v1::PrepareResponse response;
  EXPECT_EQ(
      Prepare(PrepareRequestFor("m x", {{"nic0", "dnic0"}}, {&nic}), &response)
          .error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  v1::PrepareRequest empty;
  empty.set_migration_id("m-empty");
  empty.set_source_host(kSourceHost);
  EXPECT_EQ(Prepare(empty, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A deadline of weeks would let a hung destination arc hold the device.
  SavedStream gpu = Save("gpu0", "m-slow");
  v1::PrepareRequest slow =
      PrepareRequestFor("m-slow", {{"gpu0", "dgpu0"}}, {&gpu});
  slow.set_arc_timeout_ms(kMaxArcTimeoutMs + 1);
  grpc::Status status = Prepare(slow, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("arc_timeout_ms"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationPrepareTest, FailedWaveRollsBack) {
  // A drain that outlasts its deadline: the sim's 1 s drain against 50 ms.
  StopService();
  destination_ = SimInventory(tmp_, "slow.json", R"json({"devices": [
      {"id": "dnic0", "features": ["stop_copy", "p2p"],
       "state_bytes": "1MiB", "drain_ms": 1000}]})json");
  original_digests_ = {{"dnic0", TargetDigest("dnic0")}};
  StartService();
  SavedStream nic = Save("nic0", "m-slow");
  v1::PrepareRequest request =
      PrepareRequestFor("m-slow", {{"nic0", "dnic0"}}, {&nic});
  request.set_drain_timeout_ms(50);
  v1::PrepareResponse response;
  ASSERT_TRUE(Prepare(request, &response).ok());
  EXPECT_FALSE(response.ready());
  EXPECT_FALSE(response.verdicts(0).accepted());
  EXPECT_THAT(response.error(), HasSubstr("dnic0"));
  EXPECT_THAT(response.error(), HasSubstr("rolled back"));
  const v1::Migration record = Record("m-slow");
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(record.failed_device_id(), "dnic0");
  ExpectTargetsUntouched();
}

}  // namespace
}  // namespace vfiomig::testing
