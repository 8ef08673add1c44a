#include "daemon/stream/frame_buffer.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "daemon/stream/format.h"
#include "gtest/gtest.h"

namespace vfiomig::stream {
namespace {

uintptr_t ChecksumStart(absl::Span<uint8_t> frame) {
  return reinterpret_cast<uintptr_t>(frame.data() + kChecksumStart);
}

TEST(FrameBufferTest, ChecksummedBytesStartOnTheBoundary) {
  FrameBuffer buffer;
  for (size_t size : {kFrameHeaderSize, kFrameHeaderSize + 1, size_t{4096},
                      size_t{1} << 20, kMaxFrameSize}) {
    absl::Span<uint8_t> frame = buffer.Frame(size);
    ASSERT_EQ(frame.size(), size);
    EXPECT_EQ(ChecksumStart(frame) % kChecksumAlignment, 0u) << size;
  }
}

TEST(FrameBufferTest, GrowsToTheLargestAndNeverShrinks) {
  FrameBuffer buffer;
  EXPECT_EQ(buffer.capacity(), 0u);
  absl::Span<uint8_t> big = buffer.Frame(100'000);
  EXPECT_EQ(buffer.capacity(), 100'000u);
  std::memset(big.data(), 0xab, big.size());
  // A smaller frame reuses the same memory (no allocation per frame) ...
  absl::Span<uint8_t> small = buffer.Frame(64);
  EXPECT_EQ(small.data(), big.data());
  EXPECT_EQ(small.size(), 64u);
  EXPECT_EQ(buffer.capacity(), 100'000u);
  // ... and a larger one gets new memory, still aligned.
  absl::Span<uint8_t> bigger = buffer.Frame(200'000);
  EXPECT_EQ(buffer.capacity(), 200'000u);
  EXPECT_EQ(ChecksumStart(bigger) % kChecksumAlignment, 0u);
  std::memset(bigger.data(), 0xcd, bigger.size());  // ASan: all of it is ours
}

TEST(FrameBufferTest, SealedFrameInPlaceChecksumsLikeAnyOther) {
  FrameBuffer buffer;
  constexpr size_t kSize = kFrameHeaderSize + 1000;
  absl::Span<uint8_t> frame = buffer.Frame(kSize);
  for (size_t i = kFrameHeaderSize; i < kSize; ++i) {
    frame[i] = static_cast<uint8_t>(i * 7);
  }
  const uint64_t sum = SealFrame(frame, FrameType::kStopCopyData, 3);
  // The same frame at an unaligned address checksums the same.
  std::vector<uint8_t> copy(1);
  copy.insert(copy.end(), frame.begin(), frame.end());
  EXPECT_EQ(FrameChecksum(absl::MakeConstSpan(copy).subspan(1)), sum);
}

}  // namespace
}  // namespace vfiomig::stream
