// The bytes of a sim device: a deterministic function of (origin seed, block
// index, block version), never stored.
//
// A sim device of many GiB keeps only per-block metadata; any byte range of
// any block can be regenerated on demand. Word n (8 bytes) of the content
// keyed k is
//
//   pad[n mod kPadWords] XOR mask(k, n div kPadWords)
//
// where pad is 64 KiB of fixed pseudo-random words (splitmix64 from a
// constant seed: the same in every build) and mask is the splitmix64
// finaliser of the key and the 64 KiB segment's number. So generation
// starts at any offset without replaying a prefix, writes straight into the
// caller's buffer, and a receiver checks received bytes in place. Two keys
// differ in every word (their masks differ), and neighbouring words differ
// (the pad's do). The inner loops are one load, XOR and store or compare per
// word, which the compiler vectorises: the sim must outrun loopback TCP so
// that benchmarks measure the daemon, not the sim. Words are little-endian
// on every host; a partial word at the end of a block is the prefix of that
// word.
//
// Pure and thread-safe. Built with optimisation even in Debug builds: tests
// and benchmarks stream GiBs through these loops.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_GENERATOR_H_
#define VFIOMIG_PLUGINS_SIM_SIM_GENERATOR_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace vfiomig::sim {

// Words of the fixed pad (64 KiB): content repeats the pad, masked per key
// and per 64 KiB segment.
inline constexpr uint64_t kPadWords = 8192;

// Content is versioned in blocks of this size; the last block may be short.
inline constexpr uint64_t kBlockSize = uint64_t{1} << 20;

// The largest device state the sim models (and accepts in a stream): 1 TiB,
// i.e. one million blocks of metadata (~24 MiB).
inline constexpr uint64_t kMaxStateBytes = uint64_t{1} << 40;

inline constexpr uint64_t BlockCount(uint64_t size) {
  return (size + kBlockSize - 1) / kBlockSize;
}

// Length of block `index` of a `size`-byte state; 0 past the end.
inline constexpr uint64_t BlockLength(uint64_t size, uint64_t index) {
  uint64_t start = index * kBlockSize;
  if (index >= BlockCount(size)) return 0;
  return size - start < kBlockSize ? size - start : kBlockSize;
}

// Total length of blocks [first, last) of a `size`-byte state.
inline constexpr uint64_t BlockRangeLength(uint64_t size, uint64_t first,
                                           uint64_t last) {
  if (first >= last) return 0;
  uint64_t end = last * kBlockSize < size ? last * kBlockSize : size;
  uint64_t start = first * kBlockSize;
  return end > start ? end - start : 0;
}

// The key from which every byte of one block version derives.
uint64_t BlockKey(uint64_t origin_seed, uint64_t index, uint64_t version);

// Writes bytes [offset, offset + out.size()) of the content keyed `key`.
void FillContent(uint64_t key, uint64_t offset, absl::Span<uint8_t> out);

// The number of leading bytes of `data` equal to bytes [offset, ...) of the
// content keyed `key`; data.size() when all match.
size_t MatchContent(uint64_t key, uint64_t offset,
                    absl::Span<const uint8_t> data);

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_GENERATOR_H_
