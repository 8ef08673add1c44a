// StreamReader: round trips through StreamWriter, then each check of the
// reader, broken on purpose and refused with its own message. Random damage
// is in reader_corruption_test.cc.
#include "daemon/stream/reader.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/stream/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/stream/stream_test_util.h"

namespace vfiomig::stream {
namespace {

using testing::Bytes;
using testing::Digest;
using testing::DeviceData;
using ::testing::ElementsAre;
using testing::End;
using testing::EndPayload;
using ::testing::HasSubstr;
using testing::HeaderFrame;
using ::testing::Not;
using testing::RawFields;
using testing::RawFrame;
using testing::Read;
using testing::ReadAll;
using testing::ReadResult;
using ::testing::StartsWith;
using testing::TestHeader;
using testing::U64;
using testing::ValidStream;
using testing::Views;
using testing::Write;
using T = FrameType;

TEST(StreamReaderTest, RoundTripManySizes) {
  std::mt19937_64 rng(42);
  // Around 8-byte words, the 16-byte zero-check prefix, 4 KiB zero blocks
  // and the 8 MiB frame limit.
  std::vector<size_t> sizes = {0, 1, 7, 8, 9, 16, 17, 4095, 4096, 4097, 65539};
  for (size_t n : {kMaxDataPayload - 1, kMaxDataPayload, kMaxDataPayload + 1,
                   2 * kMaxDataPayload + 4097}) {
    sizes.push_back(n);
  }
  for (size_t size : sizes) {
    for (ZeroCheck zc : {ZeroCheck::kOff, ZeroCheck::kDetect}) {
      SCOPED_TRACE(absl::StrCat("size ", size, " zc ", static_cast<int>(zc)));
      std::string pre = DeviceData(size, rng);
      std::string stop = DeviceData(size / 2 + 3, rng);
      size_t chunk = std::max<size_t>(1, size / 3 + 1);
      std::vector<std::string> frames = Write(pre, stop, chunk, zc);
      ReadResult r = ReadAll(Views(frames));
      ASSERT_TRUE(r.status.ok()) << r.status;
      ASSERT_TRUE(r.header.has_value());
      EXPECT_EQ(*r.header, TestHeader());
      EXPECT_TRUE(r.pre_copy == pre);
      EXPECT_TRUE(r.stop_copy == stop);
      ASSERT_TRUE(r.end.has_value());
      EXPECT_EQ(r.end->pre_copy_bytes, pre.size());
      EXPECT_EQ(r.end->stop_copy_bytes, stop.size());
      EXPECT_EQ(r.end->data_checksum, Digest(frames));
      bool zeros = std::find(r.types.begin(), r.types.end(),
                             T::kPreCopyZeros) != r.types.end();
      EXPECT_EQ(zeros, zc == ZeroCheck::kDetect && size > 0);
    }
  }
}

TEST(StreamReaderTest, StreamWithoutPreCopyOrWithoutData) {
  ReadResult r = ReadAll(Views(Write("", "state", 2, ZeroCheck::kDetect)));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.types,
              ElementsAre(T::kHeader, T::kStopCopyData, T::kStopCopyData,
                          T::kStopCopyData, T::kEnd));
  EXPECT_EQ(r.stop_copy, "state");

  r = ReadAll(Views(Write("", "", 1, ZeroCheck::kDetect)));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.types, ElementsAre(T::kHeader, T::kEnd));
  EXPECT_EQ(r.end, (StreamTotals{0, 0, Digest({})}));
}

TEST(StreamReaderTest, AccessorsFollowTheStream) {
  std::vector<std::string> frames = ValidStream();
  StreamReader reader(100);
  EXPECT_FALSE(reader.header().has_value());
  ASSERT_TRUE(reader.Consume(frames[0]).ok());
  EXPECT_EQ(reader.header(), TestHeader());
  ASSERT_TRUE(reader.Consume(frames[1]).ok());
  EXPECT_EQ(reader.next_sequence(), 2u);
  EXPECT_EQ(reader.totals(), (StreamTotals{3, 0, Digest({frames[1]})}));
  EXPECT_FALSE(reader.ended());
  ASSERT_TRUE(reader.Consume(frames[2]).ok());
  absl::StatusOr<StreamEvent> end = reader.Consume(frames[3]);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(std::get<EndEvent>(*end).totals,
            (StreamTotals{3, 4, Digest(frames)}));
  EXPECT_TRUE(reader.ended());
  EXPECT_TRUE(reader.Finish().ok());
  EXPECT_TRUE(reader.status().ok());
}

