// DeviceStream: one device's outgoing state stream.
//
// Carries the device's state stream (daemon/stream/format.h) to the
// destination over a FrameTransport (frame_transport.h: a StreamState call
// on the gRPC peer link, or a data channel connection): the HEADER frame
// when opened, then pre-copy and stop-copy data straight from the device's
// save session, then END. A byte travels data_fd read -> frame payload ->
// transport: the read lands in the payload area of the transport's own
// frame buffer, the frame is sealed in place, and sent. One frame buffer
// per stream, reused for every frame (it grows from kFirstFramePayload
// while reads fill it), so memory stays at one frame (kFramePayload) per
// device however large the state; a slow destination blocks the send (gRPC
// or TCP flow control), which is the backpressure.
//
// Thread-compatible, except Cancel, which any thread may call at any time:
// one thread at a time opens, pumps and finishes a stream.
#ifndef VFIOMIG_DAEMON_MIGRATION_SOURCE_STREAM_H_
#define VFIOMIG_DAEMON_MIGRATION_SOURCE_STREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/migration/frame_transport.h"
#include "daemon/stream/format.h"
#include "daemon/stream/header.h"
#include "daemon/stream/writer.h"
#include "grpcpp/grpcpp.h"
#include "plugins/backend.h"
#include "vfiomig/v1/peer.grpc.pb.h"

namespace vfiomig {

// Device bytes per data frame: large enough that per-frame costs vanish,
// small enough to be one modest buffer per device and far below gRPC's
// default 4 MiB message limit.
inline constexpr size_t kFramePayload = size_t{1} << 20;

// The payload of a stream's first data frame. Each full read doubles it up
// to kFramePayload, so a device with little state never touches (zeroes,
// faults in) a whole frame buffer: with many small devices those page
// faults were most of a migration's CPU time.
inline constexpr size_t kFirstFramePayload = size_t{16} << 10;

struct PumpResult {
  // Device bytes sent (zero runs count their length).
  uint64_t bytes = 0;
  // The session's Read returned 0: nothing more for now in pre-copy, end of
  // stream in STOP_COPY.
  bool drained = false;
};

class DeviceStream {
 public:
  DeviceStream(std::string migration_id, std::string source_device_id,
               std::string target_device_id, stream::StreamHeader header);
  // Cancels and reaps a transport that was not finished.
  ~DeviceStream();

  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  // Starts a StreamState call on `stub` and sends the HEADER frame.
  absl::Status Open(v1::PeerService::StubInterface& stub);
  // Sends the HEADER frame on `transport` (a data channel connection).
  absl::Status Open(std::unique_ptr<FrameTransport> transport);

  // Reads `session` into frames of `section` and sends each, until Read
  // returns 0, at least `budget` bytes were sent, or `stop` is set.
  // `on_frame` learns each frame's device bytes (for progress).
  absl::StatusOr<PumpResult> Pump(
      DataSession& session, stream::Section section, uint64_t budget,
      const std::atomic<bool>& stop,
      const std::function<void(uint64_t)>& on_frame);

  // Sends END, half-closes, and waits for the destination's StreamSummary,
  // which must match what was sent (frames and bytes per section): the
  // destination has then written the whole stream into its device.
  // SendEnd then AwaitSummary.
  absl::StatusOr<v1::StreamSummary> Finish();
  // Finish in two halves, so that a caller ending many streams overlaps
  // their round trips: send END and half-close (does not wait for the
  // destination), then wait for and check the summary.
  absl::Status SendEnd();
  absl::StatusOr<v1::StreamSummary> AwaitSummary();

  // Breaks the transport: a Pump blocked on a slow destination returns with
  // an error soon after; an Open that follows fails. Thread-safe;
  // idempotent.
  void Cancel();

  const std::string& source_device_id() const { return source_device_id_; }
  const std::string& target_device_id() const { return target_device_id_; }
  // What was sent so far (the pumping thread, or after it finished).
  stream::StreamTotals totals() const { return writer_.totals(); }
  // The transport's name ("gRPC", "data channel"); empty before Open.
  std::string transport_name() const;

 private:
  enum class Stage { kNew, kOpen, kEnded, kDone };

  // Sends `frame` (HEADER or END: small, built apart) as the next frame.
  absl::Status SendBuilt(const std::string& frame);
  // The transport's error, naming this stream; once broken, it stays so.
  absl::Status Broken(const absl::Status& status);
  std::string What() const;

  const std::string migration_id_;
  const std::string source_device_id_;
  const std::string target_device_id_;
  const stream::StreamHeader header_;

  mutable absl::Mutex mu_;
  // Set by Open; Cancel reaches it from other threads under mu_.
  std::unique_ptr<FrameTransport> transport_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The pumping thread's view of transport_ (set once by Open).
  FrameTransport* open_ = nullptr;
  // kOpen: frames may be sent; kEnded: END sent, summary not yet read;
  // kDone: finished or broken, nothing more.
  Stage stage_ = Stage::kNew;
  // Payload bytes the next read asks for (kFirstFramePayload..kFramePayload).
  size_t payload_size_ = kFirstFramePayload;
  stream::StreamWriter writer_;
};

// A StreamState call on the gRPC peer link as a FrameTransport. The first
// message names the migration and the target device; each message carries
// one frame in its `frame` field, which is the frame buffer.
std::unique_ptr<FrameTransport> GrpcFrameTransport(
    v1::PeerService::StubInterface& stub, const std::string& migration_id,
    const std::string& target_device_id);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SOURCE_STREAM_H_
