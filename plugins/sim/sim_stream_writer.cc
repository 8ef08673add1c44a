#include "plugins/sim/sim_stream_writer.h"

#include <algorithm>
#include <cstring>

#include "plugins/sim/sim_generator.h"

#if defined(__x86_64__)
// XXH3 with AVX2 or AVX-512 when the CPU has them: libxxhash's default
// entry points use SSE2 only, about 3.5x slower on bulk data.
#include <xxh_x86dispatch.h>
#endif

namespace vfiomig::sim {

static_assert(kStreamHeaderSize <= kEndRecordSize,
              "the prefix buffer holds every fixed-size part");

StreamWriter::StreamWriter() : hash_state_(XXH3_createState()) {}

void StreamWriter::StartHeader(const StreamHeader& header) {
  EncodeStreamHeader(header, prefix_.data());
  prefix_len_ = kStreamHeaderSize;
  is_block_ = false;
  total_ = prefix_len_;
  pos_ = 0;
}

void StreamWriter::StartBlock(uint64_t index, uint64_t version, uint64_t key,
                              uint32_t length) {
  EncodeRecordHeader(RecordHeader{.type = kBlockRecord,
                                  .length = length,
                                  .index = index,
                                  .version = version},
                     prefix_.data());
  prefix_len_ = kRecordHeaderSize;
  is_block_ = true;
  key_ = key;
  total_ = prefix_len_ + length;
  pos_ = 0;
  XXH3_64bits_reset(hash_state_.get());
}

void StreamWriter::StartEnd(const StreamEnd& end) {
  EncodeRecordHeader(
      RecordHeader{.type = kEndRecord, .length = kEndPayloadSize},
      prefix_.data());
  EncodeStreamEnd(end, prefix_.data() + kRecordHeaderSize);
  prefix_len_ = kEndRecordSize;
  is_block_ = false;
  total_ = prefix_len_;
  pos_ = 0;
}

size_t StreamWriter::Emit(absl::Span<uint8_t> out) {
  size_t written = 0;
  if (pos_ < prefix_len_) {
    size_t n = std::min<uint64_t>(out.size(), prefix_len_ - pos_);
    std::memcpy(out.data(), prefix_.data() + pos_, n);
    pos_ += n;
    written = n;
  }
  if (is_block_ && pos_ >= prefix_len_ && pos_ < total_ &&
      written < out.size()) {
    size_t n = std::min<uint64_t>(out.size() - written, total_ - pos_);
    uint8_t* dst = out.data() + written;
    FillContent(key_, pos_ - prefix_len_, absl::MakeSpan(dst, n));
    XXH3_64bits_update(hash_state_.get(), dst, n);
    pos_ += n;
    written += n;
    if (pos_ == total_) payload_hash_ = XXH3_64bits_digest(hash_state_.get());
  }
  return written;
}

}  // namespace vfiomig::sim
