#include "plugins/sim/sim_content.h"

#include "absl/strings/str_format.h"
#include "xxhash.h"
#if defined(__x86_64__)
// XXH3 with AVX2 or AVX-512 when the CPU has them: libxxhash's default
// entry points use SSE2 only, about 3.5x slower on bulk data.
#include <xxh_x86dispatch.h>
#endif

namespace vfiomig::sim {

SimContent::SimContent(uint64_t origin_seed, uint64_t size)
    : origin_seed_(origin_seed), size_(size), blocks_(BlockCount(size)) {}

std::optional<uint64_t> SimContent::cached_hash(uint64_t index) const {
  const Block& b = blocks_[index];
  if (!b.hash_known) return std::nullopt;
  return b.hash;
}

void SimContent::Bump(uint64_t index) {
  Block& b = blocks_[index];
  ++b.version;
  b.hash_known = false;
}

void SimContent::Set(uint64_t index, uint64_t version, uint64_t hash) {
  blocks_[index] = Block{version, hash, true};
}

void SimContent::SetVersion(uint64_t index, uint64_t version) {
  blocks_[index] = Block{version, 0, false};
}

void SimContent::CacheHash(uint64_t index, uint64_t version, uint64_t hash) {
  Block& b = blocks_[index];
  if (b.version != version) return;
  b.hash = hash;
  b.hash_known = true;
}

uint64_t HashBlock(uint64_t key, uint64_t length,
                   std::vector<uint8_t>& scratch) {
  scratch.resize(length);
  FillContent(key, 0, absl::MakeSpan(scratch));
  return XXH3_64bits(scratch.data(), scratch.size());
}

uint64_t ContentDigest64(uint64_t size,
                         absl::Span<const uint64_t> block_hashes) {
  std::vector<uint8_t> bytes;
  bytes.reserve(8 * (2 + block_hashes.size()));
  auto put = [&bytes](uint64_t v) {
    for (int i = 0; i < 8; ++i)
      bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put(size);
  put(kBlockSize);
  for (uint64_t h : block_hashes) put(h);
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string ContentDigestHex(uint64_t size,
                             absl::Span<const uint64_t> block_hashes) {
  return absl::StrFormat("%016x", ContentDigest64(size, block_hashes));
}

uint64_t ComputeDigest64(SimContent& content) {
  std::vector<uint64_t> hashes(content.block_count());
  std::vector<uint8_t> scratch;
  for (uint64_t i = 0; i < content.block_count(); ++i) {
    std::optional<uint64_t> h = content.cached_hash(i);
    if (!h) {
      h = HashBlock(content.key(i), content.block_length(i), scratch);
      content.CacheHash(i, content.version(i), *h);
    }
    hashes[i] = *h;
  }
  return ContentDigest64(content.size(), hashes);
}

}  // namespace vfiomig::sim
