// Stop-copy migration between sim devices: round trips in odd buffer and
// chunk sizes, and streams that are cut, corrupted, foreign or too large.
#include <cstdint>
#include <string>
#include <vector>

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
using testing::StartResume;
using testing::Walk;
using testing::WriteChunked;
using S = DeviceState;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr uint32_t kStopCopyP2p = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;

struct RoundTrip {
  size_t read_size;
  size_t write_chunk;
  uint64_t state_bytes;
};

class SimRoundTripTest : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(SimRoundTripTest, DestinationEndsWithTheSourceContent) {
  const RoundTrip& p = GetParam();
  FakeClock clock;
  auto src = SimDevice::Create(DeviceConfig("src", kStopCopyP2p, p.state_bytes),
                               clock.clock());
  auto dst = SimDevice::Create(
      DeviceConfig("dst", kStopCopyP2p, 3 * kBlockSize), clock.clock());
  std::string src_digest = src->ContentDigest().value();
  ASSERT_NE(dst->ContentDigest().value(), src_digest);
  EXPECT_EQ(src->StopCopySize().value(), FullStreamSize(p.state_bytes));

  absl::StatusOr<std::vector<uint8_t>> stream = SaveAll(*src, p.read_size);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(stream->size(), FullStreamSize(p.state_bytes));

  absl::StatusOr<std::unique_ptr<DataSession>> resume = StartResume(*dst);
  ASSERT_TRUE(resume.ok()) << resume.status();
  ASSERT_TRUE(WriteChunked(**resume, *stream, p.write_chunk).ok());
  ASSERT_TRUE(dst->SetState(S::STOP).ok());
  EXPECT_EQ(dst->ContentDigest().value(), src_digest);
  EXPECT_EQ(dst->content_size(), p.state_bytes);
  // The destination runs on with its new content.
  ASSERT_TRUE(Walk(*dst, S::RUNNING).ok());
  EXPECT_EQ(dst->ContentDigest().value(), src_digest);
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, SimRoundTripTest,
    ::testing::Values(RoundTrip{1, 7, kBlockSize / 2 + 3},
                      RoundTrip{7, 1, kBlockSize / 2 + 3},
                      RoundTrip{4096, 13, 2 * kBlockSize + 5},
                      RoundTrip{kBlockSize, 4096, 3 * kBlockSize},
                      RoundTrip{kBlockSize + 3, 1 << 20, 3 * kBlockSize - 1},
                      RoundTrip{1 << 16, 1 << 30, 60}));

TEST(SimMigrationTest, StopCopySizeCountsDownToEof) {
  FakeClock clock;
  uint64_t size = 2 * kBlockSize + 77;
  auto src = SimDevice::Create(
      DeviceConfig("src", VFIO_MIGRATION_STOP_COPY, size), clock.clock());
  ASSERT_TRUE(src->SetState(S::STOP).ok());
  absl::StatusOr<std::unique_ptr<DataSession>> session =
      src->SetState(S::STOP_COPY);
  ASSERT_TRUE(session.ok() && *session);
  uint64_t left = src->StopCopySize().value();
  EXPECT_EQ(left, FullStreamSize(size));
  std::vector<uint8_t> buf(300000);
  for (;;) {
    size_t n = (*session)->Read(absl::MakeSpan(buf)).value();
    left -= n;
    EXPECT_EQ(src->StopCopySize().value(), left);
    if (n == 0) break;
  }
  EXPECT_EQ(left, 0u);
  // EOF stays EOF.
  EXPECT_EQ((*session)->Read(absl::MakeSpan(buf)).value(), 0u);
  EXPECT_EQ((*session)->GetPrecopyInfo().status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*session)->Write(buf).ok());
  ASSERT_TRUE(src->SetState(S::STOP).ok());
  EXPECT_EQ((*session)->Read(absl::MakeSpan(buf)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A destination and a stream from a 2.5-block source.
class SimResumeFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto src = SimDevice::Create(
        DeviceConfig("src", VFIO_MIGRATION_STOP_COPY, 2 * kBlockSize + 500),
        clock_.clock());
    stream_ = SaveAll(*src, 1 << 16).value();
    dst_ = SimDevice::Create(
        DeviceConfig("dst", VFIO_MIGRATION_STOP_COPY, 4 * kBlockSize),
        clock_.clock());
    before_ = dst_->ContentDigest().value();
    resume_ = StartResume(*dst_).value();
  }

  // RESUMING -> STOP must fail and leave the device RESUMING; a reset then
  // restores RUNNING with the content it had before.
  void ExpectRefusedAndRecoverable() {
    absl::StatusOr<std::unique_ptr<DataSession>> r = dst_->SetState(S::STOP);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Msg(r.status()).find("device stays in RESUMING"),
              std::string::npos)
        << r.status();
    EXPECT_EQ(dst_->GetState().value(), S::RESUMING);
    ASSERT_TRUE(dst_->Reset().ok());
    EXPECT_EQ(dst_->GetState().value(), S::RUNNING);
    EXPECT_EQ(dst_->ContentDigest().value(), before_);
    EXPECT_EQ(dst_->content_size(), 4 * kBlockSize);
    EXPECT_EQ(resume_->Write(stream_).code(),
              absl::StatusCode::kFailedPrecondition);
  }

  FakeClock clock_;
  std::vector<uint8_t> stream_;
  std::shared_ptr<SimDevice> dst_;
  std::string before_;
  std::unique_ptr<DataSession> resume_;
};

