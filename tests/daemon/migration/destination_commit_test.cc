// A whole incoming migration over gRPC: Prepare, one stream per device,
// Commit; and the ways it ends otherwise (Abort, a commit that fails, an
// orphaned migration), each leaving every target RUNNING and free.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/destination_test_fixture.h"

namespace vfiomig::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

using DestinationCommitTest = DestinationTest;

TEST_F(DestinationCommitTest, HappyPath) {
  SavedStream gpu, nic;
  PrepareTwo("m-happy", &gpu, &nic);
  // The 10 MiB GPU needs a full 8 MiB frame: the server must take it.
  size_t largest = 0;
  for (const std::string& f : gpu.frames) largest = std::max(largest, f.size());
  EXPECT_EQ(largest, stream::kMaxFrameSize);

  // Both streams at once, as a source sends them.
  v1::StreamSummary gpu_summary, nic_summary;
  grpc::Status gpu_status, nic_status;
  std::thread gpu_thread([&] {
    gpu_status = Stream("m-happy", "dgpu0", gpu.frames, &gpu_summary);
  });
  nic_status = Stream("m-happy", "dnic0", nic.frames, &nic_summary);
  gpu_thread.join();
  ASSERT_TRUE(gpu_status.ok()) << gpu_status.error_message();
  ASSERT_TRUE(nic_status.ok()) << nic_status.error_message();
  EXPECT_EQ(gpu_summary.target_device_id(), "dgpu0");
  EXPECT_EQ(gpu_summary.frames(), gpu.frames.size());
  EXPECT_GT(gpu_summary.pre_copy_bytes(), 10u << 20);
  EXPECT_EQ(nic_summary.frames(), nic.frames.size());
  EXPECT_EQ(nic_summary.pre_copy_bytes(), 0u);
  EXPECT_GT(nic_summary.stop_copy_bytes(), 1u << 20);

  v1::CommitResponse response;
  grpc::Status status = Commit("m-happy", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.devices_size(), 2);
  for (const v1::DeviceStatus& d : response.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.device_id();
    EXPECT_FALSE(d.was_reset());
  }
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RUNNING);
  EXPECT_EQ(TargetState("dnic0"), DeviceState::RUNNING);
  EXPECT_EQ(TargetDigest("dgpu0"), gpu.digest);
  EXPECT_EQ(TargetDigest("dnic0"), nic.digest);
  EXPECT_NE(gpu.digest, original_digests_["dgpu0"]);
  EXPECT_FALSE(leases_.Owner("dgpu0").has_value());

  const v1::Migration record = Record("m-happy");
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED);
  EXPECT_EQ(record.bytes_sent(),
            gpu_summary.pre_copy_bytes() + gpu_summary.stop_copy_bytes() +
                nic_summary.pre_copy_bytes() + nic_summary.stop_copy_bytes());
  EXPECT_EQ(service_->registry().active(), 0u);

  // Late Abort and Commit change nothing; a repeated Commit (its first
  // answer was lost) gets the final states again.
  v1::AbortResponse aborted;
  ASSERT_TRUE(Abort("m-happy", &aborted).ok());
  EXPECT_EQ(aborted.devices_size(), 2);
  EXPECT_EQ(TargetDigest("dgpu0"), gpu.digest);
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RUNNING);
  v1::CommitResponse again;
  ASSERT_TRUE(Commit("m-happy", &again).ok());
  ASSERT_EQ(again.devices_size(), 2);
  for (const v1::DeviceStatus& d : again.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.device_id();
  }
  EXPECT_TRUE(Record("m-happy").handed_over());
  EXPECT_EQ(Record("m-happy").running_side(), "destination");
}