TEST(StreamReaderTest, DataEventPointsIntoTheFrame) {
  std::vector<std::string> frames = ValidStream();
  StreamReader reader(100);
  ASSERT_TRUE(reader.Consume(frames[0]).ok());
  absl::StatusOr<StreamEvent> e = reader.Consume(frames[1]);
  ASSERT_TRUE(e.ok());
  const DataEvent& d = std::get<DataEvent>(*e);
  EXPECT_EQ(d.section, Section::kPreCopy);
  EXPECT_EQ(reinterpret_cast<const char*>(d.bytes.data()),
            frames[1].data() + kFrameHeaderSize);
  EXPECT_EQ(d.bytes.size(), 3u);
}

void ExpectError(const absl::Status& s, absl::StatusCode code,
                 const std::string& message) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_EQ(s.message(), message);
}

TEST(StreamReaderTest, BadMagic) {
  std::vector<std::string> frames = ValidStream();
  frames[1][0] = 'X';
  ExpectError(Read(frames), absl::StatusCode::kDataLoss,
              "frame 1: bad magic 0x534d4658 (expected 0x534d4656)");
}

TEST(StreamReaderTest, BadVersion) {
  std::vector<std::string> frames = ValidStream();
  frames[0] = RawFrame(T::kHeader, 0, *EncodeHeaderPayload(TestHeader()),
                       RawFields{.version = 2});
  ExpectError(Read(frames), absl::StatusCode::kUnimplemented,
              "frame 0: frame version 2 not supported (this reader knows 1)");
}

TEST(StreamReaderTest, TruncatedFrames) {
  std::vector<std::string> frames = ValidStream();
  for (size_t n : {0, 1, 31}) {
    frames[1] = ValidStream()[1].substr(0, n);
    ExpectError(Read(frames), absl::StatusCode::kDataLoss,
                absl::StrCat("frame 1: truncated: ", n,
                             " bytes, shorter than a frame header (32)"));
  }
  frames[1] = ValidStream()[1].substr(0, kFrameHeaderSize + 2);
  ExpectError(Read(frames), absl::StatusCode::kDataLoss,
              "frame 1: truncated: header says 3 payload bytes, frame has 2");
}

TEST(StreamReaderTest, LengthMismatch) {
  std::vector<std::string> frames = ValidStream();
  frames[2] += "x";
  ExpectError(
      Read(frames), absl::StatusCode::kDataLoss,
      "frame 2: length mismatch: header says 4 payload bytes, frame has 5");
}

TEST(StreamReaderTest, ChecksumMismatchMessage) {
  std::vector<std::string> frames = ValidStream();
  frames[3].back() ^= 0x40;
  absl::Status s = Read(frames);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("frame 3: checksum mismatch (frame "
                         "says 0x"));
}

TEST(StreamReaderTest, ReplayedFrame) {
  std::vector<std::string> frames = {HeaderFrame()};
  for (int i = 1; i <= 16; ++i) {
    frames.push_back(RawFrame(T::kPreCopyData, i, "x"));
  }
  frames.push_back(frames[15]);
  ExpectError(Read(frames), absl::StatusCode::kDataLoss,
              "frame 17: sequence 15 replayed (expected 17)");
  // The same frame twice in a row.
  std::vector<std::string> twice = ValidStream();
  twice.insert(twice.begin() + 2, twice[1]);
  ExpectError(Read(twice), absl::StatusCode::kDataLoss,
              "frame 2: sequence 1 replayed (expected 2)");
  // A second header is a replay too, before it is a second header.
  std::vector<std::string> header_again = ValidStream();
  header_again.insert(header_again.begin() + 1, HeaderFrame());
  ExpectError(Read(header_again), absl::StatusCode::kDataLoss,
              "frame 1: sequence 0 replayed (expected 1)");
}

