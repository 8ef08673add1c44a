// StreamReader: a push parser for the sim stream (sim_stream_format.h).
//
// Bytes arrive in chunks of any size, from one byte to the whole stream.
// The reader owns the framing: magic, format version, block size, and a
// bound on every length and index before it is used; it never buffers more
// than one fixed-size header and never allocates on behalf of the stream.
// What the bytes mean is for the StreamSink to judge. The stream is
// untrusted input: the first error, the reader's or the sink's, latches,
// and every later call returns it again, so nothing is accepted past a
// refused byte.
//
// Not thread-safe. The sink must outlive the reader.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_STREAM_READER_H_
#define VFIOMIG_PLUGINS_SIM_SIM_STREAM_READER_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "plugins/sim/sim_stream_format.h"

namespace vfiomig::sim {

// Receives a stream's parts in order. A non-OK return refuses the stream.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual absl::Status OnHeader(const StreamHeader& header) = 0;
  // A block record, already bounds-checked against the header.
  virtual absl::Status OnBlockStart(const RecordHeader& record) = 0;
  // The next piece of the current block's payload, at `offset` into it.
  virtual absl::Status OnBlockData(uint64_t offset,
                                   absl::Span<const uint8_t> data) = 0;
  virtual absl::Status OnBlockEnd() = 0;
  // The end record; its block count has been checked already.
  virtual absl::Status OnEnd(const StreamEnd& end) = 0;
};

class StreamReader {
 public:
  explicit StreamReader(StreamSink* sink) : sink_(sink) {}

  // Parses `data` as the next bytes of the stream.
  absl::Status Consume(absl::Span<const uint8_t> data);

  // A complete stream was accepted: the end record, and nothing after it.
  bool finished() const { return phase_ == Phase::kDone && status_.ok(); }
  const absl::Status& status() const { return status_; }
  uint64_t bytes_consumed() const { return consumed_; }
  // How far the stream got, for messages about a stream cut short:
  // "no header yet", "7 block records, inside a block record (byte 1000)".
  std::string Progress() const;

 private:
  enum class Phase {
    kHeader,
    kRecordHeader,
    kBlockPayload,
    kEndPayload,
    kDone
  };

  size_t FixedPartSize() const;
  // Collects a fixed-size part into fixed_; true once it is complete.
  bool Fill(absl::Span<const uint8_t>& data, size_t want);
  absl::Status OnFixedPart();
  absl::Status CheckHeader(const StreamHeader& h) const;
  absl::Status CheckRecord(const RecordHeader& r) const;

  StreamSink* sink_;
  Phase phase_ = Phase::kHeader;
  std::array<uint8_t, kStreamHeaderSize> fixed_{};
  size_t fixed_len_ = 0;
  StreamHeader header_;
  uint64_t block_count_ = 0;
  RecordHeader record_;
  uint64_t payload_pos_ = 0;
  uint64_t block_records_ = 0;
  uint64_t consumed_ = 0;
  // Where the current header or record began, for error messages.
  uint64_t part_start_ = 0;
  absl::Status status_;
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_STREAM_READER_H_
