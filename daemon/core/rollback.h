// RollbackStepper: which arcs may start now to bring a group back to RUNNING.
//
// A failed migration leaves devices scattered: some idle in STOP or
// STOP_COPY, some still inside an arc that passed its deadline (a drain the
// kernel cannot interrupt). Waiting for every device before moving any would
// keep the whole VM stopped behind one hung device; moving each device
// blindly would let a device run while a P2P peer is stopped. This decides,
// from what is known now, which arcs are safe to start:
//
//  - a device that is idle and not RUNNING takes its next kernel arc toward
//    RUNNING (fsm.h NextState), except that
//  - an arc *into* RUNNING (the device may issue DMA again) starts only when
//    every other P2P-capable device accepts DMA: idle in RUNNING,
//    RUNNING_P2P, PRE_COPY or PRE_COPY_P2P, or inside an arc between two
//    such states. Devices without P2P are not waited for (they cannot be
//    quiesced; the group accepted that risk when it planned them).
//  - a device in ERROR needs VFIO_DEVICE_RESET, which the caller does; it is
//    reported, not stepped.
//
// The engine calls this again whenever a device finishes an arc, until every
// device is RUNNING. Pure: no I/O, no threads.
#ifndef VFIOMIG_DAEMON_CORE_ROLLBACK_H_
#define VFIOMIG_DAEMON_CORE_ROLLBACK_H_

#include <optional>
#include <string>
#include <vector>

#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"

namespace vfiomig {

struct RollbackDevice {
  std::string id;
  MigrationFeatures features;
  // Last known state; while `in_flight` is set, the arc's `from`.
  DeviceState state = DeviceState::RUNNING;
  // The arc the device is executing now, if any.
  std::optional<DeviceState> in_flight_to;
};

struct RollbackStep {
  // Arcs to start now (at most one per device).
  std::vector<PlannedArc> arcs;
  // Idle devices in ERROR: the caller resets them (VFIO_DEVICE_RESET ->
  // RUNNING). Also idle devices in a state their features do not allow (a
  // confused backend): no arc from there is known, only a reset helps.
  // Devices in flight are never listed.
  std::vector<std::string> need_reset;
  // True when every device is RUNNING and none is in flight.
  bool done = false;
};

// True for states in which a device still accepts inbound P2P DMA.
bool AcceptsDma(DeviceState state);

RollbackStep NextRollbackStep(const std::vector<RollbackDevice>& devices);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CORE_ROLLBACK_H_