TEST(StreamReaderTest, SkippedFrame) {
  std::vector<std::string> frames = ValidStream();
  frames.erase(frames.begin() + 1);
  ExpectError(Read(frames), absl::StatusCode::kDataLoss,
              "frame 1: sequence 2 skips ahead (expected 1)");
}

TEST(StreamReaderTest, HeaderMissing) {
  ExpectError(Read({RawFrame(T::kPreCopyData, 0, "x")}),
              absl::StatusCode::kInvalidArgument,
              "frame 0: PRE_COPY_DATA frame before the stream header");
  ExpectError(Read({End(0, 0, 0, Digest({}))}),
              absl::StatusCode::kInvalidArgument,
              "frame 0: END frame before the stream header");
  ExpectError(Read({}), absl::StatusCode::kDataLoss,
              "stream ended without END (after 0 frames)");
}

TEST(StreamReaderTest, HeaderTwice) {
  std::vector<std::string> frames = ValidStream();
  frames.insert(frames.begin() + 1,
                RawFrame(T::kHeader, 1, *EncodeHeaderPayload(TestHeader())));
  ExpectError(Read(frames), absl::StatusCode::kInvalidArgument,
              "frame 1: second stream header");
}

TEST(StreamReaderTest, HeaderPayloadIsValidated) {
  ExpectError(Read({RawFrame(T::kHeader, 0, "\xff\xff")}),
              absl::StatusCode::kDataLoss,
              "frame 0: stream header does not parse");
  StreamHeader h = TestHeader();
  h.stream_version = 9;
  ExpectError(Read({RawFrame(T::kHeader, 0, *EncodeHeaderPayload(h))}),
              absl::StatusCode::kUnimplemented,
              "frame 0: stream version 9 not supported (this reader knows 1)");
  ExpectError(
      Read({RawFrame(T::kHeader, 0, std::string(kMaxHeaderPayload + 1, 0))}),
      absl::StatusCode::kInvalidArgument,
      "frame 0: stream header of 65537 bytes exceeds the limit of 65536");
}

TEST(StreamReaderTest, PreCopyAfterStopCopy) {
  for (T late : {T::kPreCopyData, T::kPreCopyZeros}) {
    std::vector<std::string> frames = ValidStream();
    frames.insert(frames.begin() + 3,
                  RawFrame(late, 3, late == T::kPreCopyData ? "x" : U64(1)));
    frames.back() = End(4, 4, 4, Digest(frames));
    ExpectError(Read(frames), absl::StatusCode::kInvalidArgument,
                "frame 3: PRE_COPY data after STOP_COPY data");
  }
}

TEST(StreamReaderTest, NothingAfterEnd) {
  std::vector<std::string> frames = ValidStream();
  frames.push_back(RawFrame(T::kStopCopyData, 4, "late"));
  ExpectError(Read(frames), absl::StatusCode::kInvalidArgument,
              "frame 4: STOP_COPY_DATA frame after END");
  frames.back() = End(4, 3, 4, Digest(ValidStream()));
  ExpectError(Read(frames), absl::StatusCode::kInvalidArgument,
              "frame 4: END frame after END");

  // Fail closed: Finish reports the failure even though END was seen.
  StreamReader reader(UINT64_MAX);
  for (const std::string& f : ValidStream())
    ASSERT_TRUE(reader.Consume(f).ok());
  EXPECT_FALSE(reader.Consume(frames.back()).ok());
  EXPECT_EQ(reader.Finish().message(), "frame 4: END frame after END");
}

