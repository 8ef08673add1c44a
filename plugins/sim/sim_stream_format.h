// The sim device's migration stream: what a sim save session produces and a
// sim resume session accepts. To the daemon it is opaque device data; it is
// versioned and self-delimiting so that a sim destination can refuse what is
// not a complete stream from a sim source, the way a kernel driver refuses a
// truncated or foreign one.
//
//   stream       := header record* end-record
//   header       (32 bytes) magic "VFMIGSIM" | u32 format version (2) |
//                u32 block size | u64 total size | u64 origin seed
//   record head  (24 bytes) u32 type | u32 payload length | u64 index |
//                u64 version
//   block record type 1: payload = the bytes of block `index` at `version`;
//                its length is that block's length
//   end record   type 2, index 0, version 0, 16-byte payload:
//                u64 block records in the stream | u64 content digest
//
// Integers are little-endian. A block may appear more than once (pre-copy
// sends it again after the device dirtied it); its versions only grow and
// the last one wins. The end record lets the destination tell a complete
// stream from one cut short after the last block it happened to get.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_STREAM_FORMAT_H_
#define VFIOMIG_PLUGINS_SIM_SIM_STREAM_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "plugins/sim/sim_generator.h"

namespace vfiomig::sim {

inline constexpr std::string_view kStreamMagic = "VFMIGSIM";
// 2: the content generator of sim_generator.h (pad XOR mask); version 1
// streams carried counter-mode splitmix64 content and no longer verify.
inline constexpr uint32_t kStreamFormatVersion = 2;

inline constexpr size_t kStreamHeaderSize = 32;
inline constexpr size_t kRecordHeaderSize = 24;
inline constexpr size_t kEndPayloadSize = 16;
inline constexpr size_t kEndRecordSize = kRecordHeaderSize + kEndPayloadSize;

enum RecordType : uint32_t {
  kBlockRecord = 1,
  kEndRecord = 2,
};

// Versions beyond this are refused: a device bumps a version once per
// dirtied block, so a larger one can only come from a hostile stream.
inline constexpr uint64_t kMaxBlockVersion = uint64_t{1} << 62;

struct StreamHeader {
  uint32_t format_version = kStreamFormatVersion;
  uint32_t block_size = kBlockSize;
  uint64_t total_size = 0;
  uint64_t origin_seed = 0;
};

struct RecordHeader {
  uint32_t type = 0;
  uint32_t length = 0;
  uint64_t index = 0;
  uint64_t version = 0;
};

struct StreamEnd {
  uint64_t block_records = 0;
  uint64_t content_digest = 0;
};

// Fixed-size encodings; `out`/`in` hold at least the encoded size.
void EncodeStreamHeader(const StreamHeader& header, uint8_t* out);
// Decodes the fields after the magic; the caller checks the magic first.
StreamHeader DecodeStreamHeader(const uint8_t* in);
void EncodeRecordHeader(const RecordHeader& record, uint8_t* out);
RecordHeader DecodeRecordHeader(const uint8_t* in);
void EncodeStreamEnd(const StreamEnd& end, uint8_t* out);
StreamEnd DecodeStreamEnd(const uint8_t* in);

inline constexpr uint64_t BlockRecordSize(uint64_t payload) {
  return kRecordHeaderSize + payload;
}

// Stream bytes for blocks [first, last) of a `size`-byte state, one record
// each.
inline constexpr uint64_t BlockRecordsSize(uint64_t size, uint64_t first,
                                           uint64_t last) {
  return first >= last ? 0
                       : (last - first) * kRecordHeaderSize +
                             BlockRangeLength(size, first, last);
}

// The whole stream of a `size`-byte state sent with no block twice.
inline constexpr uint64_t FullStreamSize(uint64_t size) {
  return kStreamHeaderSize + BlockRecordsSize(size, 0, BlockCount(size)) +
         kEndRecordSize;
}

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_STREAM_FORMAT_H_
