#include "plugins/sim/sim_generator.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "plugins/sim/sim_content.h"

namespace vfiomig::sim {
namespace {

// Pinned output of the generator for BlockKey(1, 2, 3).
constexpr uint64_t kGoldenKey = 0x26f2a1148cf52011ULL;
// Computed independently (Python) from the definition in sim_generator.h.
constexpr uint8_t kGoldenBytes[] = {0x8d, 0x1a, 0xf9, 0x57, 0xc6, 0x9c,
                                    0xf2, 0x91, 0x41, 0xc7, 0xaf, 0x54,
                                    0x8b, 0x2e, 0x85, 0x9c};
// Word 8192 of the same key: the first word of the second 64 KiB segment.
constexpr uint64_t kGoldenSegment1Word = 0x6a7f6858f9a66bc6ULL;

std::vector<uint8_t> Bytes(uint64_t key, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  FillContent(key, offset, absl::MakeSpan(out));
  return out;
}

TEST(SimGeneratorTest, GeometryOfPartialLastBlock) {
  uint64_t size = 2 * kBlockSize + 10;
  EXPECT_EQ(BlockCount(size), 3u);
  EXPECT_EQ(BlockLength(size, 0), kBlockSize);
  EXPECT_EQ(BlockLength(size, 2), 10u);
  EXPECT_EQ(BlockLength(size, 3), 0u);
  EXPECT_EQ(BlockRangeLength(size, 1, 3), kBlockSize + 10);
  EXPECT_EQ(BlockRangeLength(size, 0, 3), size);
  EXPECT_EQ(BlockCount(60), 1u);
  EXPECT_EQ(BlockLength(60, 0), 60u);
}

// Streams from other builds must keep verifying: the bytes are part of the
// stream format.
TEST(SimGeneratorTest, KnownAnswer) {
  uint64_t key = BlockKey(1, 2, 3);
  std::vector<uint8_t> b = Bytes(key, 0, 16);
  std::vector<uint8_t> again = Bytes(BlockKey(1, 2, 3), 0, 16);
  EXPECT_EQ(b, again);
  EXPECT_EQ(key, kGoldenKey);
  EXPECT_EQ(b, std::vector<uint8_t>(std::begin(kGoldenBytes),
                                    std::end(kGoldenBytes)));
  std::vector<uint8_t> w = Bytes(key, kPadWords * 8, 8);
  uint64_t word = 0;
  for (int i = 7; i >= 0; --i) word = (word << 8) | w[i];
  EXPECT_EQ(word, kGoldenSegment1Word);
}

TEST(SimGeneratorTest, AnyOffsetMatchesTheWholeBlock) {
  uint64_t key = BlockKey(42, 7, 1);
  std::vector<uint8_t> whole = Bytes(key, 0, 4096);
  for (uint64_t offset : {0, 1, 3, 7, 8, 9, 15, 100, 4000}) {
    for (size_t n : {0, 1, 2, 7, 8, 9, 17, 64, 95}) {
      if (offset + n > whole.size()) continue;
      std::vector<uint8_t> part = Bytes(key, offset, n);
      EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + offset))
          << "offset " << offset << " length " << n;
    }
  }
}

TEST(SimGeneratorTest, EveryKeyPartChangesTheBytes) {
  std::vector<uint8_t> base = Bytes(BlockKey(1, 2, 3), 0, 64);
  EXPECT_NE(base, Bytes(BlockKey(2, 2, 3), 0, 64));
  EXPECT_NE(base, Bytes(BlockKey(1, 3, 3), 0, 64));
  EXPECT_NE(base, Bytes(BlockKey(1, 2, 4), 0, 64));
  // Not a constant or short cycle within a block; and the pad repeats
  // every 64 KiB under another mask, never as the same bytes.
  EXPECT_NE(Bytes(BlockKey(1, 2, 3), 0, 64),
            Bytes(BlockKey(1, 2, 3), kPadWords * 8, 64));
  std::vector<uint8_t> words = Bytes(BlockKey(1, 2, 3), 0, size_t{8} * 1024);
  int equal_neighbours = 0;
  for (size_t i = 8; i < words.size(); i += 8) {
    equal_neighbours += std::equal(words.begin() + i, words.begin() + i + 8,
                                   words.begin() + i - 8);
  }
  EXPECT_EQ(equal_neighbours, 0);
}

TEST(SimGeneratorTest, MatchFindsTheFirstDifferentByte) {
  uint64_t key = BlockKey(9, 0, 0);
  for (uint64_t offset : {0, 5, 8, 1001}) {
    std::vector<uint8_t> data = Bytes(key, offset, 333);
    EXPECT_EQ(MatchContent(key, offset, data), data.size());
    for (size_t bad : {0, 1, 7, 8, 100, 331, 332}) {
      std::vector<uint8_t> corrupt = data;
      corrupt[bad] ^= 0x40;
      EXPECT_EQ(MatchContent(key, offset, corrupt), bad) << "offset " << offset;
    }
    EXPECT_EQ(MatchContent(key + 1, offset, data), 0u);
  }
  EXPECT_EQ(MatchContent(key, 3, {}), 0u);
}

TEST(SimContentTest, DigestDependsOnBytesNotSeeds) {
  std::vector<uint8_t> scratch;
  SimContent a(1, 3 * kBlockSize / 2);
  SimContent b(2, 3 * kBlockSize / 2);
  uint64_t da = ComputeDigest64(a);
  EXPECT_NE(da, ComputeDigest64(b));
  // Give b a's bytes by recording a's hashes: the digest sees only hashes.
  for (uint64_t i = 0; i < a.block_count(); ++i) {
    b.Set(i, 5, HashBlock(a.key(i), a.block_length(i), scratch));
  }
  EXPECT_EQ(ComputeDigest64(b), da);
  a.Bump(1);
  EXPECT_FALSE(a.cached_hash(1).has_value());
  EXPECT_NE(ComputeDigest64(a), da);
}

TEST(SimContentTest, StaleHashIsNotCached) {
  SimContent c(1, kBlockSize);
  c.Bump(0);
  c.CacheHash(0, /*version=*/0, 1234);
  EXPECT_FALSE(c.cached_hash(0).has_value());
  c.CacheHash(0, /*version=*/1, 1234);
  EXPECT_EQ(c.cached_hash(0), 1234u);
}

}  // namespace
}  // namespace vfiomig::sim
