#include "client/rpc.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "daemon/transport_security.h"

namespace vfiomig::cli {
namespace {

// Equal to the daemon's kMaxMessageBytes.
constexpr int kMaxResponseBytes = 16 << 20;

std::string FormatSeconds(double seconds) {
  return absl::StrFormat("%gs", seconds);
}

// gRPC reports a failed connect as "failed to connect to all addresses;
// last error: UNKNOWN: unix:/x.sock: No such file or directory". The target
// is already in our sentence, so keep only the OS's reason; anything in
// another shape passes through untouched.
std::string ConnectReason(const std::string& message) {
  absl::string_view rest = message;
  size_t pos = rest.find("last error: ");
  if (pos == absl::string_view::npos) return message;
  rest.remove_prefix(pos + sizeof("last error: ") - 1);
  size_t colon = rest.find(": ");
  if (colon != absl::string_view::npos &&
      rest.substr(0, colon).find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") ==
          absl::string_view::npos) {
    rest.remove_prefix(colon + 2);  // the status code name
  }
  for (absl::string_view scheme :
       {"unix:", "unix-abstract:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(rest, scheme)) {
      colon = rest.find(": ");
      if (colon != absl::string_view::npos) rest.remove_prefix(colon + 2);
      break;
    }
  }
  return rest.empty() ? message : std::string(rest);
}

}  // namespace

absl::StatusOr<std::string> NormalizeTarget(absl::string_view server) {
  if (server.empty()) {
    return absl::InvalidArgumentError(
        "--server is empty (expected unix:/path or host:port)");
  }
  // A bare absolute path is what people paste from `ls /run`; gRPC would
  // try to resolve it as a DNS name.
  if (server.front() == '/') return absl::StrCat("unix:", server);
  return std::string(server);
}

ControlClient::ControlClient(std::string target, double timeout_seconds,
                             std::shared_ptr<grpc::Channel> channel)
    : target_(std::move(target)),
      timeout_seconds_(timeout_seconds),
      channel_(std::move(channel)),
      stub_(v1::ControlService::NewStub(channel_)) {}

absl::StatusOr<ControlClient> ControlClient::Create(
    const GlobalOptions& options) {
  absl::StatusOr<std::string> target = NormalizeTarget(options.server);
  if (!target.ok()) return target.status();
  if (!(options.timeout_seconds > 0)) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  // Unix sockets: plaintext (file permissions guard them); TCP: mutual TLS
  // with the --tls-* files, or plaintext only with --insecure.
  absl::StatusOr<TransportSecurity> security = TransportSecurity::Create(
      {.ca = options.tls_ca, .cert = options.tls_cert, .key = options.tls_key},
      options.insecure);
  if (!security.ok()) return security.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security->ChannelCredentialsFor(*target);
  if (!credentials.ok()) {
    return absl::InvalidArgumentError(credentials.status().message());
  }
  grpc::ChannelArguments args;
  // The daemon's own bound on a response (daemon/server.h): a long
  // migration history must not fail at gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(kMaxResponseBytes);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(*target, *std::move(credentials), args);
  return ControlClient(*std::move(target), options.timeout_seconds,
                       std::move(channel));
}

void ControlClient::PrepareContext(grpc::ClientContext* context) const {
  // One deadline covers connecting and answering. wait_for_ready stays off:
  // a refused or missing socket fails at once instead of being retried
  // until the deadline.
  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(timeout_seconds_));
  context->set_deadline(std::chrono::system_clock::now() + timeout);
}

absl::Status ControlClient::Translate(const grpc::Status& status) const {
  // A daemon that answered leaves the channel READY; anything else means we
  // never got through, whatever code gRPC chose to report.
  const bool connected =
      channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
  const std::string& message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (!connected) {
        return absl::UnavailableError(absl::StrCat("cannot reach vfio-migd at ",
                                                   target_, ": ",
                                                   ConnectReason(message)));
      }
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (!connected) {
        return absl::UnavailableError(absl::StrCat(
            "cannot reach vfio-migd at ", target_, ": no connection within ",
            FormatSeconds(timeout_seconds_)));
      }
      return absl::DeadlineExceededError(
          absl::StrCat("vfio-migd at ", target_, " did not answer within ",
                       FormatSeconds(timeout_seconds_)));
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::UnimplementedError(absl::StrCat(
          "vfio-migd at ", target_,
          " does not implement this call (version mismatch?): ", message));
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("vfio-migd refused the request: ", message));
    default:
      break;
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("vfio-migd failed: ", message));
}

