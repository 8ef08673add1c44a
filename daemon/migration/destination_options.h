// DestinationOptions: how this daemon behaves as a migration destination.
#ifndef VFIOMIG_DAEMON_MIGRATION_DESTINATION_OPTIONS_H_
#define VFIOMIG_DAEMON_MIGRATION_DESTINATION_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "daemon/engine/transition_executor.h"
#include "daemon/store/journal.h"

namespace vfiomig {

struct DestinationOptions {
  // A prepared migration with no open stream that gets neither Commit nor
  // Abort for this long (counted from Prepare, from the last stream frame
  // or from the last stream's end) is orphaned: its source is gone, and
  // the destination rolls its devices back by itself. Open streams keep a
  // migration alive however quiet they are (a source may sit in a long
  // drain under the mandatory policy); a dead source breaks them through
  // gRPC keepalive instead (server.cc).
  absl::Duration abort_timeout = absl::Seconds(30);

  // Per-arc deadlines when a PrepareRequest leaves them 0.
  ArcDeadlines default_deadlines;

  // Bound on one stream's device bytes, as a multiple of the target's
  // capacity (device_identity.h DeviceStateCapacity): pre-copy resends
  // dirtied data, so a stream legitimately carries more than the state.
  uint64_t stream_capacity_factor = 4;
  // The bound when the capacity is unknown (kernel devices).
  uint64_t unknown_capacity_stream_limit = uint64_t{1} << 40;  // 1 TiB

  // Finished incoming migrations kept for listing, oldest dropped first.
  size_t history_limit = 100;

  // Why `device` must not receive a migration for the libvirt domain
  // `domain` (Workload.domain, may be empty), or nullopt when it may: a
  // device held by another running domain (DomainAdmission) is refused.
  // Unset: no such check.
  std::function<std::optional<std::string>(const std::string& device,
                                           const std::string& domain)>
      device_conflict;
  // Where every incoming migration's progress is recorded
  // (daemon/store/journal.h). Null only in unit tests of other concerns.
  Journal* journal = nullptr;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DESTINATION_OPTIONS_H_
