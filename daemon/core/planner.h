// GroupPlanner: how a set of devices migrates together, as data.
//
// A plan is an ordered list of waves per side. A wave holds single kernel
// arcs (one per device at most) that may run concurrently; a barrier sits
// between consecutive waves. The planner enforces the P2P ordering rules:
//
//  - source: every device with P2P reaches RUNNING_P2P or PRE_COPY_P2P before
//    any device enters STOP or STOP_COPY; PRE_COPY devices first go
//    RUNNING -> PRE_COPY; every path ends STOP_COPY -> STOP.
//  - destination: every device goes RUNNING -> ... -> RESUMING; after the
//    data, every device with P2P reaches RUNNING_P2P before any enters
//    RUNNING.
//  - a group of two or more devices in which a device lacks P2P is blocked
//    (one blocker per such device), unless allow_no_p2p is set.
//
// Pure: no I/O, no threads. Paths come from fsm.h, so every arc is one the
// kernel itself would take.
#ifndef VFIOMIG_DAEMON_CORE_PLANNER_H_
#define VFIOMIG_DAEMON_CORE_PLANNER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/core/fsm.h"

namespace vfiomig {

// What the planner needs to know of one device.
struct PlanDevice {
  std::string id;
  MigrationFeatures features;
  // The device's current state; a migration starts from RUNNING.
  DeviceState state = DeviceState::RUNNING;
  // False when the backend says the device cannot migrate at all.
  bool migratable = true;
  std::string not_migratable_reason;
};

struct PlanOptions {
  // Accept a multi-device group in which some device lacks P2P.
  bool allow_no_p2p = false;
};

// One VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET.
struct PlannedArc {
  std::string device;
  DeviceState from = DeviceState::RUNNING;
  DeviceState to = DeviceState::RUNNING;

  friend bool operator==(const PlannedArc&, const PlannedArc&) = default;
};

// What a wave achieves. The engine hooks its work onto phases: pre-copy
// iterations after kPreCopy, the switchover before kP2pQuiesce, stop-copy
// streaming after kStopCopy, the stream into the device after kResuming.
enum class WavePhase {
  // Source.
  kPreCopy,        // RUNNING -> PRE_COPY
  kP2pQuiesce,     // -> RUNNING_P2P / PRE_COPY_P2P (P2P devices)
  kStop,           // -> STOP
  kStopCopy,       // -> STOP_COPY
  kStopAfterCopy,  // STOP_COPY -> STOP
  // Destination.
  kPrepareQuiesce,  // RUNNING -> RUNNING_P2P (P2P devices)
  kPrepareStop,     // -> STOP
  kResuming,        // STOP -> RESUMING
  kResumeStop,      // RESUMING -> STOP
  kP2pRestore,      // STOP -> RUNNING_P2P (P2P devices)
  kRunning,         // -> RUNNING
  // Rollback (either side), toward RUNNING.
  kRollbackStop,     // STOP_COPY / RESUMING -> STOP
  kRollbackP2p,      // -> RUNNING_P2P (P2P devices)
  kRollbackRunning,  // -> RUNNING
};

// "pre-copy", "p2p-quiesce", ...: stable names for JSON and logs.
std::string_view WavePhaseName(WavePhase phase);
// One sentence for humans.
std::string_view WavePhaseDescription(WavePhase phase);

struct Wave {
  WavePhase phase;
  std::vector<PlannedArc> arcs;
};

struct Blocker {
  // Empty when the blocker concerns the group as a whole.
  std::string device;
  std::string reason;
};

// Per-device view of a plan, for humans.
struct DeviceRoute {
  std::string device;
  std::vector<DeviceState> source_path;       // RUNNING ... STOP
  std::vector<DeviceState> destination_path;  // RUNNING ... RUNNING
  std::vector<std::string> reasons;
};

struct GroupPlan {
  bool migratable = false;
  // At most one per device id: all problems of a device (and of entries
  // sharing its id) are joined into one reason, first occurrence's order.
  std::vector<Blocker> blockers;
  // Empty when not migratable.
  std::vector<Wave> source;
  std::vector<Wave> destination;
  // One route per input device, in input order, also when blocked (then
  // empty for an empty group). A route's reasons start with the device's own
  // problems; its paths are filled when the device could migrate on its own
  // (migratable, has STOP_COPY, in RUNNING). PlanDestination leaves
  // source_path empty.
  std::vector<DeviceRoute> devices;
  // Risks accepted through options (allow_no_p2p), one line each.
  std::vector<std::string> warnings;
};

// Plans both sides for `devices`, assuming the destination devices have the
// same features as the source ones (the destination daemon re-plans its side
// against its own devices with PlanDestination). Device order in the input
// is kept in every wave. Never fails: problems become blockers.
GroupPlan PlanMigration(const std::vector<PlanDevice>& devices,
                        const PlanOptions& options);

// The destination side alone, for target devices that start in RUNNING.
GroupPlan PlanDestination(const std::vector<PlanDevice>& devices,
                          const PlanOptions& options);

// Returns every device from its current state (`PlanDevice::state`) to
// RUNNING, group-ordered: all P2P devices reach RUNNING_P2P before any device
// enters RUNNING; PRE_COPY devices go straight back to RUNNING. A device in
// ERROR cannot be planned (it needs a reset): that is an error naming it.
absl::StatusOr<std::vector<Wave>> PlanRollback(
    const std::vector<PlanDevice>& devices);

// Checks a source or destination wave list against the rules above and the
// kernel FSM: arcs are single kernel arcs, each device's arcs chain from its
// start state, at most one arc per device per wave, and the P2P barriers
// hold. Used by tests and as the engine's last check before it runs a plan.
enum class PlanSide { kSource, kDestination };
absl::Status CheckWaves(const std::vector<PlanDevice>& devices,
                        const std::vector<Wave>& waves, PlanSide side);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CORE_PLANNER_H_
