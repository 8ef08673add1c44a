// The source's end of a data channel connection (handshake.h): connects to
// the destination's listener, presents the hello with the token from the
// PrepareResponse, and once the destination has opened the device's
// stream, carries its frames as a FrameTransport.
//
// Each frame leaves in one send() straight from the buffer the device's
// data was read into; the kernel's socket buffers and TCP flow control are
// the backpressure. The destination may answer at any time with the error
// that ended the stream: each Send first looks (without blocking) for such
// an answer, so a refused stream stops within a frame.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_SENDER_H_
#define VFIOMIG_DAEMON_DATACHANNEL_SENDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/datachannel/handshake.h"
#include "daemon/migration/frame_transport.h"

namespace vfiomig::datachannel {

// Connects (within `timeout`, the hello's answer included) and returns the
// open transport. Unavailable / DeadlineExceeded when the destination
// cannot be reached (the caller may fall back to gRPC); the destination's
// own error when it refused the hello.
absl::StatusOr<std::unique_ptr<FrameTransport>> OpenDataConnection(
    const std::string& host, uint16_t port, const Hello& hello,
    absl::Duration timeout);

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_SENDER_H_