TEST(StreamReaderTest, EndTotalsMustMatch) {
  struct Case {
    StreamTotals claimed;
    std::string message;
  };
  const uint64_t sum = Digest(ValidStream());
  const Case cases[] = {
      {{4, 4, sum}, "pre_copy_bytes 4 (received 3)"},
      {{3, 3, sum}, "stop_copy_bytes 3 (received 4)"},
      {{3, 4, sum ^ 1}, "data_checksum 0x"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> frames = ValidStream();
    frames[3] = RawFrame(T::kEnd, 3, EndPayload(c.claimed));
    absl::Status s = Read(frames);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(s.message()),
                StartsWith("frame 3: END totals do not match the stream: "));
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

// Frames that are each intact, in a stream whose whole is not: only END's
// totals can tell.
TEST(StreamReaderTest, EndCatchesReorderedAndLostFrames) {
  std::vector<std::string> frames = Write(
      "aaaa"
      "bbbb",
      "cccc"
      "dddd",
      4, ZeroCheck::kOff);
  ASSERT_EQ(frames.size(), 6u);
  ASSERT_TRUE(Read(frames).ok());

  // Swap the two pre-copy frames and renumber them.
  std::vector<std::string> swapped = frames;
  swapped[1] = RawFrame(T::kPreCopyData, 1, "bbbb");
  swapped[2] = RawFrame(T::kPreCopyData, 2, "aaaa");
  absl::Status s = Read(swapped);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("data_checksum"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("bytes")));

  // Drop the last stop-copy frame and renumber END.
  std::vector<std::string> lost = frames;
  std::string end_payload = lost[5].substr(kFrameHeaderSize);
  lost.erase(lost.begin() + 4);
  lost[4] = RawFrame(T::kEnd, 4, end_payload);
  s = Read(lost);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("stop_copy_bytes 8 (received 4)"));
}

TEST(StreamReaderTest, PayloadBounds) {
  std::vector<std::string> frames = {HeaderFrame()};
  frames.push_back(
      RawFrame(T::kStopCopyData, 1, std::string(kMaxDataPayload + 1, 'x')));
  ExpectError(Read(frames), absl::StatusCode::kInvalidArgument,
              "frame 1: payload of 8388609 bytes exceeds the limit of "
              "8388608");
  frames[1] = RawFrame(T::kStopCopyData, 1, std::string(kMaxDataPayload, 'x'));
  frames.push_back(End(2, 0, kMaxDataPayload, Digest(frames)));
  EXPECT_TRUE(Read(frames).ok());

  ExpectError(Read({HeaderFrame(), RawFrame(T::kPreCopyData, 1, "")}),
              absl::StatusCode::kInvalidArgument, "frame 1: empty data frame");
  for (size_t n : {23, 25}) {
    ExpectError(
        Read({HeaderFrame(), RawFrame(T::kEnd, 1, std::string(n, '\0'))}),
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("frame 1: END payload of ", n, " bytes (must be 24)"));
  }
}

TEST(StreamReaderTest, ZeroRunBounds) {
  for (uint64_t count : {uint64_t{0}, kMaxZeroRun + 1, ~uint64_t{0}}) {
    ExpectError(
        Read({HeaderFrame(), RawFrame(T::kPreCopyZeros, 1, U64(count))}),
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("frame 1: zero run of ", count,
                     " bytes (must be 1..1073741824)"));
  }
  for (size_t n : {0, 7, 9}) {
    ExpectError(
        Read({HeaderFrame(),
              RawFrame(T::kStopCopyZeros, 1, std::string(n, '\1'))}),
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("frame 1: zero-run payload of ", n, " bytes (must be 8)"));
  }
  StreamReader reader(UINT64_MAX);
  ASSERT_TRUE(reader.Consume(HeaderFrame()).ok());
  absl::StatusOr<StreamEvent> e =
      reader.Consume(RawFrame(T::kStopCopyZeros, 1, U64(kMaxZeroRun)));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(std::get<ZerosEvent>(*e).count, kMaxZeroRun);
  EXPECT_EQ(std::get<ZerosEvent>(*e).section, Section::kStopCopy);
}

