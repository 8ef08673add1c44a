// StreamReader: the validating decoder of one device's state stream
// (format.h), on the destination between the transport and the resume
// session.
//
// The stream comes from the network and is an attack surface: the reader
// trusts no length, count or order. Fed one complete frame per Consume()
// call, it checks, in this order: the frame is at least a header long, the
// magic, the frame version, that the length field matches the frame, the
// payload bound, the checksum, reserved bits, flags and type, that the
// sequence number is the next one, the stream grammar (HEADER once and
// first; PRE_COPY before STOP_COPY; END once and last), the payload of the
// type (header contents, zero-run counts, END totals), and that the device
// bytes stay within the limit given at construction. A frame that passes
// becomes one StreamEvent. The first failure is final: every later call
// returns the same status (fail closed).
//
// Status codes: DataLoss for corruption, truncation, lost or replayed frames
// and END totals that do not match; InvalidArgument for frames that break
// the grammar or a bound; ResourceExhausted past the byte limit;
// Unimplemented for a frame or stream version this reader does not know.
// Messages start with "frame <n>: ", n counting frames from 0.
//
// Thread-compatible. Pure: no I/O, no threads; data is never copied.
#ifndef VFIOMIG_DAEMON_STREAM_READER_H_
#define VFIOMIG_DAEMON_STREAM_READER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/stream/format.h"
#include "daemon/stream/header.h"

namespace vfiomig::stream {

// The stream header, validated as a message (DecodeHeaderPayload); whether
// it suits the target device is CheckHeaderCompatible's question.
struct HeaderEvent {
  StreamHeader header;
};
// Device data to write to the resume session, in order. `bytes` points into
// the frame given to Consume() and is valid as long as that frame is.
struct DataEvent {
  Section section;
  absl::Span<const uint8_t> bytes;
};
// `count` (1..kMaxZeroRun) zero bytes of device data.
struct ZerosEvent {
  Section section;
  uint64_t count;
};
// The stream is complete and its totals matched what was received.
struct EndEvent {
  StreamTotals totals;
};
using StreamEvent = std::variant<HeaderEvent, DataEvent, ZerosEvent, EndEvent>;

class StreamReader {
 public:
  // `max_device_bytes` bounds the device data of the stream, both sections
  // and zero runs together: the most the target device can take.
  explicit StreamReader(uint64_t max_device_bytes);
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;
  StreamReader(StreamReader&&) noexcept = default;
  StreamReader& operator=(StreamReader&&) noexcept = default;

  // Validates one complete frame and returns what it carries. `frame` must
  // stay alive as long as a DataEvent's bytes are used.
  absl::StatusOr<StreamEvent> Consume(std::string_view frame);

  // Call when the transport has no more frames: OK when the stream ended
  // with a valid END; the failure if one happened; else DataLoss "stream
  // ended without END".
  absl::Status Finish() const;

  // OK until the first failure, then that failure.
  const absl::Status& status() const { return status_; }
  // True once a valid END frame was consumed.
  bool ended() const { return state_ == State::kEnded; }
  // Frames consumed so far (= the sequence number expected next).
  uint64_t next_sequence() const { return sequence_; }
  // The header, once consumed.
  const std::optional<StreamHeader>& header() const { return header_; }
  // Bytes per section and data checksum of the data received so far.
  StreamTotals totals() const;

 private:
  enum class State { kNeedHeader, kOpen, kEnded, kFailed };

  absl::StatusOr<StreamEvent> ConsumeFrame(absl::Span<const uint8_t> frame);
  absl::StatusOr<StreamEvent> ConsumeHeader(absl::Span<const uint8_t> payload);
  // `frame_checksum`, verified, goes into the END digest.
  absl::StatusOr<StreamEvent> ConsumeData(Section section,
                                          absl::Span<const uint8_t> payload,
                                          uint64_t frame_checksum);
  absl::StatusOr<StreamEvent> ConsumeZeros(Section section,
                                           absl::Span<const uint8_t> payload,
                                           uint64_t frame_checksum);
  absl::StatusOr<StreamEvent> ConsumeEnd(absl::Span<const uint8_t> payload);
  // OK when `bytes` more device bytes stay within max_device_bytes_.
  absl::Status CheckLimit(uint64_t bytes) const;
  void Account(Section section, uint64_t bytes);

  uint64_t max_device_bytes_;
  State state_ = State::kNeedHeader;
  absl::Status status_;
  Section section_ = Section::kPreCopy;
  uint64_t sequence_ = 0;
  uint64_t pre_copy_bytes_ = 0;
  uint64_t stop_copy_bytes_ = 0;
  DataChecksum checksum_;
  std::optional<StreamHeader> header_;
};

// Splits a buffer of frames packed back to back (as StreamWriter appends
// them) into single frames, for Consume(). Looks only at each frame's magic
// and length, bounded by kMaxFramePayload; Consume() checks the rest.
// DataLoss for a truncated or foreign buffer, ResourceExhausted for more
// than `max_frames` frames. The views point into `buffer`.
absl::StatusOr<std::vector<std::string_view>> SplitFrames(
    std::string_view buffer, size_t max_frames);

}  // namespace vfiomig::stream

#endif  // VFIOMIG_DAEMON_STREAM_READER_H_
