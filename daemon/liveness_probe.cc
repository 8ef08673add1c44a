#include "daemon/liveness_probe.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"

namespace vfiomig {
namespace {

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
// HealthCheckResponse{status: SERVING}: field 1 (varint) = 1. The request
// for the whole server (service "") is the empty message.
constexpr char kServing[] = {0x08, 0x01};

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  return bytes;
}

}  // namespace

absl::Status CheckServing(grpc::Server& server, absl::Duration timeout) {
  grpc::GenericStub stub(server.InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // An empty message still needs a buffer: a default ByteBuffer is "no
  // message", which gRPC refuses to send.
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, kHealthCheck, grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  // The call's own deadline ends it; this wait only guards against a
  // completion that never comes.
  if (!done.WaitForNotificationWithTimeout(timeout + absl::Seconds(1))) {
    context.TryCancel();
    done.WaitForNotification();
    return absl::DeadlineExceededError("health check did not complete");
  }
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("health check failed: ", status.error_message()));
  }
  if (Bytes(response) != std::string(kServing, sizeof(kServing))) {
    return absl::UnavailableError("the server does not report SERVING");
  }
  return absl::OkStatus();
}

}  // namespace vfiomig
