// StreamWriter: renders one record of the sim stream at a time (the format
// is in sim_stream_format.h) straight into the caller's buffer, in pieces of
// any size.
//
// The save session decides which record comes next (Start*); the writer
// remembers how far into the current record the reader got, so a record
// may span any number of Emit calls, down to one byte each. Block payloads
// are generated in place, with no intermediate copy; while they pass, the
// writer hashes them, so a block that was sent has a known hash without
// generating its bytes again.
//
// Not thread-safe: owned by one save session under its device's lock.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_STREAM_WRITER_H_
#define VFIOMIG_PLUGINS_SIM_SIM_STREAM_WRITER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/types/span.h"
#include "plugins/sim/sim_stream_format.h"
#include "xxhash.h"

namespace vfiomig::sim {

class StreamWriter {
 public:
  StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Each Start requires idle(): records never interleave.
  void StartHeader(const StreamHeader& header);
  // `key` is BlockKey(origin seed, index, version): the payload's source.
  void StartBlock(uint64_t index, uint64_t version, uint64_t key,
                  uint32_t length);
  void StartEnd(const StreamEnd& end);

  // True when the current record has been emitted completely.
  bool idle() const { return pos_ == total_; }
  // Bytes of the current record not yet emitted.
  uint64_t remaining() const { return total_ - pos_; }

  // Copies the next bytes of the current record into `out`; returns how
  // many, 0 when idle.
  size_t Emit(absl::Span<uint8_t> out);

  // XXH3-64 of the payload of the block record that just completed.
  uint64_t payload_hash() const { return payload_hash_; }

 private:
  struct FreeState {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
  };

  // The fixed-size part of the current record: stream header, or record
  // header (+ end payload).
  std::array<uint8_t, kEndRecordSize> prefix_{};
  size_t prefix_len_ = 0;
  bool is_block_ = false;
  uint64_t key_ = 0;
  uint64_t total_ = 0;
  uint64_t pos_ = 0;
  uint64_t payload_hash_ = 0;
  std::unique_ptr<XXH3_state_t, FreeState> hash_state_;
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_STREAM_WRITER_H_
