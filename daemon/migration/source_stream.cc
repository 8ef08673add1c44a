#include "daemon/migration/source_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/migration/source_peer.h"
#include "spdlog/spdlog.h"

namespace vfiomig {

DeviceStream::DeviceStream(std::string migration_id,
                           std::string source_device_id,
                           std::string target_device_id,
                           stream::StreamHeader header)
    : migration_id_(std::move(migration_id)),
      source_device_id_(std::move(source_device_id)),
      target_device_id_(std::move(target_device_id)),
      header_(std::move(header)) {}

DeviceStream::~DeviceStream() {
  if (call_ != nullptr && !reaped_) {
    context_.TryCancel();
    call_->Finish().IgnoreError();
  }
}

std::string DeviceStream::What() const {
  return absl::StrCat("stream of ", source_device_id_, " to ",
                      target_device_id_);
}

absl::Status DeviceStream::Open(v1::PeerService::StubInterface& stub) {
  if (call_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(What(), ": open twice"));
  }
  message_.set_migration_id(migration_id_);
  message_.set_target_device_id(target_device_id_);
  if (absl::Status status =
          writer_.AddHeader(header_, message_.mutable_frame());
      !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(What(), ": ", status.message()));
  }
  call_ = stub.StreamState(&context_, &summary_);
  if (absl::Status status = Send(); !status.ok()) return status;
  // Only the first message names the stream.
  message_.clear_migration_id();
  message_.clear_target_device_id();
  return absl::OkStatus();
}

absl::StatusOr<PumpResult> DeviceStream::Pump(
    DataSession& session, stream::Section section, uint64_t budget,
    const std::atomic<bool>& stop,
    const std::function<void(uint64_t)>& on_frame) {
  if (call_ == nullptr || reaped_) {
    return absl::FailedPreconditionError(absl::StrCat(What(), ": not open"));
  }
  PumpResult result;
  std::string& frame = *message_.mutable_frame();
  while (result.bytes < budget) {
    if (stop.load(std::memory_order_relaxed)) {
      return absl::AbortedError(absl::StrCat(What(), ": stopped"));
    }
    // Grows back to a whole frame; the capacity stays from the largest
    // frame, so this allocates a few times per stream at most.
    frame.resize(stream::kFrameHeaderSize + payload_size_);
    const absl::Span<uint8_t> buffer(reinterpret_cast<uint8_t*>(frame.data()),
                                     frame.size());
    absl::StatusOr<size_t> n = session.Read(stream::PayloadArea(buffer));
    if (!n.ok()) {
      return absl::Status(n.status().code(),
                          absl::StrCat("read of ", source_device_id_, " (",
                                       stream::SectionName(section),
                                       "): ", n.status().message()));
    }
    if (*n == 0) {
      result.drained = true;
      break;
    }
    if (*n == payload_size_) {
      payload_size_ = std::min(payload_size_ * 2, kFramePayload);
    }
    absl::StatusOr<size_t> length =
        writer_.SealData(section, buffer, *n, stream::ZeroCheck::kDetect);
    if (!length.ok()) {
      return absl::Status(
          length.status().code(),
          absl::StrCat(What(), ": ", length.status().message()));
    }
    frame.resize(*length);
    if (absl::Status status = Send(); !status.ok()) return status;
    result.bytes += *n;
    if (on_frame) on_frame(*n);
  }
  return result;
}

absl::Status DeviceStream::SendEnd() {
  if (call_ == nullptr || reaped_ || ended_) {
    return absl::FailedPreconditionError(
        absl::StrCat(What(), ended_ ? ": END sent twice" : ": not open"));
  }
  message_.clear_frame();
  if (absl::Status status = writer_.AddEnd(message_.mutable_frame());
      !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(What(), ": ", status.message()));
  }
  if (absl::Status status = Send(); !status.ok()) return status;
  ended_ = true;
  if (!call_->WritesDone()) return Reap();
  return absl::OkStatus();
}

absl::StatusOr<v1::StreamSummary> DeviceStream::AwaitSummary() {
  if (call_ == nullptr || reaped_ || !ended_) {
    return absl::FailedPreconditionError(absl::StrCat(
        What(), reaped_ ? ": already finished" : ": END not sent"));
  }
  const grpc::Status status = call_->Finish();
  reaped_ = true;
  if (!status.ok()) return FromGrpc(status, What());
  const stream::StreamTotals sent = writer_.totals();
  if (summary_.frames() != writer_.next_sequence() ||
      summary_.pre_copy_bytes() != sent.pre_copy_bytes ||
      summary_.stop_copy_bytes() != sent.stop_copy_bytes) {
    return absl::DataLossError(absl::StrCat(
        What(), ": destination received ", summary_.frames(), " frames, ",
        summary_.pre_copy_bytes(), "+", summary_.stop_copy_bytes(),
        " bytes; sent ", writer_.next_sequence(), " frames, ",
        sent.pre_copy_bytes, "+", sent.stop_copy_bytes, " bytes"));
  }
  return summary_;
}

absl::StatusOr<v1::StreamSummary> DeviceStream::Finish() {
  if (absl::Status status = SendEnd(); !status.ok()) return status;
  return AwaitSummary();
}

void DeviceStream::Cancel() {
  cancelled_.store(true);
  context_.TryCancel();
}

absl::Status DeviceStream::Send() {
  if (call_->Write(message_)) return absl::OkStatus();
  return Reap();
}

absl::Status DeviceStream::Reap() {
  const grpc::Status status = call_->Finish();
  reaped_ = true;
  if (cancelled_.load()) {
    return absl::CancelledError(absl::StrCat(What(), ": cancelled"));
  }
  if (status.ok()) {
    return absl::UnavailableError(
        absl::StrCat(What(), ": destination ended the call early"));
  }
  return FromGrpc(status, What());
}

}  // namespace vfiomig
