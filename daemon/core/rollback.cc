#include "daemon/core/rollback.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vfiomig {
namespace {

// A device accepts DMA now and keeps accepting it until its current arc (if
// any) ends: both ends of the arc must accept, because the kernel gives no
// guarantee about when inside the arc the device stops answering.
bool KeepsAcceptingDma(const RollbackDevice& d) {
  if (!AcceptsDma(d.state)) return false;
  return !d.in_flight_to.has_value() || AcceptsDma(*d.in_flight_to);
}

// Whether every P2P device other than `self` accepts DMA, so that `self`
// may start issuing DMA again.
bool PeersAcceptDma(const std::vector<RollbackDevice>& devices, size_t self) {
  for (size_t j = 0; j < devices.size(); ++j) {
    if (j == self || !devices[j].features.p2p()) continue;
    if (!KeepsAcceptingDma(devices[j])) return false;
  }
  return true;
}

}  // namespace

bool AcceptsDma(DeviceState state) {
  return state == DeviceState::RUNNING || state == DeviceState::RUNNING_P2P ||
         state == DeviceState::PRE_COPY || state == DeviceState::PRE_COPY_P2P;
}

RollbackStep NextRollbackStep(const std::vector<RollbackDevice>& devices) {
  RollbackStep step;
  step.done = true;
  for (const RollbackDevice& d : devices) {
    if (d.in_flight_to.has_value() || d.state != DeviceState::RUNNING) {
      step.done = false;
    }
  }
  if (step.done) return step;

  for (size_t i = 0; i < devices.size(); ++i) {
    const RollbackDevice& d = devices[i];
    // A busy device is left alone: the backend takes one call at a time and
    // its state is known only once the call returns.
    if (d.in_flight_to.has_value() || d.state == DeviceState::RUNNING) {
      continue;
    }
    if (d.state == DeviceState::ERROR) {
      step.need_reset.push_back(d.id);
      continue;
    }
    absl::StatusOr<DeviceState> next =
        NextState(d.features, d.state, DeviceState::RUNNING);
    if (!next.ok()) {
      // A state the device's features do not allow (a confused backend or
      // a wrong inventory): no arc is known to be safe, only a reset helps.
      step.need_reset.push_back(d.id);
      continue;
    }
    if (*next == DeviceState::RUNNING && !PeersAcceptDma(devices, i)) {
      continue;  // Asked again once a peer finishes its arc.
    }
    step.arcs.push_back(PlannedArc{d.id, d.state, *next});
  }
  return step;
}

}  // namespace vfiomig