// The last END starts RESUMING -> STOP at once, so that Load, which comes
// after the source's bookkeeping and a round trip, finds it done or under
// way. Nothing is recorded or answered before Load: an Abort still rolls
// back, resetting the loaded devices.
TEST_F(DestinationCommitTest, LoadsWhenEveryStreamEndedAndAbortStillResets) {
  SavedStream gpu, nic;
  PrepareTwo("m-preload", &gpu, &nic);
  ASSERT_TRUE(Stream("m-preload", "dgpu0", gpu.frames).ok());
  // One stream is not every stream.
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RESUMING);
  ASSERT_TRUE(Stream("m-preload", "dnic0", nic.frames).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((TargetState("dgpu0") != DeviceState::STOP ||
          TargetState("dnic0") != DeviceState::STOP) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::STOP);
  EXPECT_EQ(TargetState("dnic0"), DeviceState::STOP);
  EXPECT_EQ(TargetDigest("dgpu0"), gpu.digest);
  EXPECT_EQ(Record("m-preload").outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);

  v1::AbortResponse response;
  ASSERT_TRUE(Abort("m-preload", &response).ok());
  for (const v1::DeviceStatus& d : response.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.device_id();
    EXPECT_TRUE(d.was_reset()) << d.device_id();
  }
  ExpectTargetsUntouched();
  EXPECT_EQ(Record("m-preload").outcome(), v1::MIGRATION_OUTCOME_CANCELLED);
}

