// IncomingStream: one device's state stream on the destination, from the
// transport into the device's RESUMING data session.
//
// Frames go through a stream::StreamReader (which checks every length,
// checksum, sequence number and the grammar) and then straight into
// DataSession::Write from the frame's own bytes; zero runs are written from
// a static zero block. The HEADER frame must equal the header the source
// announced in Prepare, field by field.
//
// The first failure is final and aborts the whole migration (its devices
// are rolled back before the failing call returns): a bad frame, a write the
// device refuses, a stream that stops before END, a transport that breaks.
// Destroying a stream that was neither finished nor failed counts as a
// broken transport.
//
// Thread-compatible: one transport thread uses a stream; the migration may
// be aborted from another thread meanwhile, which the next Consume reports.
#ifndef VFIOMIG_DAEMON_MIGRATION_DESTINATION_STREAM_H_
#define VFIOMIG_DAEMON_MIGRATION_DESTINATION_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/stream/header.h"
#include "daemon/stream/reader.h"
#include "plugins/backend.h"
#include "vfiomig/v1/peer.pb.h"

namespace vfiomig {

class DestinationMigration;

// Frames one transport message may pack (SplitFrames bound). A message is
// at most the server's receive limit, so this only stops absurd packings
// of tiny frames.
inline constexpr size_t kMaxFramesPerMessage = 4096;

class IncomingStream {
 public:
  // Made by DestinationMigration::OpenStream. `device` indexes the
  // migration's devices.
  IncomingStream(std::shared_ptr<DestinationMigration> migration, size_t device,
                 std::string device_id, stream::StreamHeader expected_header,
                 std::shared_ptr<DataSession> session,
                 uint64_t max_device_bytes);
  ~IncomingStream();

  IncomingStream(const IncomingStream&) = delete;
  IncomingStream& operator=(const IncomingStream&) = delete;

  const std::string& device_id() const { return device_id_; }

  // Decodes and writes the frames of one transport message (one frame, or
  // several packed back to back). Errors name the device and the frame.
  absl::Status Consume(std::string_view frames);

  // The transport has no more messages: the summary when the stream ended
  // with a valid END, else the failure (DataLoss when END is missing).
  absl::StatusOr<v1::StreamSummary> Finish();

  // The transport broke (the source cancelled or vanished).
  absl::Status Cancel(std::string_view why);

  // Ends the stream with `status` (the device named in its message) and
  // aborts the migration; for transport-level problems the stream cannot
  // see. Returns the latched status (an earlier failure wins).
  absl::Status Fail(absl::Status status);

 private:
  absl::Status ConsumeFrame(std::string_view frame);
  absl::Status WriteZeros(uint64_t count);

  std::shared_ptr<DestinationMigration> migration_;
  const size_t device_;
  const std::string device_id_;
  const stream::StreamHeader expected_header_;
  std::shared_ptr<DataSession> session_;
  stream::StreamReader reader_;
  // Set once the stream finished or failed; status_ says which.
  bool done_ = false;
  absl::Status status_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DESTINATION_STREAM_H_
