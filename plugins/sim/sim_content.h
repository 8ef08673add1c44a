// SimContent: what a sim device holds instead of its bytes.
//
// The content of a device is `size` bytes in blocks of kBlockSize; block i
// at version v consists of the bytes FillContent(BlockKey(origin_seed, i, v))
// (sim_generator.h). Per block we keep the version and, once known, the
// XXH3-64 of its bytes, so repeated digests cost nothing and a resumed
// device can carry the hashes of the bytes it actually received.
//
// The digest of a content is XXH3-64 over (size, block size, every block's
// hash), all little-endian u64: it depends on the bytes only, so two devices
// with byte-identical content have equal digests whatever their seeds.
//
// Not thread-safe: the owning device serialises access.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_CONTENT_H_
#define VFIOMIG_PLUGINS_SIM_SIM_CONTENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "plugins/sim/sim_generator.h"

namespace vfiomig::sim {

class SimContent {
 public:
  // Every block at version 0.
  SimContent(uint64_t origin_seed, uint64_t size);

  uint64_t origin_seed() const { return origin_seed_; }
  uint64_t size() const { return size_; }
  uint64_t block_count() const { return blocks_.size(); }
  uint64_t block_length(uint64_t index) const {
    return BlockLength(size_, index);
  }
  uint64_t version(uint64_t index) const { return blocks_[index].version; }
  uint64_t key(uint64_t index) const {
    return BlockKey(origin_seed_, index, blocks_[index].version);
  }
  std::optional<uint64_t> cached_hash(uint64_t index) const;

  // The device wrote to the block: a new version whose hash is unknown.
  void Bump(uint64_t index);
  // Sets a block's version and the hash of its bytes (a resumed block).
  void Set(uint64_t index, uint64_t version, uint64_t hash);
  // Sets a block's version, hash unknown (content restored from a file).
  void SetVersion(uint64_t index, uint64_t version);
  // Remembers `hash` for the block if it is still at `version`; a hash
  // computed outside the device lock may be stale by the time it lands.
  void CacheHash(uint64_t index, uint64_t version, uint64_t hash);

 private:
  struct Block {
    uint64_t version = 0;
    uint64_t hash = 0;
    bool hash_known = false;
  };
  uint64_t origin_seed_;
  uint64_t size_;
  std::vector<Block> blocks_;
};

// XXH3-64 of the bytes of one block version. `scratch` is reused between
// calls to avoid an allocation per block.
uint64_t HashBlock(uint64_t key, uint64_t length,
                   std::vector<uint8_t>& scratch);

// The content digest from every block's hash, as 16 lower-case hex digits.
std::string ContentDigestHex(uint64_t size,
                             absl::Span<const uint64_t> block_hashes);
uint64_t ContentDigest64(uint64_t size,
                         absl::Span<const uint64_t> block_hashes);

// Hashes every block whose hash is not cached yet (generating its bytes) and
// returns the digest; for content nobody else can touch meanwhile.
uint64_t ComputeDigest64(SimContent& content);

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_CONTENT_H_
