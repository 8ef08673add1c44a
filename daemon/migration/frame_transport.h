// FrameTransport: how a source's DeviceStream gets its frames to the
// destination. Two exist: a StateFrame StreamState call on the gRPC peer
// link (source_stream.cc), and a data channel connection
// (daemon/datachannel/sender.h) that carries the same frames on a plain
// TCP connection beside it, for a fraction of the CPU per GiB.
//
// A transport hands out the buffer each frame is built in, so that a
// device's data_fd read lands where the transport sends from: no copy on
// the way.
//
// Thread-compatible, except Cancel, which any thread may call at any time.
#ifndef VFIOMIG_DAEMON_MIGRATION_FRAME_TRANSPORT_H_
#define VFIOMIG_DAEMON_MIGRATION_FRAME_TRANSPORT_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vfiomig/v1/peer.pb.h"

namespace vfiomig {

class FrameTransport {
 public:
  virtual ~FrameTransport() = default;

  // The buffer of the next frame: at least `size` bytes (its start may be
  // filled by the caller), valid until the next call on the transport.
  virtual absl::Span<uint8_t> Buffer(size_t size) = 0;
  // Sends buffer[0, length) as the next frame. An error is final: the
  // stream is broken, and the status says why (the destination's own
  // error when it sent one).
  virtual absl::Status Send(size_t length) = 0;
  // No more frames: half-closes (does not wait for the destination).
  virtual absl::Status HalfClose() = 0;
  // After HalfClose: waits for the destination's summary of what it
  // received and wrote into its device, or the error that ended the stream.
  virtual absl::StatusOr<v1::StreamSummary> AwaitSummary() = 0;
  // Breaks the transport: a Send or Finish blocked on a slow or dead
  // destination returns with an error soon after. Idempotent.
  virtual void Cancel() = 0;
  // "gRPC" or "data channel", for log lines.
  virtual const char* name() const = 0;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_FRAME_TRANSPORT_H_
