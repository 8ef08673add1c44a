#include "daemon/stream/writer.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "daemon/stream/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/stream/stream_test_util.h"

namespace vfiomig::stream {
namespace {

using testing::Bytes;
using testing::Digest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadAll;
using testing::TestHeader;

std::vector<std::string_view> Split(const std::string& packed) {
  absl::StatusOr<std::vector<std::string_view>> frames =
      SplitFrames(packed, 1 << 20);
  EXPECT_TRUE(frames.ok()) << frames.status();
  return frames.ok() ? *frames : std::vector<std::string_view>{};
}

// Types and sequence numbers of the frames in `packed`.
std::vector<FrameType> Types(const std::string& packed) {
  std::vector<FrameType> types;
  uint64_t seq = 0;
  for (std::string_view f : Split(packed)) {
    FrameHeader h =
        DecodeFrameHeader(reinterpret_cast<const uint8_t*>(f.data()));
    EXPECT_EQ(h.sequence, seq++);
    types.push_back(static_cast<FrameType>(h.type));
  }
  return types;
}

uint64_t ZeroCount(std::string_view frame) {
  return GetFixed<uint64_t>(reinterpret_cast<const uint8_t*>(frame.data()) +
                            kFrameHeaderSize);
}

TEST(IsAllZeroTest, EveryLengthAndPosition) {
  for (size_t n = 0; n <= 200; ++n) {
    std::string buf(n, '\0');
    EXPECT_TRUE(IsAllZero(Bytes(buf))) << n;
    for (size_t i = 0; i < n; ++i) {
      buf[i] = static_cast<char>(0x80 >> (i % 8));
      EXPECT_FALSE(IsAllZero(Bytes(buf))) << n << " " << i;
      buf[i] = 0;
    }
  }
}

TEST(IsAllZeroTest, LargeBufferWithOneByteSetAnywhere) {
  std::string buf(kZeroBlockSize * 3 + 5, '\0');
  EXPECT_TRUE(IsAllZero(Bytes(buf)));
  for (size_t i : {size_t{0}, size_t{15}, size_t{16}, size_t{4095},
                   buf.size() / 2, buf.size() - 1}) {
    buf[i] = 1;
    EXPECT_FALSE(IsAllZero(Bytes(buf))) << i;
    buf[i] = 0;
  }
}

TEST(StreamWriterTest, HeaderIsFrameZero) {
  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  EXPECT_EQ(w.next_sequence(), 1u);
  EXPECT_EQ(out, testing::HeaderFrame());
}

TEST(StreamWriterTest, GrammarViolationsWriteNothing) {
  StreamWriter w;
  std::string out;
  const std::string data = "abc";
  EXPECT_EQ(
      w.AddData(Section::kPreCopy, Bytes(data), ZeroCheck::kOff, &out).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.AddZeros(Section::kStopCopy, 10, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.AddEnd(&out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(out.empty());

  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  EXPECT_EQ(w.AddHeader(TestHeader(), &out).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(
      w.AddData(Section::kStopCopy, Bytes(data), ZeroCheck::kOff, &out).ok());
  const std::string before = out;
  absl::Status s =
      w.AddData(Section::kPreCopy, Bytes(data), ZeroCheck::kOff, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("PRE_COPY data after STOP_COPY data"));
  EXPECT_EQ(w.AddZeros(Section::kPreCopy, 1, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w.AddEnd(&out).ok());
  EXPECT_TRUE(w.ended());
  const std::string ended = out;
  EXPECT_EQ(w.AddEnd(&out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      w.AddData(Section::kStopCopy, Bytes(data), ZeroCheck::kOff, &out).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out, ended);
  EXPECT_EQ(before.size() + kFrameHeaderSize + kEndPayloadSize, out.size());
  EXPECT_EQ(w.next_sequence(), 3u);
}

TEST(StreamWriterTest, ZeroDetectionWorksPerBlock) {
  std::mt19937_64 rng(1);
  const size_t B = kZeroBlockSize;
  std::string data = testing::RandomBytes(B, rng);  // data
  data += std::string(2 * B, '\0');                 // zeros
  data += testing::RandomBytes(B, rng);             // data
  std::string mostly_zero(B, '\0');                 // data (one byte set)
  mostly_zero[B - 1] = 1;
  data += mostly_zero;
  data += std::string(100, '\0');  // short last block: zeros

  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  ASSERT_TRUE(
      w.AddData(Section::kPreCopy, Bytes(data), ZeroCheck::kDetect, &out).ok());
  ASSERT_TRUE(w.AddEnd(&out).ok());
  using T = FrameType;
  EXPECT_THAT(Types(out),
              ElementsAre(T::kHeader, T::kPreCopyData, T::kPreCopyZeros,
                          T::kPreCopyData, T::kPreCopyZeros, T::kEnd));
  std::vector<std::string_view> frames = Split(out);
  EXPECT_EQ(frames[1].size(), kFrameHeaderSize + B);
  EXPECT_EQ(ZeroCount(frames[2]), 2 * B);
  EXPECT_EQ(frames[3].size(), kFrameHeaderSize + 2 * B);
  EXPECT_EQ(ZeroCount(frames[4]), 100u);

  testing::ReadResult r = ReadAll(frames);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.pre_copy, data);
  EXPECT_EQ(r.end->pre_copy_bytes, data.size());

  // Without detection: one data frame, same device data and byte counts;
  // the END digest follows the frames (format.h), so it differs.
  StreamWriter plain;
  std::string plain_out;
  ASSERT_TRUE(plain.AddHeader(TestHeader(), &plain_out).ok());
  ASSERT_TRUE(
      plain.AddData(Section::kPreCopy, Bytes(data), ZeroCheck::kOff, &plain_out)
          .ok());
  EXPECT_THAT(Types(plain_out), ElementsAre(T::kHeader, T::kPreCopyData));
  EXPECT_EQ(plain.totals().pre_copy_bytes, w.totals().pre_copy_bytes);
  EXPECT_EQ(plain.totals().stop_copy_bytes, w.totals().stop_copy_bytes);
  EXPECT_NE(plain.totals().data_checksum, w.totals().data_checksum);
}

TEST(StreamWriterTest, DataIsCutAtTheFrameLimit) {
  std::mt19937_64 rng(2);
  std::string data = testing::RandomBytes(2 * kMaxDataPayload + 1, rng);
  for (ZeroCheck zc : {ZeroCheck::kOff, ZeroCheck::kDetect}) {
    StreamWriter w;
    std::string out;
    ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
    ASSERT_TRUE(w.AddData(Section::kStopCopy, Bytes(data), zc, &out).ok());
    std::vector<std::string_view> frames = Split(out);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[1].size(), kFrameHeaderSize + kMaxDataPayload);
    EXPECT_EQ(frames[2].size(), kFrameHeaderSize + kMaxDataPayload);
    EXPECT_EQ(frames[3].size(), kFrameHeaderSize + 1);
  }
}

TEST(StreamWriterTest, ZeroRunsAreCutAtTheirLimit) {
  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  ASSERT_TRUE(w.AddZeros(Section::kPreCopy, 0, &out).ok());
  EXPECT_EQ(w.next_sequence(), 1u);
  ASSERT_TRUE(w.AddZeros(Section::kPreCopy, 2 * kMaxZeroRun + 5, &out).ok());
  std::vector<std::string_view> frames = Split(out);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(ZeroCount(frames[1]), kMaxZeroRun);
  EXPECT_EQ(ZeroCount(frames[2]), kMaxZeroRun);
  EXPECT_EQ(ZeroCount(frames[3]), 5u);
  EXPECT_EQ(w.totals().pre_copy_bytes, 2 * kMaxZeroRun + 5);
}

TEST(StreamWriterTest, SealDataInPlace) {
  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  std::vector<std::string> frames = {out};

  std::vector<uint8_t> buf(kFrameHeaderSize + 64 * 1024);
  absl::Span<uint8_t> payload = PayloadArea(absl::MakeSpan(buf));
  ASSERT_EQ(payload.size(), 64u * 1024);
  ASSERT_EQ(payload.data(), buf.data() + kFrameHeaderSize);
  std::string expected;

  // A data payload.
  for (size_t i = 0; i < 1000; ++i) payload[i] = static_cast<uint8_t>(i);
  absl::StatusOr<size_t> len = w.SealData(
      Section::kPreCopy, absl::MakeSpan(buf), 1000, ZeroCheck::kDetect);
  ASSERT_TRUE(len.ok()) << len.status();
  EXPECT_EQ(*len, kFrameHeaderSize + 1000);
  frames.emplace_back(reinterpret_cast<char*>(buf.data()), *len);
  expected.append(reinterpret_cast<char*>(payload.data()), 1000);

  // An all-zero payload becomes a zero run at the front of the buffer.
  std::fill(payload.begin(), payload.end(), 0);
  len = w.SealData(Section::kStopCopy, absl::MakeSpan(buf), payload.size(),
                   ZeroCheck::kDetect);
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, kFrameHeaderSize + kZerosPayloadSize);
  frames.emplace_back(reinterpret_cast<char*>(buf.data()), *len);
  EXPECT_EQ(ZeroCount(frames.back()), payload.size());
  std::string stop(payload.size(), '\0');

  // A zero payload too short to gain from a zero run stays data; so does
  // any payload without detection.
  std::fill(payload.begin(), payload.end(), 0);
  len = w.SealData(Section::kStopCopy, absl::MakeSpan(buf).first(40), 8,
                   ZeroCheck::kDetect);
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, kFrameHeaderSize + 8);
  frames.emplace_back(reinterpret_cast<char*>(buf.data()), *len);
  len =
      w.SealData(Section::kStopCopy, absl::MakeSpan(buf), 100, ZeroCheck::kOff);
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, kFrameHeaderSize + 100);
  frames.emplace_back(reinterpret_cast<char*>(buf.data()), *len);
  stop.append(108, '\0');

  out.clear();
  ASSERT_TRUE(w.AddEnd(&out).ok());
  frames.push_back(out);
  testing::ReadResult r = ReadAll(testing::Views(frames));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.pre_copy, expected);
  EXPECT_EQ(r.stop_copy, stop);
  using T = FrameType;
  EXPECT_THAT(r.types,
              ElementsAre(T::kHeader, T::kPreCopyData, T::kStopCopyZeros,
                          T::kStopCopyData, T::kStopCopyData, T::kEnd));
}

TEST(StreamWriterTest, SealDataRefusesBadSizes) {
  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  std::vector<uint8_t> buf(kFrameHeaderSize + 16);
  auto seal = [&](absl::Span<uint8_t> b, size_t n) {
    return w.SealData(Section::kPreCopy, b, n, ZeroCheck::kDetect).status();
  };
  EXPECT_EQ(seal(absl::MakeSpan(buf), 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seal(absl::MakeSpan(buf), 17).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seal(absl::MakeSpan(buf).first(10), 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(seal(absl::MakeSpan(buf), kMaxDataPayload + 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.next_sequence(), 1u);
  EXPECT_TRUE(PayloadArea(absl::MakeSpan(buf).first(kFrameHeaderSize)).empty());
}

TEST(StreamWriterTest, TotalsCountBothSectionsAndZeros) {
  StreamWriter w;
  std::string out;
  ASSERT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  const std::string data = "0123456789";
  ASSERT_TRUE(
      w.AddData(Section::kPreCopy, Bytes(data), ZeroCheck::kOff, &out).ok());
  ASSERT_TRUE(w.AddZeros(Section::kPreCopy, 6, &out).ok());
  ASSERT_TRUE(w.AddZeros(Section::kStopCopy, 7, &out).ok());
  ASSERT_TRUE(
      w.AddData(Section::kStopCopy, Bytes(data), ZeroCheck::kOff, &out).ok());
  StreamTotals t = w.totals();
  EXPECT_EQ(t.pre_copy_bytes, 16u);
  EXPECT_EQ(t.stop_copy_bytes, 17u);
  // Four frames after the header: data, zeros, zeros, data.
  std::vector<std::string_view> sealed = Split(out);
  ASSERT_EQ(sealed.size(), 5u);
  std::vector<std::string> after(sealed.begin() + 1, sealed.end());
  EXPECT_EQ(t.data_checksum, Digest(after));
  std::swap(after[1], after[2]);
  EXPECT_NE(t.data_checksum, Digest(after));  // order counts
  ASSERT_TRUE(w.AddEnd(&out).ok());
  std::vector<std::string_view> frames = Split(out);
  EXPECT_EQ(
      DecodeEndPayload(reinterpret_cast<const uint8_t*>(frames.back().data()) +
                       kFrameHeaderSize),
      t);
}

}  // namespace
}  // namespace vfiomig::stream
