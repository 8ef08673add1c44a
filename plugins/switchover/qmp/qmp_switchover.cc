// The `qmp` switchover action: pauses and resumes a QEMU VM over its QMP
// socket (SwitchoverContext::vmm_socket, from the migration's Workload).
//
//  - Pause (source): `stop`, then waits for QEMU's STOP event and checks
//    `query-status` says the VM no longer runs. A VM that was not running
//    is left alone, and remembered, so that a rollback does not start a VM
//    that somebody else had paused.
//  - Resume (source, after a rollback): `cont`, RESUME event, `query-status`
//    running; only if Pause stopped it.
//  - CheckStart (destination, at Load, before the commit point): the VM's
//    monitor answers `query-status`, so that Start can work; without a
//    socket there is nothing to check.
//  - Start (destination, every device RUNNING): `cont`. A VM still in
//    "inmigrate" (QEMU's own incoming migration not done) gets autostart
//    from `cont` and runs when that migration completes. A destination
//    without a socket starts nothing (whoever started that VM resumes it,
//    as libvirt does with its own migration).
// Each step opens its own QMP session and closes it: a QEMU monitor serves
// one client at a time, so the socket stays free for others in between.
// Every exchange is bounded by SwitchoverContext::timeout.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/migration/switchover.h"
#include "plugins/switchover/qmp/qmp_client.h"
#include "spdlog/spdlog.h"

namespace vfiomig::qmp {
namespace {

struct VmStatus {
  bool running = false;
  std::string status;
};

absl::StatusOr<VmStatus> QueryStatus(QmpClient& client, absl::Time deadline) {
  absl::StatusOr<nlohmann::json> result =
      client.Execute("query-status", nlohmann::json::object(), deadline);
  if (!result.ok()) return result.status();
  if (!result->is_object() || !result->contains("running") ||
      !(*result)["running"].is_boolean()) {
    return absl::DataLossError(
        absl::StrCat("query-status: unexpected answer ", result->dump()));
  }
  return VmStatus{(*result)["running"].get<bool>(),
                  result->value("status", "unknown")};
}

std::string Vm(const SwitchoverContext& context) {
  return context.domain.empty() ? absl::StrCat("VM at ", context.vmm_socket)
                                : absl::StrCat("VM ", context.domain, " (",
                                               context.vmm_socket, ")");
}

class QmpSwitchover final : public SwitchoverAction {
 public:
  std::string_view name() const override { return "qmp"; }

  absl::Status Validate(const SwitchoverContext& context) const override {
    if (context.vmm_socket.empty() && context.side == SwitchoverSide::kSource) {
      return absl::InvalidArgumentError(
          "needs the VM's QMP socket on the source host "
          "(workload.source_qmp_socket)");
    }
    return absl::OkStatus();
  }

  absl::Status Pause(const SwitchoverContext& context) override {
    const absl::Time deadline = absl::Now() + context.timeout;
    absl::StatusOr<std::unique_ptr<QmpClient>> client =
        QmpClient::Connect(context.vmm_socket, deadline);
    if (!client.ok()) return client.status();
    absl::StatusOr<VmStatus> before = QueryStatus(**client, deadline);
    if (!before.ok()) return before.status();
    if (!before->running) {
      spdlog::warn(
          "migration {}: {} is already {}, not running: not pausing it, and "
          "a rollback will not resume it",
          context.migration_id, Vm(context), before->status);
      paused_by_us_ = false;
      return absl::OkStatus();
    }
    if (absl::StatusOr<nlohmann::json> r =
            (*client)->Execute("stop", nlohmann::json::object(), deadline);
        !r.ok()) {
      return r.status();
    }
    // From here on the VM may be stopped: a rollback must resume it even
    // if the checks below fail.
    paused_by_us_ = true;
    if (absl::StatusOr<nlohmann::json> e =
            (*client)->WaitEvent("STOP", deadline);
        !e.ok()) {
      return e.status();
    }
    absl::StatusOr<VmStatus> after = QueryStatus(**client, deadline);
    if (!after.ok()) return after.status();
    if (after->running) {
      return absl::InternalError(
          absl::StrCat(Vm(context), " still runs after stop"));
    }
    spdlog::info("migration {}: {} paused (status {})", context.migration_id,
                 Vm(context), after->status);
    return absl::OkStatus();
  }

