#include "daemon/migration/destination_stream.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "daemon/metrics/metrics.h"
#include "daemon/migration/destination_migration.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// Zero runs (up to kMaxZeroRun each) are written from this block, so no
// zero run ever costs an allocation. In .bss: costs no file size.
constexpr size_t kZeroBlockBytes = size_t{1} << 20;
alignas(64) const uint8_t kZeroBlock[kZeroBlockBytes] = {};

// Which header field differs, for the error message.
std::string HeaderDifference(const stream::StreamHeader& got,
                             const stream::StreamHeader& want) {
  if (got.stream_version != want.stream_version) return "stream_version";
  if (got.source_host != want.source_host) {
    return absl::StrCat("source_host '", got.source_host, "' (prepared '",
                        want.source_host, "')");
  }
  if (got.migration_id != want.migration_id) {
    return absl::StrCat("migration_id '", got.migration_id, "' (prepared '",
                        want.migration_id, "')");
  }
  if (got.stop_copy_bytes != want.stop_copy_bytes) {
    return absl::StrCat("stop_copy_bytes ", got.stop_copy_bytes, " (prepared ",
                        want.stop_copy_bytes, ")");
  }
  const stream::DeviceIdentity& g = got.device;
  const stream::DeviceIdentity& w = want.device;
  if (g.device_id != w.device_id) {
    return absl::StrCat("device_id '", g.device_id, "' (prepared '",
                        w.device_id, "')");
  }
  if (g.migration_flags != w.migration_flags) return "migration_flags";
  if (g.driver != w.driver) return "driver";
  if (g.mdev_type != w.mdev_type) return "mdev_type";
  if (g.pci_vendor_id != w.pci_vendor_id ||
      g.pci_device_id != w.pci_device_id) {
    return "pci ids";
  }
  return "compatibility";
}

}  // namespace

IncomingStream::IncomingStream(std::shared_ptr<DestinationMigration> migration,
                               size_t device, std::string device_id,
                               stream::StreamHeader expected_header,
                               std::shared_ptr<DataSession> session,
                               uint64_t max_device_bytes)
    : migration_(std::move(migration)),
      device_(device),
      device_id_(std::move(device_id)),
      expected_header_(std::move(expected_header)),
      session_(std::move(session)),
      reader_(max_device_bytes) {}

IncomingStream::~IncomingStream() {
  if (!done_) {
    Fail(absl::AbortedError("the stream was dropped before it finished"))
        .IgnoreError();
  }
  migration_->OnStreamClosed(device_);
}

absl::Status IncomingStream::Consume(std::string_view frames) {
  if (done_) return status_;
  if (frames.empty()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "frame ", reader_.next_sequence(), ": empty message (no frame)")));
  }
  // Cheap when a message holds one frame; SplitFrames checks only magic
  // and length, the reader checks everything.
  absl::StatusOr<std::vector<std::string_view>> split =
      stream::SplitFrames(frames, kMaxFramesPerMessage);
  if (!split.ok()) {
    return Fail(absl::Status(split.status().code(),
                             absl::StrCat("frame ", reader_.next_sequence(),
                                          ": ", split.status().message())));
  }
  for (std::string_view frame : *split) {
    if (absl::Status s = ConsumeFrame(frame); !s.ok()) return Fail(s);
  }
  if (!reader_.ended()) {
    migration_->OnStreamProgress(device_, reader_.totals(),
                                 reader_.next_sequence());
  }
  return absl::OkStatus();
}

absl::Status IncomingStream::ConsumeFrame(std::string_view frame) {
  // Only while the migration still receives: an abort from elsewhere
  // stops the stream at its next frame.
  if (absl::Status s = migration_->CheckReceiving(device_); !s.ok()) {
    return s;
  }
  const uint64_t n = reader_.next_sequence();
  absl::StatusOr<stream::StreamEvent> event = reader_.Consume(frame);
  if (!event.ok()) return event.status();  // "frame <n>: ..." already
  if (const auto* header = std::get_if<stream::HeaderEvent>(&*event)) {
    if (!(header->header == expected_header_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("frame ", n, ": header differs from the one prepared: ",
                       HeaderDifference(header->header, expected_header_)));
    }
    return absl::OkStatus();
  }
  if (const auto* end = std::get_if<stream::EndEvent>(&*event)) {
    migration_->OnStreamEnded(device_, end->totals, reader_.next_sequence());
    return absl::OkStatus();
  }
  absl::Status written;
  stream::Section section;
  uint64_t bytes = 0;
  if (const auto* data = std::get_if<stream::DataEvent>(&*event)) {
    written = session_->Write(data->bytes);
    section = data->section;
    bytes = data->bytes.size();
  } else {
    const auto& zeros = std::get<stream::ZerosEvent>(*event);
    written = WriteZeros(zeros.count);
    section = zeros.section;
    bytes = zeros.count;
  }
  if (!written.ok()) {
    return absl::Status(written.code(), absl::StrCat("frame ", n,
                                                     ": the device refused the "
                                                     "data: ",
                                                     written.message()));
  }
  Metrics().StreamBytes(MetricsRole::kDestination,
                        section == stream::Section::kPreCopy, bytes);
  return absl::OkStatus();
}

absl::Status IncomingStream::WriteZeros(uint64_t count) {
  while (count > 0) {
    const size_t chunk =
        static_cast<size_t>(std::min<uint64_t>(count, kZeroBlockBytes));
    if (absl::Status s =
            session_->Write(absl::MakeConstSpan(kZeroBlock, chunk));
        !s.ok()) {
      return s;
    }
    count -= chunk;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::StreamSummary> IncomingStream::Finish() {
  if (done_) {
    if (!status_.ok()) return status_;
    return absl::FailedPreconditionError("stream already finished");
  }
  if (absl::Status s = migration_->CheckReceiving(device_); !s.ok()) {
    return Fail(s);
  }
  if (absl::Status s = reader_.Finish(); !s.ok()) {
    // "stream ended without END" names no frame: say where it stopped.
    return Fail(absl::Status(
        s.code(), absl::StrCat(s.message(), " (after ", reader_.next_sequence(),
                               " frames)")));
  }
  done_ = true;
  const stream::StreamTotals totals = reader_.totals();
  v1::StreamSummary summary;
  summary.set_target_device_id(device_id_);
  summary.set_frames(reader_.next_sequence());
  summary.set_pre_copy_bytes(totals.pre_copy_bytes);
  summary.set_stop_copy_bytes(totals.stop_copy_bytes);
  return summary;
}

absl::Status IncomingStream::Cancel(std::string_view why) {
  if (done_) return status_;
  return Fail(absl::CancelledError(absl::StrCat(
      std::string(why), " after ", reader_.next_sequence(), " frames")));
}

absl::Status IncomingStream::Fail(absl::Status status) {
  if (done_) return status_;
  done_ = true;
  status_ = absl::Status(status.code(), absl::StrCat("device ", device_id_,
                                                     ": ", status.message()));
  migration_->OnStreamFailed(device_, status_);
  return status_;
}

}  // namespace vfiomig
