// Pre-copy: initial data, dirtying on an injected clock, the precopy info,
// and the final stop-copy carrying only what is still unsent.
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
using testing::ReadAvailable;
using testing::StartResume;
using testing::WriteChunked;
using S = DeviceState;

constexpr uint64_t kRecord = kRecordHeaderSize + kBlockSize;

class SimPrecopyTest : public ::testing::Test {
 protected:
  std::shared_ptr<SimDevice> Source(uint32_t flags, uint64_t blocks,
                                    uint64_t precopy_blocks) {
    SimDeviceConfig c = DeviceConfig("src", flags, blocks * kBlockSize);
    c.precopy_bytes = precopy_blocks * kBlockSize;
    c.dirty_bytes_per_s = kBlockSize;  // one block per second
    return SimDevice::Create(c, clock_.clock());
  }

  // Feeds everything read into a fresh destination and checks it resumes
  // to `digest`.
  void ExpectDestinationMatches(const std::vector<uint8_t>& stream,
                                const std::string& digest) {
    auto dst = SimDevice::Create(
        DeviceConfig("dst", kAllFeatures, 16 * kBlockSize), clock_.clock());
    std::unique_ptr<DataSession> resume = StartResume(*dst).value();
    ASSERT_TRUE(WriteChunked(*resume, stream, 100000).ok());
    ASSERT_TRUE(dst->SetState(S::STOP).ok());
    EXPECT_EQ(dst->ContentDigest().value(), digest);
  }

  FakeClock clock_;
};

TEST_F(SimPrecopyTest, InitialThenDirtyThenOnlyTheRestInStopCopy) {
  auto src = Source(kAllFeatures, 8, 8);
  std::string initial_digest = src->ContentDigest().value();
  absl::StatusOr<std::unique_ptr<DataSession>> opened =
      src->SetState(S::PRE_COPY);
  ASSERT_TRUE(opened.ok() && *opened) << opened.status();
  DataSession& session = **opened;

  PrecopyInfo info = session.GetPrecopyInfo().value();
  EXPECT_EQ(info.initial_bytes, kStreamHeaderSize + 8 * kRecord);
  EXPECT_EQ(info.dirty_bytes, 0u);

  std::vector<uint8_t> stream;
  std::vector<uint8_t> part = ReadAvailable(session, 65536).value();
  EXPECT_EQ(part.size(), kStreamHeaderSize + 8 * kRecord);
  stream.insert(stream.end(), part.begin(), part.end());
  info = session.GetPrecopyInfo().value();
  EXPECT_EQ(info.initial_bytes, 0u);
  EXPECT_EQ(info.dirty_bytes, 0u);
  // Nothing is due: 0, which in pre-copy is not the end of the stream.
  uint8_t byte;
  EXPECT_EQ(session.Read(absl::MakeSpan(&byte, 1)).value(), 0u);

  clock_.Advance(absl::Seconds(5));  // five blocks dirtied, some twice
  info = session.GetPrecopyInfo().value();
  EXPECT_EQ(info.initial_bytes, 0u);
  EXPECT_GT(info.dirty_bytes, 0u);
  EXPECT_LE(info.dirty_bytes, 5 * kRecord);
  EXPECT_EQ(info.dirty_bytes % kRecord, 0u);
  part = ReadAvailable(session, 7777).value();
  EXPECT_EQ(part.size(), info.dirty_bytes);
  stream.insert(stream.end(), part.begin(), part.end());
  EXPECT_EQ(session.GetPrecopyInfo().value().dirty_bytes, 0u);

  // More dirtying, then the device stops writing in PRE_COPY_P2P.
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(src->SetState(S::PRE_COPY_P2P).ok());
  uint64_t dirty = session.GetPrecopyInfo().value().dirty_bytes;
  EXPECT_GT(dirty, 0u);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(session.GetPrecopyInfo().value().dirty_bytes, dirty);

  // Same session on into STOP_COPY: only the unsent blocks and the end.
  absl::StatusOr<std::unique_ptr<DataSession>> none =
      src->SetState(S::STOP_COPY);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  uint64_t predicted = src->StopCopySize().value();
  EXPECT_EQ(predicted, dirty + kEndRecordSize);
  part = ReadAvailable(session, 4096).value();
  EXPECT_EQ(part.size(), predicted);
  stream.insert(stream.end(), part.begin(), part.end());

  std::string final_digest = src->ContentDigest().value();
  EXPECT_NE(final_digest, initial_digest);
  ExpectDestinationMatches(stream, final_digest);
}