  absl::Status Resume(const SwitchoverContext& context) override {
    if (!paused_by_us_) return absl::OkStatus();
    absl::Status status = Continue(context, /*allow_inmigrate=*/false);
    if (status.ok()) paused_by_us_ = false;
    return status;
  }

  bool PausedWorkload() const override { return paused_by_us_; }
  void AssumePaused() override { paused_by_us_ = true; }

  absl::Status CheckStart(const SwitchoverContext& context) override {
    if (context.vmm_socket.empty()) return absl::OkStatus();
    const absl::Time deadline = absl::Now() + context.timeout;
    absl::StatusOr<std::unique_ptr<QmpClient>> client =
        QmpClient::Connect(context.vmm_socket, deadline);
    if (!client.ok()) return client.status();
    absl::StatusOr<VmStatus> status = QueryStatus(**client, deadline);
    if (!status.ok()) return status.status();
    spdlog::info("migration {}: {} answers (status {}); it can start here",
                 context.migration_id, Vm(context), status->status);
    return absl::OkStatus();
  }

  absl::Status Start(const SwitchoverContext& context) override {
    if (context.vmm_socket.empty()) {
      spdlog::info(
          "migration {}: no destination QMP socket: the VM is resumed by "
          "whoever started it",
          context.migration_id);
      return absl::OkStatus();
    }
    return Continue(context, /*allow_inmigrate=*/true);
  }

 private:
  absl::Status Continue(const SwitchoverContext& context,
                        bool allow_inmigrate) {
    const absl::Time deadline = absl::Now() + context.timeout;
    absl::StatusOr<std::unique_ptr<QmpClient>> client =
        QmpClient::Connect(context.vmm_socket, deadline);
    if (!client.ok()) return client.status();
    absl::StatusOr<VmStatus> before = QueryStatus(**client, deadline);
    if (!before.ok()) return before.status();
    if (before->running) {
      spdlog::warn("migration {}: {} was already running", context.migration_id,
                   Vm(context));
      return absl::OkStatus();
    }
    if (absl::StatusOr<nlohmann::json> r =
            (*client)->Execute("cont", nlohmann::json::object(), deadline);
        !r.ok()) {
      // `cont` may have acted before the error reached us (a timeout):
      // what counts is whether the VM runs.
      absl::StatusOr<VmStatus> now = QueryStatus(**client, deadline);
      if (now.ok() && now->running) return absl::OkStatus();
      return r.status();
    }
    if (allow_inmigrate && before->status == "inmigrate") {
      spdlog::info(
          "migration {}: {} is still receiving QEMU's own migration; it "
          "starts when that completes",
          context.migration_id, Vm(context));
      return absl::OkStatus();
    }
    if (absl::StatusOr<nlohmann::json> e =
            (*client)->WaitEvent("RESUME", deadline);
        !e.ok()) {
      return e.status();
    }
    absl::StatusOr<VmStatus> after = QueryStatus(**client, deadline);
    if (!after.ok()) return after.status();
    if (!after->running) {
      return absl::InternalError(absl::StrCat(
          Vm(context), " is ", after->status, " after cont, not running"));
    }
    spdlog::info("migration {}: {} resumed", context.migration_id, Vm(context));
    return absl::OkStatus();
  }

  // Pause stopped a running VM; only then does a rollback resume it.
  bool paused_by_us_ = false;
};

const SwitchoverRegistration kRegistration(
    "qmp", []() -> absl::StatusOr<std::unique_ptr<SwitchoverAction>> {
      return std::make_unique<QmpSwitchover>();
    });

}  // namespace
}  // namespace vfiomig::qmp
