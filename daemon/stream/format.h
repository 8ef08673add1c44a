// The device state stream: frame layout and constants.
//
// One stream carries one device's migration data for one migration, from
// the source's save session (data_fd reads) to the destination's resume
// session (data_fd writes). The device data is opaque; the envelope is ours.
// A stream is a sequence of frames; a transport message carries one frame,
// or several packed back to back (see SplitFrames in reader.h).
//
// Frame layout (integers little-endian, kFrameHeaderSize = 32 bytes):
//
//   offset size field
//        0    4 magic     "VFMS" (kFrameMagic)
//        4    8 checksum  XXH3-64 (seed 0) of bytes [12, 32 + length): every
//                         header field after it, then the payload. The
//                         magic is outside it: it is compared exactly.
//       12    1 version   kFrameVersion
//       13    1 type      FrameType
//       14    2 flags     none defined in version 1: must be 0
//       16    4 length    payload bytes that follow the header
//       20    4 reserved  must be 0
//       24    8 sequence  0 for the header frame, then +1 per frame
//       32      payload
//
// Grammar (the reader enforces it, the writer cannot break it):
//
//   stream := HEADER (PRE_COPY_DATA | PRE_COPY_ZEROS)*
//                    (STOP_COPY_DATA | STOP_COPY_ZEROS)* END
//
// Payloads by type:
//   HEADER      a serialised vfiomig.v1.StreamHeader (api/vfiomig/v1/
//               stream.proto), at most kMaxHeaderPayload bytes.
//   *_DATA      1..kMaxDataPayload bytes of device data, in data_fd order.
//   *_ZEROS     u64 count, 1..kMaxZeroRun: that many zero bytes of device
//               data, sent as a count instead of bytes.
//   END         u64 pre_copy_bytes | u64 stop_copy_bytes | u64 data_checksum
//               (kEndPayloadSize bytes). The byte counts are per section,
//               zero runs included. data_checksum is XXH3-64 (seed 0) over
//               the checksums of the stream's *_DATA and *_ZEROS frames, in
//               order, 8 bytes each (little-endian). Each of those already
//               covers its frame's bytes, so the digest costs nothing per
//               byte of device data, and it catches a lost, duplicated or
//               reordered frame even when every frame is intact.
//
// Nothing may follow END. A device without PRE_COPY sends no PRE_COPY
// frames; a device with nothing to save sends HEADER and END only.
#ifndef VFIOMIG_DAEMON_STREAM_FORMAT_H_
#define VFIOMIG_DAEMON_STREAM_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/types/span.h"

