// Per-driver arc deadlines: some drivers drain far slower than others (a
// NIC flushing queues, a GPU finishing work), so the daemon's config may give
// a driver its own deadlines ([drivers.NAME], daemon/config/). A migration
// resolves them per device when it starts:
//
//   the request's own deadline  >  the device driver's  >  the daemon default
//
// for each kind (drain, arc) separately. The source resolves them for its
// devices and sends each device's deadlines to the destination in
// PeerDevice, so both sides of a device run with the same ones and the
// source's call budgets (Prepare, Commit) match the destination's arcs.
// Pure; no I/O.
#ifndef VFIOMIG_DAEMON_MIGRATION_DRIVER_DEADLINES_H_
#define VFIOMIG_DAEMON_MIGRATION_DRIVER_DEADLINES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "daemon/engine/transition_executor.h"

namespace vfiomig {

struct DriverDeadlineOverride {
  std::optional<absl::Duration> drain;
  std::optional<absl::Duration> arc;
};

// By kernel driver name (DeviceInfo::driver).
using DriverDeadlineOverrides =
    std::map<std::string, DriverDeadlineOverride, std::less<>>;

struct DeviceDriver {
  std::string id;
  std::string driver;
};

// `defaults` are the daemon's; `request_drain`/`request_arc` the
// migration's own (0: not set). The result's drain/arc are the migration's
// deadlines; by_device holds each device whose driver changes them.
ArcDeadlines ResolveDeadlines(const ArcDeadlines& defaults,
                              uint32_t request_drain_ms,
                              uint32_t request_arc_ms,
                              const DriverDeadlineOverrides& overrides,
                              const std::vector<DeviceDriver>& devices);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DRIVER_DEADLINES_H_