TEST_F(SimPrecopyTest, MissingDirtyUpdateIsRefused) {
  auto src = Source(kAllFeatures, 4, 4);
  std::unique_ptr<DataSession> session = src->SetState(S::PRE_COPY).value();
  std::vector<uint8_t> initial = ReadAvailable(*session, 1 << 20).value();
  clock_.Advance(absl::Seconds(2));
  std::vector<uint8_t> dirty = ReadAvailable(*session, 1 << 20).value();
  ASSERT_FALSE(dirty.empty());
  ASSERT_TRUE(src->SetState(S::PRE_COPY_P2P).ok());
  ASSERT_TRUE(src->SetState(S::STOP_COPY).ok());
  std::vector<uint8_t> rest = ReadAvailable(*session, 1 << 20).value();

  // Without the dirty records the end record disagrees with what arrived.
  std::vector<uint8_t> stream = initial;
  stream.insert(stream.end(), rest.begin(), rest.end());
  auto dst = SimDevice::Create(
      DeviceConfig("dst", kAllFeatures, 4 * kBlockSize), clock_.clock());
  std::unique_ptr<DataSession> resume = StartResume(*dst).value();
  EXPECT_FALSE(resume->Write(stream).ok());
  EXPECT_FALSE(dst->SetState(S::STOP).ok());
  EXPECT_EQ(dst->GetState().value(), S::RESUMING);
}

TEST_F(SimPrecopyTest, PartialPrecopyLeavesTheRestForStopCopy) {
  auto src = Source(kAllFeatures, 4, 1);
  std::unique_ptr<DataSession> session = src->SetState(S::PRE_COPY).value();
  EXPECT_EQ(session->GetPrecopyInfo().value().initial_bytes,
            kStreamHeaderSize + kRecord);
  std::vector<uint8_t> stream = ReadAvailable(*session, 1000).value();
  EXPECT_EQ(stream.size(), kStreamHeaderSize + kRecord);
  ASSERT_TRUE(src->SetState(S::PRE_COPY_P2P).ok());
  ASSERT_TRUE(src->SetState(S::STOP_COPY).ok());
  EXPECT_EQ(src->StopCopySize().value(), 3 * kRecord + kEndRecordSize);
  std::vector<uint8_t> rest = ReadAvailable(*session, 1000).value();
  EXPECT_EQ(rest.size(), 3 * kRecord + kEndRecordSize);
  stream.insert(stream.end(), rest.begin(), rest.end());
  ExpectDestinationMatches(stream, src->ContentDigest().value());
}

// A record cut mid-way by the buffer still counts as initial data, and a
// block dirtied while on the wire goes out again.
TEST_F(SimPrecopyTest, DirtyWhileOnTheWireIsResent) {
  auto src = Source(kAllFeatures, 1, 1);
  std::unique_ptr<DataSession> session = src->SetState(S::PRE_COPY).value();
  std::vector<uint8_t> stream(kStreamHeaderSize + 100);
  ASSERT_EQ(session->Read(absl::MakeSpan(stream)).value(), stream.size());
  EXPECT_EQ(session->GetPrecopyInfo().value().initial_bytes, kRecord - 100);
  clock_.Advance(absl::Seconds(1));  // the only block: dirtied mid-record
  std::vector<uint8_t> rest = ReadAvailable(*session, 1 << 16).value();
  EXPECT_EQ(rest.size(), kRecord - 100 + kRecord);
  stream.insert(stream.end(), rest.begin(), rest.end());
  ASSERT_TRUE(src->SetState(S::PRE_COPY_P2P).ok());
  ASSERT_TRUE(src->SetState(S::STOP_COPY).ok());
  rest = ReadAvailable(*session, 1 << 16).value();
  EXPECT_EQ(rest.size(), kEndRecordSize);
  stream.insert(stream.end(), rest.begin(), rest.end());
  ExpectDestinationMatches(stream, src->ContentDigest().value());
}

TEST_F(SimPrecopyTest, WithoutP2pPrecopyGoesStraightToStopCopy) {
  auto src = Source(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, 2, 2);
  std::unique_ptr<DataSession> session = src->SetState(S::PRE_COPY).value();
  std::vector<uint8_t> stream = ReadAvailable(*session, 1 << 16).value();
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<std::unique_ptr<DataSession>> none =
      src->SetState(S::STOP_COPY);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);
  std::vector<uint8_t> rest = ReadAvailable(*session, 1 << 16).value();
  EXPECT_EQ(rest.size(), kRecord + kEndRecordSize);
  stream.insert(stream.end(), rest.begin(), rest.end());
  ExpectDestinationMatches(stream, src->ContentDigest().value());
}

TEST_F(SimPrecopyTest, AbortClosesTheSessionAndTheDeviceKeepsRunning) {
  auto src = Source(kAllFeatures, 2, 2);
  std::unique_ptr<DataSession> session = src->SetState(S::PRE_COPY).value();
  ASSERT_TRUE(src->SetState(S::RUNNING).ok());
  uint8_t buf[8];
  EXPECT_EQ(session->Read(absl::MakeSpan(buf)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session->GetPrecopyInfo().status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::string before = src->ContentDigest().value();
  clock_.Advance(absl::Seconds(1));
  EXPECT_NE(src->ContentDigest().value(), before);  // RUNNING dirties
  // A stopped device does not.
  ASSERT_TRUE(src->SetState(S::RUNNING_P2P).ok());
  before = src->ContentDigest().value();
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(src->ContentDigest().value(), before);
}

}  // namespace
}  // namespace vfiomig::sim