namespace vfiomig::stream {

inline constexpr uint32_t kFrameMagic = 0x534d4656;  // "VFMS" in LE order
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderSize = 32;
// First byte covered by the frame checksum.
inline constexpr size_t kChecksumStart = 12;

// Bounds. A reader refuses anything larger before looking further.
inline constexpr size_t kMaxDataPayload = size_t{8} << 20;     // 8 MiB
inline constexpr size_t kMaxHeaderPayload = size_t{64} << 10;  // 64 KiB
inline constexpr uint64_t kMaxZeroRun = uint64_t{1} << 30;     // 1 GiB
// The largest payload of any frame type (data frames have the largest).
inline constexpr size_t kMaxFramePayload = kMaxDataPayload;
inline constexpr size_t kMaxFrameSize = kFrameHeaderSize + kMaxFramePayload;

inline constexpr size_t kZerosPayloadSize = 8;
inline constexpr size_t kEndPayloadSize = 24;

enum class FrameType : uint8_t {
  kHeader = 1,
  kPreCopyData = 2,
  kPreCopyZeros = 3,
  kStopCopyData = 4,
  kStopCopyZeros = 5,
  kEnd = 6,
};
// Flags known to this version: none.
inline constexpr uint16_t kKnownFrameFlags = 0;

// The two data sections, in stream order. The names follow the device
// states whose data_fd reads produce them (PRE_COPY and PRE_COPY_P2P share
// the pre-copy section).
enum class Section : uint8_t { kPreCopy = 0, kStopCopy = 1 };

// "PRE_COPY" / "STOP_COPY".
const char* SectionName(Section section);
// "HEADER", "PRE_COPY_DATA", ...; "TYPE_<n>" for unknown values.
std::string FrameTypeName(uint8_t type);

inline constexpr FrameType DataFrameType(Section section) {
  return section == Section::kPreCopy ? FrameType::kPreCopyData
                                      : FrameType::kStopCopyData;
}
inline constexpr FrameType ZerosFrameType(Section section) {
  return section == Section::kPreCopy ? FrameType::kPreCopyZeros
                                      : FrameType::kStopCopyZeros;
}

// A frame header's fields as they are on the wire; `type` is raw so that a
// decoder can represent (and refuse) unknown types.
struct FrameHeader {
  uint8_t version = kFrameVersion;
  uint8_t type = 0;
  uint16_t flags = 0;
  uint32_t length = 0;
  uint32_t reserved = 0;
  uint64_t sequence = 0;
  uint64_t checksum = 0;
};

// Writes magic and every field of `header` into out[0, kFrameHeaderSize).
void EncodeFrameHeader(const FrameHeader& header, uint8_t* out);
// Reads the fields (not the magic) from in[0, kFrameHeaderSize).
FrameHeader DecodeFrameHeader(const uint8_t* in);
// The magic at in[0, 4).
uint32_t DecodeMagic(const uint8_t* in);

// XXH3-64 of frame[kChecksumStart, frame.size()); frame holds at least
// kFrameHeaderSize bytes. Writers store it at offset 4, readers compare.
uint64_t FrameChecksum(absl::Span<const uint8_t> frame);

// Completes a frame in place: `frame` holds kFrameHeaderSize header bytes
// (their contents are overwritten) followed by the payload, whose length is
// frame.size() - kFrameHeaderSize (at most kMaxFramePayload; the caller
// checks). Fills in magic, header fields and checksum, and returns the
// checksum (the writer chains it into END's data_checksum).
uint64_t SealFrame(absl::Span<uint8_t> frame, FrameType type,
                   uint64_t sequence);

// Totals a stream's END frame carries.
struct StreamTotals {
  uint64_t pre_copy_bytes = 0;
  uint64_t stop_copy_bytes = 0;
  uint64_t data_checksum = 0;

  uint64_t bytes(Section section) const {
    return section == Section::kPreCopy ? pre_copy_bytes : stop_copy_bytes;
  }
  friend bool operator==(const StreamTotals&, const StreamTotals&) = default;
};

void EncodeEndPayload(const StreamTotals& totals, uint8_t* out);
StreamTotals DecodeEndPayload(const uint8_t* in);

// The running END checksum: XXH3-64 over the checksums of the data and
// zero-run frames in stream order. Movable, not copyable; a moved-from one
// may only be destroyed or assigned to. Pure computation.
//
// (Version 1 hashed the device data itself, a second pass over every byte
// on both sides next to the frame checksums, for no check those do not
// already make: a quarter of each side's CPU in the throughput bench.)
class DataChecksum {
 public:
  DataChecksum();
  ~DataChecksum();
  DataChecksum(DataChecksum&&) noexcept;
  DataChecksum& operator=(DataChecksum&&) noexcept;

  // Adds a data or zero-run frame, by the checksum in its header.
  void AddFrame(uint64_t frame_checksum);
  // The digest of every frame so far; more may follow.
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Little-endian fixed-width stores and loads (compilers turn the shifts into
// one move on little-endian hosts).
template <typename T>
inline void PutFixed(uint8_t* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}
template <typename T>
inline T GetFixed(const uint8_t* in) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(in[i]) << (8 * i);
  }
  return v;
}

}  // namespace vfiomig::stream

#endif  // VFIOMIG_DAEMON_STREAM_FORMAT_H_
