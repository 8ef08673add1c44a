// The frame layout, pinned byte by byte: a change here is a wire format
// change and must come with a new kFrameVersion.
#include "daemon/stream/format.h"

#include <xxhash.h>

#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/daemon/stream/stream_test_util.h"

namespace vfiomig::stream {
namespace {

using testing::RawFrame;

std::string Hex(const std::string& s) {
  return absl::BytesToHexString(absl::string_view(s.data(), s.size()));
}

TEST(FormatTest, HeaderFieldOffsets) {
  FrameHeader h;
  h.version = 0x11;
  h.type = 0x22;
  h.flags = 0x3344;
  h.length = 0x55667788;
  h.reserved = 0x99aabbcc;
  h.sequence = 0x0102030405060708;
  h.checksum = 0xf1f2f3f4f5f6f7f8;
  std::string buf(kFrameHeaderSize, '\0');
  EncodeFrameHeader(h, reinterpret_cast<uint8_t*>(buf.data()));
  EXPECT_EQ(Hex(buf),
            "56464d53"            // "VFMS"
            "f8f7f6f5f4f3f2f1"    // checksum
            "11"                  // version
            "22"                  // type
            "4433"                // flags
            "88776655"            // length
            "ccbbaa99"            // reserved
            "0807060504030201");  // sequence
  FrameHeader back = DecodeFrameHeader(reinterpret_cast<uint8_t*>(buf.data()));
  EXPECT_EQ(back.version, h.version);
  EXPECT_EQ(back.type, h.type);
  EXPECT_EQ(back.flags, h.flags);
  EXPECT_EQ(back.length, h.length);
  EXPECT_EQ(back.reserved, h.reserved);
  EXPECT_EQ(back.sequence, h.sequence);
  EXPECT_EQ(back.checksum, h.checksum);
  EXPECT_EQ(DecodeMagic(reinterpret_cast<uint8_t*>(buf.data())), kFrameMagic);
}

TEST(FormatTest, TypeValuesArePinned) {
  EXPECT_EQ(static_cast<int>(FrameType::kHeader), 1);
  EXPECT_EQ(static_cast<int>(FrameType::kPreCopyData), 2);
  EXPECT_EQ(static_cast<int>(FrameType::kPreCopyZeros), 3);
  EXPECT_EQ(static_cast<int>(FrameType::kStopCopyData), 4);
  EXPECT_EQ(static_cast<int>(FrameType::kStopCopyZeros), 5);
  EXPECT_EQ(static_cast<int>(FrameType::kEnd), 6);
  EXPECT_EQ(DataFrameType(Section::kPreCopy), FrameType::kPreCopyData);
  EXPECT_EQ(DataFrameType(Section::kStopCopy), FrameType::kStopCopyData);
  EXPECT_EQ(ZerosFrameType(Section::kPreCopy), FrameType::kPreCopyZeros);
  EXPECT_EQ(ZerosFrameType(Section::kStopCopy), FrameType::kStopCopyZeros);
}

TEST(FormatTest, Names) {
  EXPECT_EQ(FrameTypeName(1), "HEADER");
  EXPECT_EQ(FrameTypeName(5), "STOP_COPY_ZEROS");
  EXPECT_EQ(FrameTypeName(6), "END");
  EXPECT_EQ(FrameTypeName(0), "TYPE_0");
  EXPECT_EQ(FrameTypeName(200), "TYPE_200");
  EXPECT_EQ(std::string(SectionName(Section::kPreCopy)), "PRE_COPY");
  EXPECT_EQ(std::string(SectionName(Section::kStopCopy)), "STOP_COPY");
}

// A whole END frame, checksum included, as bytes: pins the checksum's
// coverage and seed as well as the layout.
TEST(FormatTest, GoldenEndFrame) {
  std::string frame(kFrameHeaderSize + kEndPayloadSize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(frame.data());
  EncodeEndPayload(
      {.pre_copy_bytes = 1, .stop_copy_bytes = 2, .data_checksum = 3},
      p + kFrameHeaderSize);
  SealFrame(absl::MakeSpan(p, frame.size()), FrameType::kEnd, 7);
  // The checksum is XXH3-64 of everything from offset 12 on.
  uint64_t expected_sum = XXH3_64bits(p + 12, frame.size() - 12);
  EXPECT_EQ(GetFixed<uint64_t>(p + 4), expected_sum);
  EXPECT_EQ(Hex(frame), "56464d53" + Hex(testing::U64(expected_sum)) +
                            "01060000"
                            "18000000"
                            "00000000"
                            "0700000000000000"
                            "0100000000000000"
                            "0200000000000000"
                            "0300000000000000");
  EXPECT_EQ(frame,
            RawFrame(FrameType::kEnd, 7, testing::EndPayload({1, 2, 3})));
  EXPECT_EQ(DecodeEndPayload(p + kFrameHeaderSize), (StreamTotals{1, 2, 3}));
}

TEST(FormatTest, ChecksumCoversEverythingAfterItself) {
  std::string frame = RawFrame(FrameType::kStopCopyData, 3, "payload");
  auto span = [&] {
    return absl::MakeConstSpan(reinterpret_cast<uint8_t*>(frame.data()),
                               frame.size());
  };
  const uint64_t sum = FrameChecksum(span());
  for (size_t i = kChecksumStart; i < frame.size(); ++i) {
    frame[i] ^= 1;
    EXPECT_NE(FrameChecksum(span()), sum) << "byte " << i;
    frame[i] ^= 1;
  }
  EXPECT_EQ(FrameChecksum(span()), sum);
}

TEST(FormatTest, FixedWidthHelpers) {
  uint8_t buf[8];
  PutFixed<uint16_t>(buf, 0xbeef);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(buf[1], 0xbe);
  EXPECT_EQ(GetFixed<uint16_t>(buf), 0xbeef);
  PutFixed<uint32_t>(buf, 0xdeadbeef);
  EXPECT_EQ(GetFixed<uint32_t>(buf), 0xdeadbeefu);
  PutFixed<uint64_t>(buf, 0x8000000000000001);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[7], 0x80);
  EXPECT_EQ(GetFixed<uint64_t>(buf), 0x8000000000000001u);
}

TEST(DataChecksumTest, IsXxh3OverTheFrameChecksumsInOrder) {
  DataChecksum sum;
  EXPECT_EQ(sum.Digest(), XXH3_64bits(nullptr, 0));
  const uint64_t frames[] = {0x0123456789abcdef, 7, 0};
  uint8_t bytes[sizeof(frames)];
  for (size_t i = 0; i < 3; ++i) {
    sum.AddFrame(frames[i]);
    PutFixed<uint64_t>(bytes + 8 * i, frames[i]);
  }
  EXPECT_EQ(sum.Digest(), XXH3_64bits(bytes, sizeof(bytes)));
  DataChecksum swapped;
  for (size_t i : {1, 0, 2}) swapped.AddFrame(frames[i]);
  EXPECT_NE(swapped.Digest(), sum.Digest());
}

TEST(DataChecksumTest, MovedChecksumKeepsItsState) {
  DataChecksum a;
  a.AddFrame(10);
  uint64_t before = a.Digest();
  DataChecksum b = std::move(a);
  EXPECT_EQ(b.Digest(), before);
}

}  // namespace
}  // namespace vfiomig::stream
