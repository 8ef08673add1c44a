// SwitchoverAction: what a source migration does to the workload around the
// moment its devices stop.
//
// Between the last pre-copy round and the first quiesce arc, the workload
// that drives the devices (a VM) must pause, or the devices would keep
// changing state the destination no longer receives. How it pauses depends
// on who runs it (a VMM's QMP, a libvirt hook, an orchestrator), so it is an
// action chosen by name (--switchover), registered like device backends.
// Only `none` exists so far: the caller (or nothing) handles the workload.
//
//  - Pause runs once, before the quiesce waves; an error fails the
//    migration (nothing is stopped yet, the group rolls back).
//  - Resume runs only after a failed migration whose Pause succeeded, once
//    the source devices are RUNNING again: the workload continues where it
//    was. Its error is reported as a warning (the devices are fine).
//
// Actions are called from the migration's thread; one action object serves
// one migration.
#ifndef VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_
#define VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vfiomig {

struct SwitchoverContext {
  std::string migration_id;
  std::string destination;
  // Source device ids, in group order.
  std::vector<std::string> devices;
};

class SwitchoverAction {
 public:
  virtual ~SwitchoverAction() = default;
  virtual std::string_view name() const = 0;
  virtual absl::Status Pause(const SwitchoverContext& context) = 0;
  virtual absl::Status Resume(const SwitchoverContext& context) = 0;
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

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SWITCHOVER_H_
