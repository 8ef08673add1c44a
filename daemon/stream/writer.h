// StreamWriter: builds the frames of one device's state stream (format.h).
//
// The writer owns the stream's sequence numbers, its section order and the
// running totals and checksum the END frame carries; it never performs I/O.
// Frames are appended to a caller's std::string (several frames may share
// one buffer: SplitFrames in reader.h takes them apart again) or, on the
// zero-copy path, sealed in place in a caller's buffer:
//
//   std::vector<uint8_t> buf(kFrameHeaderSize + kMaxDataPayload);
//   absl::Span<uint8_t> payload = PayloadArea(absl::MakeSpan(buf));
//   size_t n = ...read up to payload.size() bytes from the data_fd...;
//   absl::StatusOr<size_t> len =
//       writer.SealData(Section::kStopCopy, absl::MakeSpan(buf), n,
//                       ZeroCheck::kDetect);
//   ...send buf[0, *len)...
//
// Calls must follow the stream grammar: AddHeader first, then data of the
// PRE_COPY section, then of the STOP_COPY section, then AddEnd. A call that
// breaks it returns FailedPrecondition. A failing call writes nothing and
// changes nothing, so the writer is never left half-way through a frame.
//
// Thread-compatible: one writer per stream, used by one thread at a time. A
// moved-from writer may only be destroyed or assigned to.
#ifndef VFIOMIG_DAEMON_STREAM_WRITER_H_
#define VFIOMIG_DAEMON_STREAM_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/stream/format.h"
#include "daemon/stream/header.h"

namespace vfiomig::stream {

// Granularity of zero detection in AddData: device states hold zero pages.
inline constexpr size_t kZeroBlockSize = 4096;

enum class ZeroCheck {
  kOff,     // send the bytes as they are
  kDetect,  // send all-zero stretches as zero-run frames
};

// True when every byte of `data` is zero (true for empty data). Fast: reads
// 16 bytes, then lets memcmp compare the buffer with itself shifted.
bool IsAllZero(absl::Span<const uint8_t> data);

// The payload part of an in-place frame buffer: everything after the first
// kFrameHeaderSize bytes, at most kMaxDataPayload. Empty when `buffer` is
// not larger than the header.
absl::Span<uint8_t> PayloadArea(absl::Span<uint8_t> buffer);

class StreamWriter {
 public:
  StreamWriter() = default;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  StreamWriter(StreamWriter&&) noexcept = default;
  StreamWriter& operator=(StreamWriter&&) noexcept = default;

  // Appends the HEADER frame (sequence 0). Must be the first frame.
  // InvalidArgument when the encoded header exceeds kMaxHeaderPayload.
  absl::Status AddHeader(const StreamHeader& header, std::string* dest);

  // Appends `data` to `section` as data frames of at most kMaxDataPayload
  // bytes. With ZeroCheck::kDetect, every run of all-zero kZeroBlockSize
  // blocks (counted from the start of `data`; a short last block too)
  // becomes a zero-run frame instead. Empty data appends nothing.
  absl::Status AddData(Section section, absl::Span<const uint8_t> data,
                       ZeroCheck zero_check, std::string* dest);

  // Appends `count` zero bytes to `section` as zero-run frames of at most
  // kMaxZeroRun each. A count of 0 appends nothing.
  absl::Status AddZeros(Section section, uint64_t count, std::string* dest);

  // Seals one data frame in place. `buffer` starts with kFrameHeaderSize
  // bytes the writer overwrites, followed by `payload_size` payload bytes
  // the caller filled (1..kMaxDataPayload; `buffer` may be longer). With
  // ZeroCheck::kDetect and an all-zero payload of more than
  // kZerosPayloadSize bytes, writes a zero-run frame at the front of
  // `buffer` instead. Returns the frame's length: the frame is
  // buffer[0, length). InvalidArgument for a bad size.
  absl::StatusOr<size_t> SealData(Section section, absl::Span<uint8_t> buffer,
                                  size_t payload_size, ZeroCheck zero_check);

  // Appends the END frame with the totals so far. No frame may follow.
  absl::Status AddEnd(std::string* dest);

  // The sequence number the next frame gets (= frames written so far).
  uint64_t next_sequence() const { return sequence_; }
  // Bytes per section and data checksum of everything written so far.
  StreamTotals totals() const;
  bool ended() const { return state_ == State::kEnded; }

 private:
  enum class State { kNeedHeader, kOpen, kEnded };

  // FailedPrecondition unless a data frame of `section` with `bytes` more
  // device bytes may come next.
  absl::Status CheckData(Section section, uint64_t bytes) const;
  // Appends one data or zero-run frame and accounts for it.
  void AppendData(Section section, absl::Span<const uint8_t> data,
                  std::string* dest);
  void AppendZeros(Section section, uint64_t count, std::string* dest);
  void Account(Section section, uint64_t bytes);

  State state_ = State::kNeedHeader;
  // The section of the last data frame: sections only move forward.
  Section section_ = Section::kPreCopy;
  uint64_t sequence_ = 0;
  uint64_t pre_copy_bytes_ = 0;
  uint64_t stop_copy_bytes_ = 0;
  DataChecksum checksum_;
};

}  // namespace vfiomig::stream

#endif  // VFIOMIG_DAEMON_STREAM_WRITER_H_
