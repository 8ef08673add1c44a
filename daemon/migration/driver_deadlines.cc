#include "daemon/migration/driver_deadlines.h"

namespace vfiomig {

ArcDeadlines ResolveDeadlines(const ArcDeadlines& defaults,
                              uint32_t request_drain_ms,
                              uint32_t request_arc_ms,
                              const DriverDeadlineOverrides& overrides,
                              const std::vector<DeviceDriver>& devices) {
  ArcDeadlines resolved;
  resolved.drain = request_drain_ms > 0 ? absl::Milliseconds(request_drain_ms)
                                        : defaults.drain;
  resolved.arc =
      request_arc_ms > 0 ? absl::Milliseconds(request_arc_ms) : defaults.arc;
  for (const DeviceDriver& device : devices) {
    auto it = overrides.find(device.driver);
    if (it == overrides.end()) continue;
    ArcDeadlines::Kinds kinds{resolved.drain, resolved.arc};
    if (request_drain_ms == 0 && it->second.drain)
      kinds.drain = *it->second.drain;
    if (request_arc_ms == 0 && it->second.arc) kinds.arc = *it->second.arc;
    if (kinds.drain != resolved.drain || kinds.arc != resolved.arc) {
      resolved.by_device[device.id] = kinds;
    }
  }
  return resolved;
}

}  // namespace vfiomig