absl::StatusOr<v1::Migration> ControlClient::Switchover(
    const std::string& id) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::SwitchoverRequest request;
  request.set_id(id);
  v1::Migration response;
  grpc::Status status = stub_->Switchover(&context, request, &response);
  if (!status.ok()) return Translate(status);
  return response;
}

absl::StatusOr<v1::AdmitDomainResponse> ControlClient::AdmitDomain(
    const v1::AdmitDomainRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::AdmitDomainResponse response;
  grpc::Status status = stub_->AdmitDomain(&context, request, &response);
  if (!status.ok()) return Translate(status);
  return response;
}

absl::StatusOr<v1::ReleaseDomainResponse> ControlClient::ReleaseDomain(
    const v1::ReleaseDomainRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ReleaseDomainResponse response;
  grpc::Status status = stub_->ReleaseDomain(&context, request, &response);
  if (!status.ok()) return Translate(status);
  return response;
}

absl::StatusOr<v1::ListDevicesResponse> ControlClient::ListDevices(
    bool include_host_devices) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ListDevicesRequest request;
  request.set_include_host_devices(include_host_devices);
  v1::ListDevicesResponse response;
  grpc::Status status = stub_->ListDevices(&context, request, &response);
  if (!status.ok()) return Translate(status);
  return response;
}

absl::StatusOr<v1::Device> ControlClient::GetDevice(
    const std::string& id) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::GetDeviceRequest request;
  request.set_id(id);
  v1::Device device;
  grpc::Status status = stub_->GetDevice(&context, request, &device);
  if (!status.ok()) return Translate(status);
  return device;
}

absl::StatusOr<v1::MigrationPlan> ControlClient::PlanMigration(
    const v1::PlanMigrationRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::MigrationPlan plan;
  grpc::Status status = stub_->PlanMigration(&context, request, &plan);
  if (!status.ok()) return Translate(status);
  return plan;
}

absl::Status ControlClient::AwaitConnection() const {
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::duration<double>(timeout_seconds_));
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
        state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::OkStatus();  // the call fails fast and says why
    }
    if (!channel_->WaitForStateChange(state, deadline)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach vfio-migd at ", target_, ": no connection within ",
          FormatSeconds(timeout_seconds_)));
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Migration> ControlClient::StartMigration(
    const v1::StartMigrationRequest& request) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::Migration migration;
  grpc::Status status = stub_->StartMigration(&context, request, &migration);
  if (!status.ok()) return Translate(status);
  return migration;
}

absl::StatusOr<v1::Migration> ControlClient::GetMigration(
    const std::string& id) const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::GetMigrationRequest request;
  request.set_id(id);
  v1::Migration migration;
  grpc::Status status = stub_->GetMigration(&context, request, &migration);
  if (!status.ok()) return Translate(status);
  return migration;
}

absl::StatusOr<v1::ListMigrationsResponse> ControlClient::ListMigrations()
    const {
  grpc::ClientContext context;
  PrepareContext(&context);
  v1::ListMigrationsResponse response;
  grpc::Status status =
      stub_->ListMigrations(&context, v1::ListMigrationsRequest(), &response);
  if (!status.ok()) return Translate(status);
  return response;
}

absl::StatusOr<v1::Migration> ControlClient::CancelMigration(
    const std::string& id, grpc::ClientContext* context) const {
  if (absl::Status status = AwaitConnection(); !status.ok()) return status;
  grpc::ClientContext own_context;
  if (context == nullptr) context = &own_context;
  v1::CancelMigrationRequest request;
  request.set_id(id);
  v1::Migration migration;
  grpc::Status status = stub_->CancelMigration(context, request, &migration);
  if (!status.ok()) return Translate(status);
  return migration;
}

absl::StatusOr<std::unique_ptr<MigrationWatch>> ControlClient::WatchMigration(
    const std::string& id) const {
  if (absl::Status status = AwaitConnection(); !status.ok()) return status;
  // The constructor is private; make_unique cannot reach it.
  std::unique_ptr<MigrationWatch> watch(new MigrationWatch(this));
  v1::WatchMigrationRequest request;
  request.set_id(id);
  watch->reader_ = stub_->WatchMigration(&watch->context_, request);
  return watch;
}

bool MigrationWatch::Read(v1::MigrationEvent* event) {
  return reader_->Read(event);
}

absl::Status MigrationWatch::Finish() {
  grpc::Status status = reader_->Finish();
  if (status.ok()) return absl::OkStatus();
  return client_->Translate(status);
}

int ReportRpcError(const absl::Status& status) {
  PrintError(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    default:
      return kExitDaemon;
  }
}

}  // namespace vfiomig::cli
