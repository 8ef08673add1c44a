// DeviceStream: one device's outgoing StreamState call.
//
// Carries the device's state stream (daemon/stream/format.h) to the
// destination: the HEADER frame when opened, then pre-copy and stop-copy
// data straight from the device's save session, then END. A byte travels
// data_fd read -> frame payload -> gRPC: the read lands in the payload area
// of the message's own frame buffer, the frame is sealed in place, and the
// message is written. One frame buffer per stream, reused for every frame
// (it grows from kFirstFramePayload while reads fill it),
// so memory stays at one frame (kFramePayload) per device however large the
// state; a slow destination blocks ClientWriter::Write (gRPC flow control),
// which is the backpressure.
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
  // Cancels and reaps a call that was not finished.
  ~DeviceStream();

  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  // Starts the call on `stub` and sends the HEADER frame.
  absl::Status Open(v1::PeerService::StubInterface& stub);

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

  // Breaks the call: a Pump blocked on a slow destination returns with an
  // error soon after. Thread-safe; idempotent.
  void Cancel();

  const std::string& source_device_id() const { return source_device_id_; }
  const std::string& target_device_id() const { return target_device_id_; }
  // What was sent so far (the pumping thread, or after it finished).
  stream::StreamTotals totals() const { return writer_.totals(); }

 private:
  // Sends message_; on a broken call reaps it and returns why.
  absl::Status Send();
  absl::Status Reap();
  std::string What() const;

  const std::string migration_id_;
  const std::string source_device_id_;
  const std::string target_device_id_;
  const stream::StreamHeader header_;

  // Declared before call_: the call refers to it and must go first.
  grpc::ClientContext context_;
  v1::StreamSummary summary_;
  std::unique_ptr<grpc::ClientWriterInterface<v1::StateFrame>> call_;
  // The call's final status has been collected (ClientWriter::Finish).
  bool reaped_ = false;
  // END was sent and the call half-closed (SendEnd).
  bool ended_ = false;
  stream::StreamWriter writer_;
  // Reused for every frame: its `frame` string is the frame buffer.
  v1::StateFrame message_;
  // Payload bytes the next read asks for (kFirstFramePayload..kFramePayload).
  size_t payload_size_ = kFirstFramePayload;
  std::atomic<bool> cancelled_{false};
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SOURCE_STREAM_H_
