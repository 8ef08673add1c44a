#include "daemon/migration/source_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/metrics/metrics.h"
#include "daemon/migration/source_peer.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

class GrpcTransport final : public FrameTransport {
 public:
  GrpcTransport(v1::PeerService::StubInterface& stub,
                const std::string& migration_id,
                const std::string& target_device_id) {
    message_.set_migration_id(migration_id);
    message_.set_target_device_id(target_device_id);
    call_ = stub.StreamState(&context_, &summary_);
  }

  // Cancels and reaps a call that was not finished.
  ~GrpcTransport() override {
    if (!reaped_) {
      context_.TryCancel();
      call_->Finish().IgnoreError();
    }
  }

  absl::Span<uint8_t> Buffer(size_t size) override {
    std::string& frame = *message_.mutable_frame();
    // Grows back to `size`; the capacity stays from the largest frame so
    // far, so this allocates a few times per stream at most.
    frame.resize(size);
    return absl::MakeSpan(reinterpret_cast<uint8_t*>(frame.data()), size);
  }

  absl::Status Send(size_t length) override {
    message_.mutable_frame()->resize(length);
    if (!call_->Write(message_)) return Reap();
    // Only the first message names the stream.
    if (!message_.migration_id().empty()) {
      message_.clear_migration_id();
      message_.clear_target_device_id();
    }
    return absl::OkStatus();
  }

  absl::Status HalfClose() override {
    if (!call_->WritesDone()) return Reap();
    return absl::OkStatus();
  }

  absl::StatusOr<v1::StreamSummary> AwaitSummary() override {
    const grpc::Status status = call_->Finish();
    reaped_ = true;
    if (!status.ok()) return FromGrpc(status, "StreamState");
    return summary_;
  }

  void Cancel() override {
    cancelled_.store(true);
    context_.TryCancel();
  }

  const char* name() const override { return "gRPC"; }

 private:
  // The call broke: collects its final status.
  absl::Status Reap() {
    const grpc::Status status = call_->Finish();
    reaped_ = true;
    if (cancelled_.load()) return absl::CancelledError("cancelled");
    if (status.ok()) {
      return absl::UnavailableError("destination ended the call early");
    }
    return FromGrpc(status, "StreamState");
  }

  // Declared before call_: the call refers to them and must go first.
  grpc::ClientContext context_;
  v1::StreamSummary summary_;
  std::unique_ptr<grpc::ClientWriterInterface<v1::StateFrame>> call_;
  // The call's final status has been collected (ClientWriter::Finish).
  bool reaped_ = false;
  // Reused for every frame: its `frame` string is the frame buffer.
  v1::StateFrame message_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::unique_ptr<FrameTransport> GrpcFrameTransport(
    v1::PeerService::StubInterface& stub, const std::string& migration_id,
    const std::string& target_device_id) {
  return std::make_unique<GrpcTransport>(stub, migration_id, target_device_id);
}

DeviceStream::DeviceStream(std::string migration_id,
                           std::string source_device_id,
                           std::string target_device_id,
                           stream::StreamHeader header)
    : migration_id_(std::move(migration_id)),
      source_device_id_(std::move(source_device_id)),
      target_device_id_(std::move(target_device_id)),
      header_(std::move(header)) {}

DeviceStream::~DeviceStream() = default;

std::string DeviceStream::What() const {
  return absl::StrCat("stream of ", source_device_id_, " to ",
                      target_device_id_);
}

std::string DeviceStream::transport_name() const {
  absl::MutexLock lock(&mu_);
  return transport_ == nullptr ? "" : transport_->name();
}

absl::Status DeviceStream::Open(v1::PeerService::StubInterface& stub) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      return absl::CancelledError(absl::StrCat(What(), ": cancelled"));
    }
    if (transport_ != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(What(), ": open twice"));
    }
  }
  return Open(GrpcFrameTransport(stub, migration_id_, target_device_id_));
}