TEST(StreamReaderTest, DeviceBytesLimit) {
  const std::string ten(10, 'x');
  // Exactly at the limit is fine.
  EXPECT_TRUE(
      Read({HeaderFrame(), RawFrame(T::kStopCopyData, 1, ten),
            End(2, 0, 10, Digest({RawFrame(T::kStopCopyData, 1, ten)}))},
           10)
          .ok());
  ExpectError(
      Read({HeaderFrame(), RawFrame(T::kStopCopyData, 1, ten + "y")}, 10),
      absl::StatusCode::kResourceExhausted,
      "frame 1: device data exceeds the limit of 10 bytes (0 "
      "received, frame adds 11)");
  // Both sections and zero runs count.
  ExpectError(Read({HeaderFrame(), RawFrame(T::kPreCopyData, 1, "123456"),
                    RawFrame(T::kStopCopyZeros, 2, U64(5))},
                   10),
              absl::StatusCode::kResourceExhausted,
              "frame 2: device data exceeds the limit of 10 bytes (6 "
              "received, frame adds 5)");
  ExpectError(Read({HeaderFrame(), RawFrame(T::kPreCopyZeros, 1, U64(1))}, 0),
              absl::StatusCode::kResourceExhausted,
              "frame 1: device data exceeds the limit of 0 bytes (0 "
              "received, frame adds 1)");
  // A maximal zero run, then one byte too many.
  StreamReader reader(kMaxZeroRun + 10);
  ASSERT_TRUE(reader.Consume(HeaderFrame()).ok());
  ASSERT_TRUE(
      reader.Consume(RawFrame(T::kPreCopyZeros, 1, U64(kMaxZeroRun))).ok());
  ExpectError(reader.Consume(RawFrame(T::kStopCopyZeros, 2, U64(11))).status(),
              absl::StatusCode::kResourceExhausted,
              "frame 2: device data exceeds the limit of 1073741834 bytes "
              "(1073741824 received, frame adds 11)");
}

TEST(StreamReaderTest, UnknownTypesFlagsAndReservedBits) {
  for (uint8_t type : {0, 7, 255}) {
    ExpectError(Read({HeaderFrame(), RawFrame(type, 1, "x")}),
                absl::StatusCode::kInvalidArgument,
                absl::StrCat("frame 1: unknown frame type ", type));
  }
  ExpectError(
      Read({HeaderFrame(),
            RawFrame(T::kPreCopyData, 1, "x", RawFields{.flags = 0x8000})}),
      absl::StatusCode::kInvalidArgument, "frame 1: unknown flags 0x8000");
  ExpectError(Read({HeaderFrame(), RawFrame(T::kPreCopyData, 1, "x",
                                            RawFields{.reserved = 1})}),
              absl::StatusCode::kInvalidArgument,
              "frame 1: reserved field is 0x1 (must be 0)");
}

TEST(StreamReaderTest, FinishWithoutEnd) {
  std::vector<std::string> frames = ValidStream();
  frames.pop_back();
  ExpectError(Read(frames), absl::StatusCode::kDataLoss,
              "stream ended without END (after 3 frames)");
}

TEST(StreamReaderTest, FailureIsFinal) {
  std::vector<std::string> frames = ValidStream();
  StreamReader reader(UINT64_MAX);
  ASSERT_TRUE(reader.Consume(frames[0]).ok());
  absl::Status first = reader.Consume(frames[2]).status();  // skips frame 1
  ASSERT_FALSE(first.ok());
  // The right frame, now, is refused with the same error.
  EXPECT_EQ(reader.Consume(frames[1]).status(), first);
  EXPECT_EQ(reader.status(), first);
  EXPECT_EQ(reader.Finish(), first);
  EXPECT_EQ(reader.next_sequence(), 1u);
}

TEST(SplitFramesTest, PackedFramesSplitBack) {
  std::vector<std::string> frames = ValidStream();
  std::string packed;
  for (const std::string& f : frames) packed += f;
  absl::StatusOr<std::vector<std::string_view>> split = SplitFrames(packed, 4);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(*split, Views(frames));
  EXPECT_TRUE(SplitFrames("", 0)->empty());

  EXPECT_EQ(SplitFrames(packed, 3).status().code(),
            absl::StatusCode::kResourceExhausted);
  absl::Status s = SplitFrames(packed + "abc", 10).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(s.message()),
      StartsWith(absl::StrCat("packed frame 4 at offset ", packed.size())));
  EXPECT_EQ(
      SplitFrames(packed.substr(0, packed.size() - 1), 10).status().code(),
      absl::StatusCode::kDataLoss);
  std::string foreign = packed;
  foreign[frames[0].size()] = 'X';
  EXPECT_THAT(SplitFrames(foreign, 10).status().message(),
              HasSubstr("packed frame 1 at offset"));

  std::string huge = frames[0];
  PutFixed<uint32_t>(reinterpret_cast<uint8_t*>(huge.data()) + 16,
                     kMaxFramePayload + 1);
  EXPECT_EQ(SplitFrames(huge, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vfiomig::stream
