// The data channel's two messages besides the frames themselves.
//
// A data channel is one TCP connection per device stream, beside the gRPC
// peer link, that carries exactly the frames a StreamState call would
// (daemon/stream/format.h), back to back, with no framing of its own. gRPC
// costs a destination about as much CPU per GiB as the whole transfer does
// without it (HTTP/2 framing, a protobuf copy each way, thread hand-offs
// per message), so bulk state takes this straight path; the gRPC call
// stays as the fallback. The conversation on one connection:
//
//   source -> destination   Hello: which prepared stream, and the token the
//                           destination handed out in its PrepareResponse
//   destination -> source   Result: OK (the stream is open) or why not
//   source -> destination   HEADER frame ... END frame, then half-close
//   destination -> source   Result: the StreamSummary, or the error that
//                           ended the stream (sent as soon as it happens)
//
// Hello  (kHelloFixedSize bytes, then the ids; integers little-endian)
//   0  4 magic "VFDC" | 4 1 version | 5 3 reserved, 0 | 8 32 token |
//  40  2 migration id length | 42 2 target device id length | ids
// Result (kResultFixedSize bytes, then the message)
//   0  4 magic "VFDR" | 4 4 status code (absl::StatusCode; 0 = OK) |
//   8  8 frames | 16 8 pre-copy bytes | 24 8 stop-copy bytes |
//  32  4 message length (at most kMaxResultMessage) | message
//
// Pure: encoding and bounds checks only. Every length is bounded before it
// is used; a decoder refuses anything else with InvalidArgument.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_HANDSHAKE_H_
#define VFIOMIG_DAEMON_DATACHANNEL_HANDSHAKE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vfiomig::datachannel {

inline constexpr uint32_t kHelloMagic = 0x43444656;   // "VFDC" in LE order
inline constexpr uint32_t kResultMagic = 0x52444656;  // "VFDR" in LE order
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kTokenSize = 32;
inline constexpr size_t kHelloFixedSize = 44;
inline constexpr size_t kResultFixedSize = 36;
// Ids are validated by the registry; this only bounds what is read.
inline constexpr size_t kMaxIdLength = 256;
inline constexpr size_t kMaxResultMessage = 1024;

using Token = std::array<uint8_t, kTokenSize>;

struct Hello {
  Token token{};
  std::string migration_id;
  std::string target_device_id;
};

// The whole message. The ids must be at most kMaxIdLength bytes each
// (longer ones are cut: the destination then refuses them as unknown).
std::string EncodeHello(const Hello& hello);

// Id lengths announced by a Hello's fixed part.
struct HelloIds {
  size_t migration_id = 0;
  size_t target_device_id = 0;
};
// Decodes the fixed part (exactly kHelloFixedSize bytes) into `hello`'s
// token; returns the lengths of the ids that follow. InvalidArgument for a
// bad magic, version, reserved bytes or id length.
absl::StatusOr<HelloIds> DecodeHelloFixed(absl::Span<const uint8_t> fixed,
                                          Hello* hello);

struct Result {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
  uint64_t frames = 0;
  uint64_t pre_copy_bytes = 0;
  uint64_t stop_copy_bytes = 0;

  static Result FromStatus(const absl::Status& status);
  absl::Status status() const { return absl::Status(code, message); }
};

// The whole message; a longer message is cut to kMaxResultMessage bytes.
std::string EncodeResult(const Result& result);
// Decodes the fixed part (exactly kResultFixedSize bytes) into `result`,
// except the message; returns the message's length. InvalidArgument for a
// bad magic, an unknown status code or an oversized message.
absl::StatusOr<size_t> DecodeResultFixed(absl::Span<const uint8_t> fixed,
                                         Result* result);

// Equal tokens, in time that does not depend on where they differ.
bool TokensEqual(const Token& a, const Token& b);

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_HANDSHAKE_H_
