// FrameBuffer: the memory a transport builds or receives frames in, placed
// so that each frame's checksum runs at full speed.
//
// The frame checksum (format.h) covers frame[kChecksumStart, end). XXH3's
// AVX-512 path loads 64 bytes at a time from the start of its input; when
// that start is not on a 64-byte boundary every load straddles two cache
// lines. On the AMD EPYC (AVX-512) machines we measure on, checksumming a
// 1 MiB frame then took twice as long: 0.040 s/GiB instead of 0.019, the
// checksum alone, at each of the 16-byte offsets malloc gave the frames.
// A FrameBuffer therefore starts its frame kChecksumStart bytes before a
// 64-byte boundary. (The payload then starts at 20 mod 64; device reads
// and socket copies measured no slower for it.)
#ifndef VFIOMIG_DAEMON_STREAM_FRAME_BUFFER_H_
#define VFIOMIG_DAEMON_STREAM_FRAME_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "absl/types/span.h"

namespace vfiomig::stream {

// The alignment of the checksummed bytes of a frame in a FrameBuffer.
inline constexpr size_t kChecksumAlignment = 64;

class FrameBuffer {
 public:
  FrameBuffer() = default;
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  // A frame of `size` bytes, valid until the next Frame call. Grows to the
  // largest size asked for and never shrinks. Its contents are unspecified:
  // a larger buffer neither keeps the old bytes nor zeroes the new ones
  // (zeroing would be a pass over every payload byte for nothing, as every
  // frame is written whole before it is read).
  absl::Span<uint8_t> Frame(size_t size);

  // The bytes held (0 before the first Frame call).
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const {
      ::operator delete[](p, std::align_val_t{kChecksumAlignment});
    }
  };
  std::unique_ptr<uint8_t[], Free> storage_;
  size_t capacity_ = 0;
};

}  // namespace vfiomig::stream

#endif  // VFIOMIG_DAEMON_STREAM_FRAME_BUFFER_H_
