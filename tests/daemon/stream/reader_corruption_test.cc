// Fault injection: corrupted, damaged and random frames. Whatever the
// damage, the reader refuses the stream (and never crashes).
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/stream/format.h"
#include "daemon/stream/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/stream/stream_test_util.h"

namespace vfiomig::stream {
namespace {

using testing::DeviceData;
using testing::HeaderFrame;
using testing::Read;
using ::testing::StartsWith;
using testing::ValidStream;
using testing::Write;

// Every single-byte corruption of every frame of a small stream is refused,
// and the error names the frame.
TEST(StreamReaderCorruptionTest, EveryCorruptedByteIsRefused) {
  const std::vector<std::string> good = ValidStream();
  ASSERT_TRUE(Read(good).ok());
  int checksum_errors = 0;
  for (size_t f = 0; f < good.size(); ++f) {
    for (size_t i = 0; i < good[f].size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::vector<std::string> frames = good;
        frames[f][i] = static_cast<char>(frames[f][i] ^ mask);
        absl::Status s = Read(frames);
        ASSERT_FALSE(s.ok()) << "frame " << f << " byte " << i;
        EXPECT_THAT(std::string(s.message()),
                    StartsWith(absl::StrCat("frame ", f, ": ")));
        if (absl::StrContains(s.message(), "checksum mismatch")) {
          ++checksum_errors;
        }
      }
    }
  }
  // All but magic, version and length bytes are caught by the checksum.
  size_t total = 0;
  for (const std::string& f : good) total += f.size();
  EXPECT_EQ(checksum_errors, 3 * (total - good.size() * 9));
}

// Random bytes of random lengths, some dressed up as plausible frames (right
// magic, version, length, sequence and checksum) so they reach the type and
// payload checks. Must never crash; undressed garbage is always refused.
TEST(StreamReaderCorruptionTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(20240601);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    size_t len = rng() % 128;
    std::string frame = testing::RandomBytes(len, rng);
    bool dressed = len >= kFrameHeaderSize && rng() % 2 == 0;
    if (dressed) {
      auto* p = reinterpret_cast<uint8_t*>(frame.data());
      PutFixed<uint32_t>(p, kFrameMagic);
      p[12] = kFrameVersion;
      p[13] = static_cast<uint8_t>(1 + rng() % 6);
      if (rng() % 2) PutFixed<uint16_t>(p + 14, 0);
      PutFixed<uint32_t>(p + 16, static_cast<uint32_t>(len - kFrameHeaderSize));
      if (rng() % 2) PutFixed<uint32_t>(p + 20, 0);
      PutFixed<uint64_t>(p + 24, 1);
      PutFixed<uint64_t>(p + 4, FrameChecksum(absl::MakeConstSpan(p, len)));
    }
    StreamReader reader(uint64_t{1} << 20);
    ASSERT_TRUE(reader.Consume(HeaderFrame()).ok());
    absl::StatusOr<StreamEvent> e = reader.Consume(frame);
    if (e.ok()) {
      ++accepted;
      EXPECT_TRUE(dressed);
      EXPECT_TRUE(reader.status().ok());
      EXPECT_LE(
          reader.totals().pre_copy_bytes + reader.totals().stop_copy_bytes,
          uint64_t{1} << 20);
    } else {
      EXPECT_EQ(reader.status(), e.status());
      EXPECT_FALSE(reader.Finish().ok());
    }
  }
  EXPECT_GT(accepted, 0);  // the dressed frames did get through sometimes
}

// Random damage to a real stream: flip a byte, drop, duplicate, swap or cut
// a frame. Every damaged stream is refused.

TEST(StreamReaderCorruptionTest, DamagedStreamsAreAlwaysRefused) {
  std::mt19937_64 rng(99);
  std::string pre = DeviceData(5 * kZeroBlockSize + 17, rng);
  std::string stop = DeviceData(4 * kZeroBlockSize + 3, rng);
  const std::vector<std::string> good =
      Write(pre, stop, kZeroBlockSize + 1, ZeroCheck::kDetect);
  ASSERT_TRUE(Read(good).ok());
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::string> frames = good;
    size_t f = rng() % frames.size();
    size_t g = rng() % frames.size();
    switch (rng() % 5) {
      case 0: {
        std::string& fr = frames[f];
        fr[rng() % fr.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      }
      case 1:
        frames.erase(frames.begin() + f);
        break;
      case 2:
        frames.insert(frames.begin() + f, frames[g]);
        break;
      case 3:
        if (f == g) g = (f + 1) % frames.size();
        std::swap(frames[f], frames[g]);
        break;
      case 4:
        frames[f].resize(rng() % frames[f].size());
        break;
    }
    EXPECT_FALSE(Read(frames).ok()) << "iteration " << iter;
  }
}

}  // namespace
}  // namespace vfiomig::stream
