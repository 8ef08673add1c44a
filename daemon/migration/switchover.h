// SwitchoverAction: what a source migration does to the workload around the
// moment its devices stop.
//
// Between the last pre-copy round and the first quiesce arc, the workload
// that drives the devices (a VM) must pause, or the devices would keep
// changing state the destination no longer receives. How it pauses depends
// on who runs it (a VMM's QMP, a libvirt hook, an orchestrator), so it is an
// action chosen by name (--switchover), registered like device backends.
// `none` is built in (the caller, or nothing, handles the workload); the
// adapters live in plugins/switchover/ (`qmp`, `external`) and register
// themselves here. A migration picks one by name (Workload.switchover, or
// the daemon's --switchover); the destination daemon creates the same one
// by name from the PrepareRequest.
//
// Source side:
//  - Pause runs once, before the quiesce waves; an error fails the
//    migration (nothing is stopped yet, the group rolls back).
//  - Resume runs only after a failed migration whose Pause succeeded, once
//    the source devices are RUNNING again: the workload continues where it
//    was. Its error is reported as a warning (the devices are fine).
//  - Proceed (any thread) is the control plane's go-ahead (the Switchover
//    RPC), for actions whose Pause waits for one; Cancel (any thread) makes
//    a waiting Pause return.
// Destination side:
//  - CheckStart runs at Load, every device loaded and STOP, before the
//    commit point (daemon/migration/PROTOCOL.md): whether Start can work
//    (qmp: the VM's monitor answers). Its error fails the load, so the
//    source rolls back and resumes its workload.
//  - Start runs once every destination device is RUNNING, after the commit
//    point: the workload starts on this host. The source never resumes
//    after that point, so its error is reported (the migration FAILED, the
//    devices RUNNING here) and cannot hand the workload back.
//
// Pause, Resume, CheckStart and Start are called from one migration thread; one
// action object serves one migration on one side.
#ifndef VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_
#define VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace vfiomig {

enum class SwitchoverSide { kSource, kDestination };

struct SwitchoverContext {
  SwitchoverSide side = SwitchoverSide::kSource;
  std::string migration_id;
  // The peer daemon (source side) or source host (destination side).
  std::string destination;
  // This side's device ids, in group order.
  std::vector<std::string> devices;
  // The workload's VMM control socket on this host (Workload's
  // source_qmp_socket / destination_qmp_socket); empty when none was given.
  std::string vmm_socket;
  // The libvirt domain, for messages; may be empty.
  std::string domain;
  // How long one call may take (Workload.switchover_timeout_ms or the
  // daemon's --switchover-timeout-ms).
  absl::Duration timeout = absl::Seconds(30);
};

class SwitchoverAction {
 public:
  virtual ~SwitchoverAction() = default;
  virtual std::string_view name() const = 0;
  // Whether `context` has what this action needs (qmp: a socket), checked
  // before a migration starts. InvalidArgument saying what is missing.
  virtual absl::Status Validate(const SwitchoverContext& context) const {
    return absl::OkStatus();
  }
  virtual absl::Status Pause(const SwitchoverContext& context) = 0;
  virtual absl::Status Resume(const SwitchoverContext& context) = 0;
  // After a successful Pause: whether it stopped a workload that Resume
  // must start again (qmp: false for a VM that was not running). The
  // journal keeps the answer across restarts.
  virtual bool PausedWorkload() const { return true; }
  // A restarted source whose journal says Pause stopped the workload and
  // nothing resumed it since: this new object's Resume must resume it.
  virtual void AssumePaused() {}
  virtual absl::Status CheckStart(const SwitchoverContext& context) {
    return absl::OkStatus();
  }
  virtual absl::Status Start(const SwitchoverContext& context) {
    return absl::OkStatus();
  }
  // FailedPrecondition unless Pause waits for a go-ahead.
  virtual absl::Status Proceed() {
    return absl::FailedPreconditionError(
        absl::StrCat("switchover '", std::string(name()),
                     "' does not wait for a Switchover call"));
  }
  virtual void Cancel() {}
};

using SwitchoverFactory =
    std::function<absl::StatusOr<std::unique_ptr<SwitchoverAction>>()>;

class SwitchoverRegistry {
 public:
  // Replaces an action of the same name.
  static void Register(std::string name, SwitchoverFactory factory);
  // NotFound listing the registered names when `name` is unknown.
  static absl::StatusOr<std::unique_ptr<SwitchoverAction>> Create(
      std::string_view name);
  // Sorted; always includes "none".
  static std::vector<std::string> Names();
};

// A plugin's static registration (see plugins/registry.h for why plugins
// are object libraries).
struct SwitchoverRegistration {
  SwitchoverRegistration(std::string name, SwitchoverFactory factory) {
    SwitchoverRegistry::Register(std::move(name), std::move(factory));
  }
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_
