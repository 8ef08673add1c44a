#include "plugins/sim/sim_generator.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "xxhash.h"

namespace vfiomig::sim {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
// The pad's origin: part of the content definition, never to change
// without a new sim stream format version.
constexpr uint64_t kPadSeed = 0x5f4d4947534d4956ULL;  // "VIMSGIM_"

// The splitmix64 finaliser: a bijection with full avalanche, so distinct
// inputs give unrelated words.
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The pad, in the byte order words have in the stream.
struct Pad {
  uint64_t words[kPadWords];
  Pad() {
    for (uint64_t i = 0; i < kPadWords; ++i) {
      uint64_t w = Mix(kPadSeed + (i + 1) * kGolden);
      if constexpr (std::endian::native == std::endian::big) {
        w = __builtin_bswap64(w);
      }
      words[i] = w;
    }
  }
};

const uint64_t* PadWords() {
  static const Pad* const pad = new Pad();
  return pad->words;
}

// The mask of 64 KiB segment `segment` of the content keyed `key`, in the
// stream's byte order (XOR commutes with byte swapping).
inline uint64_t Mask(uint64_t key, uint64_t segment) {
  uint64_t m = Mix(key + (segment + 1) * kGolden);
  if constexpr (std::endian::native == std::endian::big) {
    m = __builtin_bswap64(m);
  }
  return m;
}

// Word `n` in the byte order it has in the stream.
inline uint64_t Word(uint64_t key, uint64_t n) {
  return PadWords()[n % kPadWords] ^ Mask(key, n / kPadWords);
}

// The length of the common prefix of a[0, n) and b[0, n).
inline size_t SameBytes(const uint8_t* a, const uint8_t* b, size_t n) {
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Writes `count` whole words starting at word `n` to `dst`.
void FillWords(uint64_t key, uint64_t n, uint8_t* dst, size_t count) {
  const uint64_t* pad = PadWords();
  while (count > 0) {
    const uint64_t mask = Mask(key, n / kPadWords);
    const size_t first = static_cast<size_t>(n % kPadWords);
    const size_t take = std::min<size_t>(count, kPadWords - first);
    const uint64_t* p = pad + first;
    for (size_t i = 0; i < take; ++i) {
      const uint64_t w = p[i] ^ mask;
      std::memcpy(dst + 8 * i, &w, 8);
    }
    dst += 8 * take;
    n += take;
    count -= take;
  }
}

// The number of leading whole words of `src` (`count` of them) equal to
// words [n, n + count); count when all are.
size_t MatchWords(uint64_t key, uint64_t n, const uint8_t* src, size_t count) {
  const uint64_t* pad = PadWords();
  constexpr size_t kStride = 8;  // words compared per early-exit check
  size_t done = 0;
  while (done < count) {
    const uint64_t mask = Mask(key, n / kPadWords);
    const size_t first = static_cast<size_t>(n % kPadWords);
    const size_t take = std::min<size_t>(count - done, kPadWords - first);
    const uint64_t* p = pad + first;
    const uint8_t* s = src + 8 * done;
    size_t i = 0;
    for (; i + kStride <= take; i += kStride) {
      uint64_t diff = 0;
      for (size_t j = 0; j < kStride; ++j) {
        uint64_t got;
        std::memcpy(&got, s + 8 * (i + j), 8);
        diff |= got ^ p[i + j] ^ mask;
      }
      if (diff != 0) break;
    }
    for (; i < take; ++i) {
      uint64_t got;
      std::memcpy(&got, s + 8 * i, 8);
      if (got != (p[i] ^ mask)) return done + i;
    }
    done += take;
    n += take;
  }
  return count;
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
  FillWords(key, n, dst, left / 8);
  n += left / 8;
  dst += left / 8 * 8;
  left %= 8;
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
  const size_t words = (size - pos) / 8;
  const size_t same_words = MatchWords(key, n, src + pos, words);
  if (same_words < words) {
    uint64_t w = Word(key, n + same_words);
    pos += 8 * same_words;
    return pos + SameBytes(src + pos, reinterpret_cast<const uint8_t*>(&w), 8);
  }
  pos += 8 * words;
  n += words;
  if (pos < size) {
    uint64_t w = Word(key, n);
    return pos + SameBytes(src + pos, reinterpret_cast<const uint8_t*>(&w),
                           size - pos);
  }
  return size;
}

}  // namespace vfiomig::sim