TEST_F(DestinationCommitTest, CommitBeforeStreamsEndedRollsBack) {
  SavedStream gpu, nic;
  PrepareTwo("m-early", &gpu, &nic);
  ASSERT_TRUE(Stream("m-early", "dgpu0", gpu.frames).ok());
  // dnic0's stream stops short of END and stays open.
  grpc::ClientContext context;
  v1::StreamSummary summary;
  auto open = OpenStream(&context, &summary, "m-early", "dnic0",
                         {nic.frames[0], nic.frames[1]});
  v1::CommitResponse response;
  grpc::Status status = Commit("m-early", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(
      status.error_message(),
      AllOf(HasSubstr("dnic0 (stream not ended"), HasSubstr("rolled back")));
  // Both were reset from RESUMING: dgpu0's complete stream is discarded as
  // well as dnic0's partial one.
  ExpectTargetsUntouched();
  const v1::Migration record = Record("m-early");
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_TRUE(record.devices(0).was_reset());
  EXPECT_TRUE(record.devices(1).was_reset());
  open->WritesDone();
  EXPECT_EQ(open->Finish().error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(DestinationCommitTest, DeviceStuckInResumingIsReset) {
  const SavedStream nic = Save("nic0", "m-stuck");
  v1::PrepareResponse prepared;
  ASSERT_TRUE(
      Prepare(PrepareRequestFor("m-stuck", {{"nic0", "stuck0"}}, {&nic}),
              &prepared)
          .ok());
  ASSERT_TRUE(prepared.ready()) << prepared.DebugString();
  ASSERT_TRUE(Stream("m-stuck", "stuck0", nic.frames).ok());
  v1::CommitResponse response;
  grpc::Status status = Commit("m-stuck", &response);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("stuck0"), HasSubstr("RESUMING>STOP"),
                    HasSubstr("stuck0 RUNNING (reset)")));
  EXPECT_EQ(TargetState("stuck0"), DeviceState::RUNNING);
  EXPECT_EQ(TargetDigest("stuck0"), original_digests_["stuck0"]);
  const v1::Migration record = Record("m-stuck");
  EXPECT_EQ(record.failed_device_id(), "stuck0");
  EXPECT_EQ(record.failed_arc(), "RESUMING>STOP");
  EXPECT_TRUE(record.devices(0).was_reset());
  ExpectTargetsRunning();
}

TEST_F(DestinationCommitTest, AbortMidStream) {
  SavedStream gpu, nic;
  PrepareTwo("m-abort", &gpu, &nic);
  grpc::ClientContext context;
  v1::StreamSummary summary;
  auto open = OpenStream(&context, &summary, "m-abort", "dgpu0",
                         {gpu.frames[0], gpu.frames[1]});
  v1::AbortResponse response;
  ASSERT_TRUE(Abort("m-abort", &response).ok());
  ASSERT_EQ(response.devices_size(), 2);
  for (const v1::DeviceStatus& d : response.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.device_id();
  }
  ExpectTargetsUntouched();
  EXPECT_EQ(Record("m-abort").outcome(), v1::MIGRATION_OUTCOME_CANCELLED);
  // The open stream is refused from its next frame on.
  v1::StateFrame more;
  more.set_frame(gpu.frames[2]);
  open->Write(more);
  open->WritesDone();
  EXPECT_EQ(open->Finish().error_code(), grpc::StatusCode::ABORTED);
  // Idempotent, and unknown ids are fine.
  v1::AbortResponse again;
  ASSERT_TRUE(Abort("m-abort", &again).ok());
  EXPECT_EQ(again.devices_size(), 2);
  v1::AbortResponse unknown;
  ASSERT_TRUE(Abort("m-never", &unknown).ok());
  EXPECT_EQ(unknown.devices_size(), 0);
  v1::CommitResponse commit;
  EXPECT_EQ(Commit("m-abort", &commit).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Commit("m-never", &commit).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A reader that takes a final outcome for "over" (the fault suite, a control
// plane) must not get one while the rollback still moves devices: here
// slowback0 fails STOP>RESUMING in Prepare and walks back through a 300 ms
// STOP>RUNNING_P2P.
TEST_F(DestinationCommitTest, OutcomeStaysInProgressUntilRolledBack) {
  const SavedStream nic = Save("nic0", "m-slowback");
  v1::PrepareResponse prepared;
  grpc::Status prepare_status;
  std::thread prepare([&] {
    prepare_status = Prepare(
        PrepareRequestFor("m-slowback", {{"nic0", "slowback0"}}, {&nic}),
        &prepared);
  });
  bool saw_rollback = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::Migration> record = service_->GetMigration("m-slowback");
    if (record.ok()) {
      if (record->phase() == v1::MIGRATION_PHASE_DONE) break;
      if (record->phase() == v1::MIGRATION_PHASE_ROLLING_BACK) {
        saw_rollback = true;
        EXPECT_EQ(record->outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
        EXPECT_EQ(record->running_side(), "");
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  prepare.join();
  EXPECT_FALSE(prepare_status.ok() && prepared.ready());
  EXPECT_TRUE(saw_rollback) << "the 300 ms rollback arc was never observed";
  const v1::Migration record = Record("m-slowback");
  EXPECT_EQ(record.phase(), v1::MIGRATION_PHASE_DONE);
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(record.running_side(), "source");
  EXPECT_EQ(TargetState("slowback0"), DeviceState::RUNNING);
}

TEST_F(DestinationCommitTest, OrphanedMigrationRollsBack) {
  options_.abort_timeout = absl::Milliseconds(300);
  StartService();
  SavedStream gpu, nic;
  PrepareTwo("m-orphan", &gpu, &nic);
  const v1::Migration record = AwaitFinished("m-orphan");
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_THAT(record.error(), HasSubstr("orphaned"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationCommitTest, OpenStreamKeepsMigrationAlive) {
  // Long enough that a loaded machine opens the stream after Prepare well
  // within it (a 200 ms timeout made the test fail under load before any
  // stream was open), short enough to sleep through several times.
  options_.abort_timeout = absl::Seconds(1);
  StartService();
  SavedStream gpu, nic;
  PrepareTwo("m-alive", &gpu, &nic);
  grpc::ClientContext context;
  v1::StreamSummary summary;
  auto open = OpenStream(&context, &summary, "m-alive", "dgpu0",
                         {gpu.frames[0], gpu.frames[1]});
  // A quiet but open stream: the source may sit in a long drain. Three
  // abort timeouts: without the open stream it would be aborted by now.
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Record("m-alive").outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  context.TryCancel();
  open->Finish();
  EXPECT_EQ(AwaitFinished("m-alive").outcome(), v1::MIGRATION_OUTCOME_FAILED);
  ExpectTargetsUntouched();
}

TEST_F(DestinationCommitTest, HistoryIsBounded) {
  options_.history_limit = 2;
  StartService();
  const SavedStream nic = Save("nic0", "m-h");
  for (const char* id : {"m-h1", "m-h2", "m-h3"}) {
    v1::PrepareResponse response;
    ASSERT_TRUE(
        Prepare(PrepareRequestFor(id, {{"nic0", "nothere"}}, {&nic}), &response)
            .ok());
  }
  const std::vector<v1::Migration> list = service_->ListMigrations();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), "m-h3");
  EXPECT_EQ(list[1].id(), "m-h2");
}

TEST_F(DestinationCommitTest, ShutdownAbortsIncomingMigrations) {
  SavedStream gpu, nic;
  PrepareTwo("m-shutdown", &gpu, &nic);
  StopService();
  ExpectTargetsUntouched();
}

}  // namespace
}  // namespace vfiomig::testing
