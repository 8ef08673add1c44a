// PeerService.StreamState over gRPC: a stream the destination cannot trust
// fails with a clear status naming the device and the frame, and aborts the
// whole migration before the call returns.
#include <memory>
#include <string>
#include <vector>

#include "daemon/stream/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/destination_test_fixture.h"

namespace vfiomig::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

using DestinationStreamTest = DestinationTest;

// The migration failed, was rolled back, and nothing of it remains.
void ExpectAborted(const v1::Migration& record) {
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(record.phase(), v1::MIGRATION_PHASE_DONE);
  for (const v1::MigrationDevice& d : record.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.target_device_id();
  }
}

// Flips a payload byte of `frame` at `offset` and re-seals it with the same
// type and sequence: the envelope is intact, the device content is not.
std::string Reseal(std::string frame, size_t offset) {
  frame[stream::kFrameHeaderSize + offset] ^= 0x5a;
  const stream::FrameHeader h =
      stream::DecodeFrameHeader(reinterpret_cast<const uint8_t*>(frame.data()));
  stream::SealFrame(
      absl::MakeSpan(reinterpret_cast<uint8_t*>(frame.data()), frame.size()),
      static_cast<stream::FrameType>(h.type), h.sequence);
  return frame;
}

TEST_F(DestinationStreamTest, GarbageFrame) {
  SavedStream gpu, nic;
  PrepareTwo("m-garbage", &gpu, &nic);
  grpc::Status status =
      Stream("m-garbage", "dnic0", {nic.frames[0], std::string(100, 'x')});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("frame 1")));
  ExpectAborted(Record("m-garbage"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, ChecksumMismatch) {
  SavedStream gpu, nic;
  PrepareTwo("m-sum", &gpu, &nic);
  std::string bad = nic.frames[1];
  bad[stream::kFrameHeaderSize + 7] ^= 1;
  grpc::Status status = Stream("m-sum", "dnic0", {nic.frames[0], bad});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("frame 1"),
                    HasSubstr("checksum")));
  ExpectAborted(Record("m-sum"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, ReplayedFrame) {
  SavedStream gpu, nic;
  PrepareTwo("m-replay", &gpu, &nic);
  ASSERT_GE(nic.frames.size(), 3u);
  grpc::Status status = Stream("m-replay", "dnic0",
                               {nic.frames[0], nic.frames[1], nic.frames[1]});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("frame 2")));
  ExpectAborted(Record("m-replay"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, HeaderDiffersFromPrepared) {
  SavedStream gpu, nic;
  PrepareTwo("m-header", &gpu, &nic);
  stream::StreamHeader other = nic.header;
  other.stop_copy_bytes += 1;
  stream::StreamWriter writer;
  std::string header_frame;
  ASSERT_TRUE(writer.AddHeader(other, &header_frame).ok());
  std::vector<std::string> frames = nic.frames;
  frames[0] = header_frame;
  grpc::Status status = Stream("m-header", "dnic0", frames);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("frame 0"),
                    HasSubstr("stop_copy_bytes")));
  ExpectAborted(Record("m-header"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, DeviceRefusesData) {
  SavedStream gpu, nic;
  PrepareTwo("m-content", &gpu, &nic);
  // A valid envelope around a corrupted device byte (past the sim's 32-byte
  // stream header and 24-byte record header): only the device can tell.
  std::vector<std::string> frames = nic.frames;
  frames[1] = Reseal(frames[1], 100);
  grpc::Status status = Stream("m-content", "dnic0", frames);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("frame 1"),
                    HasSubstr("refused the data")));
  ExpectAborted(Record("m-content"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, ClosedWithoutEnd) {
  SavedStream gpu, nic;
  PrepareTwo("m-trunc", &gpu, &nic);
  std::vector<std::string> frames(nic.frames.begin(), nic.frames.end() - 1);
  grpc::Status status = Stream("m-trunc", "dnic0", frames);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("device dnic0"), HasSubstr("without END")));
  ExpectAborted(Record("m-trunc"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, FrameAfterEnd) {
  SavedStream gpu, nic;
  PrepareTwo("m-after", &gpu, &nic);
  std::vector<std::string> frames = nic.frames;
  frames.push_back(nic.frames[1]);
  grpc::Status status = Stream("m-after", "dnic0", frames);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);
  EXPECT_THAT(status.error_message(), HasSubstr("device dnic0"));
  ExpectAborted(Record("m-after"));
  ExpectTargetsRunning();
}

TEST_F(DestinationStreamTest, SecondStreamForOneDevice) {
  SavedStream gpu, nic;
  PrepareTwo("m-twice", &gpu, &nic);
  grpc::ClientContext context;
  v1::StreamSummary summary;
  auto first = OpenStream(&context, &summary, "m-twice", "dnic0",
                          {nic.frames[0], nic.frames[1]});
  grpc::Status second = Stream("m-twice", "dnic0", nic.frames);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(second.error_message(), HasSubstr("already has a stream"));
  ExpectAborted(Record("m-twice"));
  // The first stream learns at its next frame.
  v1::StateFrame more;
  more.set_frame(nic.frames[2]);
  first->Write(more);
  first->WritesDone();
  grpc::Status status = first->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(status.error_message(), HasSubstr("already has a stream"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, SourceCancels) {
  SavedStream gpu, nic;
  PrepareTwo("m-cancel", &gpu, &nic);
  grpc::ClientContext context;
  v1::StreamSummary summary;
  auto writer = OpenStream(&context, &summary, "m-cancel", "dgpu0",
                           {gpu.frames[0], gpu.frames[1]});
  context.TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const v1::Migration record = AwaitFinished("m-cancel");
  ExpectAborted(record);
  EXPECT_THAT(record.error(), HasSubstr("cancel"));
  ExpectTargetsUntouched();
}

TEST_F(DestinationStreamTest, UnknownMigrationOrDevice) {
  SavedStream gpu, nic;
  PrepareTwo("m-known", &gpu, &nic);
  EXPECT_EQ(Stream("m-unknown", "dnic0", nic.frames).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stream("m-known", "small0", nic.frames).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stream("bad id", "dnic0", nic.frames).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // None of that concerns the prepared migration.
  EXPECT_EQ(Record("m-known").outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  EXPECT_EQ(TargetState("dnic0"), DeviceState::RESUMING);
}

}  // namespace
}  // namespace vfiomig::testing
