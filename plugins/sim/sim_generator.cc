#include "plugins/sim/sim_generator.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "xxhash.h"

namespace vfiomig::sim {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// The splitmix64 finaliser: a bijection with full avalanche, so distinct
// (key, word) pairs give unrelated words.
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Word `n` in the byte order it has in the stream.
inline uint64_t Word(uint64_t key, uint64_t n) {
  uint64_t w = Mix(key + n * kGolden);
  if constexpr (std::endian::native == std::endian::big) {
    w = __builtin_bswap64(w);
  }
  return w;
}

// The length of the common prefix of a[0, n) and b[0, n).
inline size_t SameBytes(const uint8_t* a, const uint8_t* b, size_t n) {
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

uint64_t BlockKey(uint64_t origin_seed, uint64_t index, uint64_t version) {
  const uint64_t words[2] = {index, version};
  return XXH3_64bits_withSeed(words, sizeof(words), origin_seed);
}

void FillContent(uint64_t key, uint64_t offset, absl::Span<uint8_t> out) {
  uint8_t* dst = out.data();
  size_t left = out.size();
  uint64_t n = offset / 8;
  if (size_t skip = offset % 8; skip != 0 && left > 0) {
    uint64_t w = Word(key, n++);
    size_t take = std::min(left, 8 - skip);
    std::memcpy(dst, reinterpret_cast<const uint8_t*>(&w) + skip, take);
    dst += take;
    left -= take;
  }
  for (; left >= 8; left -= 8, dst += 8) {
    uint64_t w = Word(key, n++);
    std::memcpy(dst, &w, 8);
  }
  if (left > 0) {
    uint64_t w = Word(key, n);
    std::memcpy(dst, &w, left);
  }
}

size_t MatchContent(uint64_t key, uint64_t offset,
                    absl::Span<const uint8_t> data) {
  const uint8_t* src = data.data();
  const size_t size = data.size();
  size_t pos = 0;
  uint64_t n = offset / 8;
  if (size_t skip = offset % 8; skip != 0 && size > 0) {
    uint64_t w = Word(key, n++);
    size_t take = std::min(size, 8 - skip);
    size_t same =
        SameBytes(src, reinterpret_cast<const uint8_t*>(&w) + skip, take);
    if (same < take) return same;
    pos = take;
  }
  for (; pos + 8 <= size; pos += 8) {
    uint64_t got;
    std::memcpy(&got, src + pos, 8);
    uint64_t w = Word(key, n++);
    if (got != w) {
      return pos +
             SameBytes(src + pos, reinterpret_cast<const uint8_t*>(&w), 8);
    }
  }
  if (pos < size) {
    uint64_t w = Word(key, n);
    return pos + SameBytes(src + pos, reinterpret_cast<const uint8_t*>(&w),
                           size - pos);
  }
  return size;
}

}  // namespace vfiomig::sim