TEST_F(SimResumeFaultTest, TruncatedStreamIsIncomplete) {
  for (size_t cut : {size_t{1}, kEndRecordSize, size_t{1000}}) {
    SetUp();
    ASSERT_TRUE(
        resume_->Write(absl::MakeConstSpan(stream_).first(stream_.size() - cut))
            .ok());
    absl::StatusOr<std::unique_ptr<DataSession>> r = dst_->SetState(S::STOP);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(Msg(r.status()).find("incomplete stream"), std::string::npos)
        << r.status();
    ExpectRefusedAndRecoverable();
  }
}

TEST_F(SimResumeFaultTest, EmptyStreamIsIncomplete) {
  absl::StatusOr<std::unique_ptr<DataSession>> r = dst_->SetState(S::STOP);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Msg(r.status()).find("no complete header"), std::string::npos);
  ExpectRefusedAndRecoverable();
}

TEST_F(SimResumeFaultTest, CorruptedPayloadIsRefused) {
  stream_[kStreamHeaderSize + kRecordHeaderSize + 12345] ^= 1;
  absl::Status s = WriteChunked(*resume_, stream_, 4096);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(Msg(s).find("dst: sim stream byte 32: block 0 version 0: byte "
                        "12345 differs"),
            std::string::npos)
      << s;
  ExpectRefusedAndRecoverable();
}

TEST_F(SimResumeFaultTest, CorruptedVersionIsRefused) {
  // The payload no longer matches the version the record claims.
  stream_[kStreamHeaderSize + 16] = 1;
  EXPECT_EQ(resume_->Write(stream_).code(), absl::StatusCode::kDataLoss);
  ExpectRefusedAndRecoverable();
}

TEST_F(SimResumeFaultTest, GarbageIsRefused) {
  std::vector<uint8_t> garbage(5000);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = (i * 131) & 0xff;
  absl::Status s = resume_->Write(garbage);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Msg(s).find("bad magic"), std::string::npos) << s;
  // Refused for good: the real stream cannot follow.
  EXPECT_FALSE(resume_->Write(stream_).ok());
  ExpectRefusedAndRecoverable();
}

TEST_F(SimResumeFaultTest, DroppedRecordIsRefusedAtTheEnd) {
  // Cut the second block record out: every length still parses.
  size_t first = kStreamHeaderSize + kRecordHeaderSize + kBlockSize;
  size_t len = kRecordHeaderSize + kBlockSize;
  stream_.erase(stream_.begin() + first, stream_.begin() + first + len);
  absl::Status s = resume_->Write(stream_);
  EXPECT_FALSE(s.ok());
  ExpectRefusedAndRecoverable();
}

TEST(SimMigrationTest, StateLargerThanCapacityIsRefused) {
  FakeClock clock;
  auto src = SimDevice::Create(
      DeviceConfig("big", VFIO_MIGRATION_STOP_COPY, 3 * kBlockSize),
      clock.clock());
  auto dst = SimDevice::Create(
      DeviceConfig("small", VFIO_MIGRATION_STOP_COPY, 3 * kBlockSize - 1),
      clock.clock());
  std::vector<uint8_t> stream = SaveAll(*src, 1 << 20).value();
  std::unique_ptr<DataSession> resume = StartResume(*dst).value();
  absl::Status s = resume->Write(absl::MakeConstSpan(stream).first(100));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Msg(s).find("the stream holds 3145728 bytes of state, more than "
                        "this device's capacity of 3145727"),
            std::string::npos)
      << s;
  EXPECT_FALSE(dst->SetState(S::STOP).ok());
}

TEST(SimMigrationTest, SessionsAreOneWay) {
  FakeClock clock;
  auto dst = SimDevice::Create(DeviceConfig("d", VFIO_MIGRATION_STOP_COPY, 10),
                               clock.clock());
  std::unique_ptr<DataSession> resume = StartResume(*dst).value();
  uint8_t buf[8];
  EXPECT_EQ(resume->Read(absl::MakeSpan(buf)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(resume->GetPrecopyInfo().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A -> B -> C: B regenerates what it received from A's origin seed, though
// its own seed differs.
TEST(SimMigrationTest, ResumedDeviceMigratesOnIdentically) {
  FakeClock clock;
  uint64_t size = 2 * kBlockSize + 3;
  auto a =
      SimDevice::Create(DeviceConfig("a", kAllFeatures, size), clock.clock());
  auto b = SimDevice::Create(DeviceConfig("b", kAllFeatures, 4 * kBlockSize),
                             clock.clock());
  auto c = SimDevice::Create(DeviceConfig("c", kAllFeatures, 4 * kBlockSize),
                             clock.clock());
  std::string digest = a->ContentDigest().value();

  std::vector<uint8_t> ab = SaveAll(*a, 1 << 16).value();
  std::unique_ptr<DataSession> rb = StartResume(*b).value();
  ASSERT_TRUE(rb->Write(ab).ok());
  ASSERT_TRUE(b->SetState(S::STOP).ok());
  ASSERT_TRUE(Walk(*b, S::RUNNING).ok());

  std::vector<uint8_t> bc = SaveAll(*b, 1 << 16).value();
  EXPECT_EQ(bc, ab);  // the same bytes, not merely the same digest
  std::unique_ptr<DataSession> rc = StartResume(*c).value();
  ASSERT_TRUE(rc->Write(bc).ok());
  ASSERT_TRUE(c->SetState(S::STOP).ok());
  EXPECT_EQ(c->ContentDigest().value(), digest);
  EXPECT_EQ(b->ContentDigest().value(), digest);
  EXPECT_EQ(c->content_size(), size);
}

}  // namespace
}  // namespace vfiomig::sim
