// The sim stream format, writer and reader on their own (no device): a
// written stream parses back, and hostile streams are refused.
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "plugins/sim/sim_generator.h"
#include "plugins/sim/sim_stream_format.h"
#include "plugins/sim/sim_stream_reader.h"
#include "plugins/sim/sim_stream_writer.h"
#include "xxhash.h"

namespace vfiomig::sim {
namespace {

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Records what the reader reports, in order.
class RecordingSink : public StreamSink {
 public:
  absl::Status OnHeader(const StreamHeader& h) override {
    events.push_back("header " + std::to_string(h.total_size) + " seed " +
                     std::to_string(h.origin_seed));
    return absl::OkStatus();
  }
  absl::Status OnBlockStart(const RecordHeader& r) override {
    events.push_back("block " + std::to_string(r.index) + " v" +
                     std::to_string(r.version));
    payload.clear();
    return absl::OkStatus();
  }
  absl::Status OnBlockData(uint64_t offset,
                           absl::Span<const uint8_t> data) override {
    EXPECT_EQ(offset, payload.size());
    payload.insert(payload.end(), data.begin(), data.end());
    return absl::OkStatus();
  }
  absl::Status OnBlockEnd() override {
    events.push_back(
        "end of block, " + std::to_string(payload.size()) + " bytes, hash " +
        std::to_string(XXH3_64bits(payload.data(), payload.size())));
    return absl::OkStatus();
  }
  absl::Status OnEnd(const StreamEnd& e) override {
    events.push_back("end " + std::to_string(e.block_records) + " " +
                     std::to_string(e.content_digest));
    return absl::OkStatus();
  }
  std::vector<std::string> events;
  std::vector<uint8_t> payload;
};

void Append(std::vector<uint8_t>& out, StreamWriter& w, size_t piece) {
  std::vector<uint8_t> buf(piece);
  while (!w.idle()) {
    size_t n = w.Emit(absl::MakeSpan(buf));
    ASSERT_GT(n, 0u);
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
}

// A stream of a 1 MiB + 100 byte state: header, block 1, block 0 (v2),
// block 1 again (v3), end.
std::vector<uint8_t> SampleStream(size_t piece, uint64_t* hash_of_block0) {
  const uint64_t size = kBlockSize + 100, seed = 77;
  StreamWriter w;
  std::vector<uint8_t> out;
  w.StartHeader(StreamHeader{.total_size = size, .origin_seed = seed});
  Append(out, w, piece);
  w.StartBlock(1, 0, BlockKey(seed, 1, 0), 100);
  Append(out, w, piece);
  w.StartBlock(0, 2, BlockKey(seed, 0, 2), kBlockSize);
  Append(out, w, piece);
  if (hash_of_block0) *hash_of_block0 = w.payload_hash();
  w.StartBlock(1, 3, BlockKey(seed, 1, 3), 100);
  Append(out, w, piece);
  w.StartEnd(StreamEnd{.block_records = 3, .content_digest = 99});
  Append(out, w, piece);
  return out;
}

TEST(SimStreamTest, WriterOutputParsesBackInAnyChunking) {
  uint64_t hash0 = 0;
  std::vector<uint8_t> stream = SampleStream(4096, &hash0);
  EXPECT_EQ(stream.size(), kStreamHeaderSize + 3 * kRecordHeaderSize +
                               kBlockSize + 200 + kEndRecordSize);
  std::vector<uint8_t> block0(kBlockSize);
  FillContent(BlockKey(77, 0, 2), 0, absl::MakeSpan(block0));
  EXPECT_EQ(hash0, XXH3_64bits(block0.data(), block0.size()));
  // The writer's output does not depend on how it was pulled.
  EXPECT_EQ(SampleStream(1, nullptr), stream);
  EXPECT_EQ(SampleStream(kBlockSize + 7, nullptr), stream);

  std::vector<std::string> expected;
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{24}, stream.size()}) {
    RecordingSink sink;
    StreamReader reader(&sink);
    for (size_t pos = 0; pos < stream.size(); pos += chunk) {
      size_t n = std::min(chunk, stream.size() - pos);
      ASSERT_TRUE(
          reader.Consume(absl::MakeConstSpan(stream).subspan(pos, n)).ok())
          << reader.status();
    }
    EXPECT_TRUE(reader.finished());
    EXPECT_EQ(reader.bytes_consumed(), stream.size());
    if (expected.empty()) expected = sink.events;
    EXPECT_EQ(sink.events, expected) << "chunk " << chunk;
  }
  ASSERT_EQ(expected.size(), 8u);
  EXPECT_EQ(expected[0],
            "header " + std::to_string(kBlockSize + 100) + " seed 77");
  EXPECT_EQ(expected[3], "block 0 v2");
  EXPECT_EQ(expected[4],
            "end of block, 1048576 bytes, hash " + std::to_string(hash0));
  EXPECT_EQ(expected[7], "end 3 99");
}

// Byte offsets of fields in SampleStream().
constexpr size_t kFirstRecord = kStreamHeaderSize;
constexpr size_t kSecondRecord = kFirstRecord + kRecordHeaderSize + 100;

void Put32(std::vector<uint8_t>& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(std::vector<uint8_t>& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

struct Hostile {
  std::string name;
  void (*mutate)(std::vector<uint8_t>&);
  std::string message;
  friend void PrintTo(const Hostile& c, std::ostream* os) { *os << c.name; }
};

class SimStreamHostileTest : public ::testing::TestWithParam<Hostile> {};

TEST_P(SimStreamHostileTest, RefusedAndLatched) {
  std::vector<uint8_t> stream = SampleStream(1 << 16, nullptr);
  GetParam().mutate(stream);
  RecordingSink sink;
  StreamReader reader(&sink);
  absl::Status s = reader.Consume(stream);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(Msg(s).find(GetParam().message), std::string::npos) << s;
  EXPECT_FALSE(reader.finished());
  // Later bytes, even a valid stream, cannot resynchronise.
  std::vector<uint8_t> good = SampleStream(1 << 16, nullptr);
  EXPECT_EQ(reader.Consume(good), s);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SimStreamHostileTest,
    ::testing::Values(
        Hostile{"BadMagic", [](std::vector<uint8_t>& s) { s[0] = 'X'; },
                "sim stream byte 0: bad magic"},
        Hostile{"FormatVersion",
                [](std::vector<uint8_t>& s) { Put32(s, 8, 1); },
                "unsupported sim stream format version 1"},
        Hostile{"BlockSize",
                [](std::vector<uint8_t>& s) { Put32(s, 12, 4096); },
                "unsupported block size 4096"},
        Hostile{"ZeroSize", [](std::vector<uint8_t>& s) { Put64(s, 16, 0); },
                "state size 0 is outside"},
        Hostile{"HugeSize",
                [](std::vector<uint8_t>& s) { Put64(s, 16, ~uint64_t{0}); },
                "is outside 1.."},
        Hostile{"UnknownRecordType",
                [](std::vector<uint8_t>& s) { Put32(s, kFirstRecord, 9); },
                "sim stream byte 32: unknown record type 0x9"},
        Hostile{"IndexOutOfRange",
                [](std::vector<uint8_t>& s) { Put64(s, kFirstRecord + 8, 2); },
                "block index 2 out of range (2 blocks)"},
        Hostile{"HugeIndex",
                [](std::vector<uint8_t>& s) {
                  Put64(s, kFirstRecord + 8, ~uint64_t{0});
                },
                "out of range"},
        Hostile{"WrongLength",
                [](std::vector<uint8_t>& s) {
                  Put32(s, kFirstRecord + 4, 0xffffffff);
                },
                "block 1 has length 4294967295, expected 100"},
        Hostile{"VersionTooLarge",
                [](std::vector<uint8_t>& s) {
                  Put64(s, kSecondRecord + 16, ~uint64_t{0});
                },
                "version 18446744073709551615 is out of range"},
        Hostile{"EndCountsTooFew",
                [](std::vector<uint8_t>& s) {
                  Put64(s, s.size() - kEndPayloadSize, 2);
                },
                "end record counts 2 block records, the stream had 3"},
        Hostile{"MalformedEnd",
                [](std::vector<uint8_t>& s) {
                  Put64(s, s.size() - kEndRecordSize + 8, 1);
                },
                "malformed end record"},
        Hostile{"DataAfterEnd", [](std::vector<uint8_t>& s) { s.push_back(0); },
                "1 bytes of data after the end record"}),
    [](const ::testing::TestParamInfo<Hostile>& info) {
      return info.param.name;
    });

TEST(SimStreamTest, SinkErrorsLatchWithThePosition) {
  class Refusing : public RecordingSink {
    absl::Status OnBlockStart(const RecordHeader& r) override {
      return absl::DataLossError("nope");
    }
  } sink;
  StreamReader reader(&sink);
  std::vector<uint8_t> stream = SampleStream(1 << 16, nullptr);
  absl::Status s = reader.Consume(stream);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Msg(s), "sim stream byte 32: nope");
}

TEST(SimStreamTest, ProgressDescribesACutStream) {
  std::vector<uint8_t> stream = SampleStream(1 << 16, nullptr);
  RecordingSink sink;
  StreamReader reader(&sink);
  EXPECT_EQ(reader.Progress(), "no complete header (0 bytes)");
  ASSERT_TRUE(reader
                  .Consume(absl::MakeConstSpan(stream).first(
                      kSecondRecord + kRecordHeaderSize + 10))
                  .ok());
  EXPECT_EQ(reader.Progress(),
            "1 block records, cut inside block 0 at byte 10 of 1048576");
}

}  // namespace
}  // namespace vfiomig::sim
