#include "daemon/migration/source_peer.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vfiomig {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

}  // namespace

class PeerClient::PendingCall {
 public:
  PendingCall(PeerClient* client, grpc::ClientContext* context)
      : client_(client), context_(context) {
    absl::MutexLock lock(&client_->mu_);
    client_->pending_.insert(context_);
    // gRPC cancels a call whose context was cancelled before it started.
    if (client_->cancelled_) context_->TryCancel();
  }
  ~PendingCall() {
    absl::MutexLock lock(&client_->mu_);
    client_->pending_.erase(context_);
  }
  PendingCall(const PendingCall&) = delete;
  PendingCall& operator=(const PendingCall&) = delete;

 private:
  PeerClient* client_;
  grpc::ClientContext* context_;
};

grpc::ChannelArguments PeerChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveTime)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveTimeout)));
  // Streams sit idle for long stretches (a drain under the mandatory
  // policy): pings must go out without data and without active calls too.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A fresh connection per migration: a subchannel shared with an earlier
  // migration's broken connection would report its state, not ours.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // The same deliberate bound as the destination's server (server.h): a
  // stream message fits; a destination answering with more is refused.
  args.SetMaxSendMessageSize(kMaxPeerMessageBytes);
  args.SetMaxReceiveMessageSize(kMaxPeerMessageBytes);
  return args;
}

std::unique_ptr<PeerClient> PeerClient::Connect(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  return std::make_unique<PeerClient>(
      target, grpc::CreateCustomChannel(target, std::move(credentials),
                                        PeerChannelArguments()));
}

PeerClient::PeerClient(std::string target,
                       std::shared_ptr<grpc::Channel> channel)
    : target_(std::move(target)),
      channel_(std::move(channel)),
      stub_(v1::PeerService::NewStub(channel_)) {}

absl::StatusOr<v1::PrepareResponse> PeerClient::Prepare(
    const v1::PrepareRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  const PendingCall pending(this, &context);
  v1::PrepareResponse response;
  grpc::Status status = stub_->Prepare(&context, request, &response);
  if (!status.ok()) {
    return FromGrpc(status, absl::StrCat("destination ", target_, ": Prepare"));
  }
  return response;
}

absl::StatusOr<v1::LoadResponse> PeerClient::Load(
    const std::string& migration_id, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  const PendingCall pending(this, &context);
  v1::LoadRequest request;
  request.set_migration_id(migration_id);
  v1::LoadResponse response;
  grpc::Status status = stub_->Load(&context, request, &response);
  if (!status.ok()) {
    return FromGrpc(status, absl::StrCat("destination ", target_, ": Load"));
  }
  return response;
}

absl::StatusOr<v1::CommitResponse> PeerClient::Commit(
    const std::string& migration_id, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  const PendingCall pending(this, &context);
  v1::CommitRequest request;
  request.set_migration_id(migration_id);
  v1::CommitResponse response;
  grpc::Status status = stub_->Commit(&context, request, &response);
  if (!status.ok()) {
    return FromGrpc(status, absl::StrCat("destination ", target_, ": Commit"));
  }
  return response;
}

absl::StatusOr<v1::AbortResponse> PeerClient::Abort(
    const std::string& migration_id, const std::string& reason,
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(timeout));
  v1::AbortRequest request;
  request.set_migration_id(migration_id);
  request.set_reason(reason);
  v1::AbortResponse response;
  grpc::Status status = stub_->Abort(&context, request, &response);
  if (!status.ok()) {
    return FromGrpc(status, absl::StrCat("destination ", target_, ": Abort"));
  }
  return response;
}

void PeerClient::CancelPending() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* context : pending_) context->TryCancel();
}

bool PeerClient::Connected() {
  return channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  // gRPC and absl share the canonical codes.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

}  // namespace vfiomig
