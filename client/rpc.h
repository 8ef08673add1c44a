// The CLI's only gRPC touch point: channel creation, deadlines, and turning
// transport failures into one clear sentence.
#ifndef VFIOMIG_CLIENT_RPC_H_
#define VFIOMIG_CLIENT_RPC_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/common.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig::cli {

// "/run/x.sock" -> "unix:/run/x.sock"; other targets pass through. Empty is
// an error.
absl::StatusOr<std::string> NormalizeTarget(absl::string_view server);

class ControlClient {
 public:
  // Creates the channel. No I/O happens until the first call, so this only
  // fails for a malformed target.
  static absl::StatusOr<ControlClient> Create(const GlobalOptions& options);

  absl::StatusOr<v1::ListDevicesResponse> ListDevices() const;
  absl::StatusOr<v1::Device> GetDevice(const std::string& id) const;
  absl::StatusOr<v1::MigrationPlan> PlanMigration(
      const v1::PlanMigrationRequest& request) const;

  const std::string& target() const { return target_; }

 private:
  ControlClient(std::string target, double timeout_seconds,
                std::shared_ptr<grpc::Channel> channel);

  // Fills a context with the call deadline.
  void PrepareContext(grpc::ClientContext* context) const;
  // Maps a failed call to an absl::Status whose message is the full,
  // user-facing sentence (it names the target when the daemon is
  // unreachable).
  absl::Status Translate(const grpc::Status& status) const;

  std::string target_;
  double timeout_seconds_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ControlService::Stub> stub_;
};

// Prints `status` (from ControlClient) as one error line and returns the
// exit code: kExitUsage when the daemon rejected the request itself
// (unknown device, invalid argument), kExitDaemon otherwise.
int ReportRpcError(const absl::Status& status);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_RPC_H_