absl::Status DeviceStream::Open(std::unique_ptr<FrameTransport> transport) {
  {
    absl::MutexLock lock(&mu_);
    if (transport_ != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(What(), ": open twice"));
    }
    transport_ = std::move(transport);
    open_ = transport_.get();
    if (cancelled_) {
      open_->Cancel();
      stage_ = Stage::kDone;
      return absl::CancelledError(absl::StrCat(What(), ": cancelled"));
    }
  }
  stage_ = Stage::kOpen;
  std::string frame;
  if (absl::Status status = writer_.AddHeader(header_, &frame); !status.ok()) {
    return Broken(status);
  }
  return SendBuilt(frame);
}

absl::Status DeviceStream::SendBuilt(const std::string& frame) {
  absl::Span<uint8_t> buffer = open_->Buffer(frame.size());
  std::memcpy(buffer.data(), frame.data(), frame.size());
  if (absl::Status s = open_->Send(frame.size()); !s.ok()) return Broken(s);
  return absl::OkStatus();
}

absl::Status DeviceStream::Broken(const absl::Status& status) {
  stage_ = Stage::kDone;
  return absl::Status(status.code(),
                      absl::StrCat(What(), ": ", status.message()));
}

absl::StatusOr<PumpResult> DeviceStream::Pump(
    DataSession& session, stream::Section section, uint64_t budget,
    const std::atomic<bool>& stop,
    const std::function<void(uint64_t)>& on_frame) {
  if (stage_ != Stage::kOpen) {
    return absl::FailedPreconditionError(absl::StrCat(What(), ": not open"));
  }
  PumpResult result;
  while (result.bytes < budget) {
    if (stop.load(std::memory_order_relaxed)) {
      return absl::AbortedError(absl::StrCat(What(), ": stopped"));
    }
    const absl::Span<uint8_t> buffer =
        open_->Buffer(stream::kFrameHeaderSize + payload_size_);
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
    if (absl::Status s = open_->Send(*length); !s.ok()) return Broken(s);
    result.bytes += *n;
    Metrics().StreamBytes(MetricsRole::kSource,
                          section == stream::Section::kPreCopy, *n);
    if (on_frame) on_frame(*n);
  }
  return result;
}

absl::Status DeviceStream::SendEnd() {
  if (stage_ != Stage::kOpen) {
    return absl::FailedPreconditionError(absl::StrCat(
        What(), stage_ == Stage::kNew ? ": not open" : ": already ended"));
  }
  std::string end;
  if (absl::Status status = writer_.AddEnd(&end); !status.ok()) {
    return Broken(status);
  }
  if (absl::Status status = SendBuilt(end); !status.ok()) return status;
  if (absl::Status status = open_->HalfClose(); !status.ok()) {
    return Broken(status);
  }
  stage_ = Stage::kEnded;
  return absl::OkStatus();
}

absl::StatusOr<v1::StreamSummary> DeviceStream::AwaitSummary() {
  if (stage_ != Stage::kEnded) {
    return absl::FailedPreconditionError(
        absl::StrCat(What(), stage_ == Stage::kDone ? ": already finished"
                                                    : ": END not sent"));
  }
  stage_ = Stage::kDone;
  absl::StatusOr<v1::StreamSummary> summary = open_->AwaitSummary();
  if (!summary.ok()) return Broken(summary.status());
  const stream::StreamTotals sent = writer_.totals();
  if (summary->frames() != writer_.next_sequence() ||
      summary->pre_copy_bytes() != sent.pre_copy_bytes ||
      summary->stop_copy_bytes() != sent.stop_copy_bytes) {
    return absl::DataLossError(absl::StrCat(
        What(), ": destination received ", summary->frames(), " frames, ",
        summary->pre_copy_bytes(), "+", summary->stop_copy_bytes(),
        " bytes; sent ", writer_.next_sequence(), " frames, ",
        sent.pre_copy_bytes, "+", sent.stop_copy_bytes, " bytes"));
  }
  return summary;
}

absl::StatusOr<v1::StreamSummary> DeviceStream::Finish() {
  if (absl::Status status = SendEnd(); !status.ok()) return status;
  return AwaitSummary();
}

void DeviceStream::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (transport_ != nullptr) transport_->Cancel();
}

}  // namespace vfiomig
