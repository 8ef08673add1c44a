// Checks of an incoming PrepareRequest, before any device is touched.
//
// Two layers: ValidatePrepareRequest bounds the request's shape (sizes,
// ids, enums) and fails the call as a whole; CheckPrepareDevices looks at
// each device against this host's inventory and leases and gives one
// verdict per device, so the source can tell the operator exactly which
// device was refused and why. Both only read: GET of the device state is
// the one device call made.
#ifndef VFIOMIG_DAEMON_MIGRATION_DESTINATION_REQUEST_H_
#define VFIOMIG_DAEMON_MIGRATION_DESTINATION_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "daemon/core/planner.h"
#include "daemon/inventory.h"
#include "daemon/migration/destination_options.h"
#include "daemon/migration/device_leases.h"
#include "daemon/stream/header.h"
#include "vfiomig/v1/peer.pb.h"

namespace vfiomig {

// Migration ids end up in log lines, lease owners and stream headers.
inline constexpr size_t kMaxMigrationIdLength = 128;
inline constexpr size_t kMaxHostLength = 255;

// OK for 1..kMaxMigrationIdLength characters of [A-Za-z0-9._:-]; UUIDs and
// "m-1712345678-3" fit.
absl::Status ValidateMigrationId(std::string_view id);

// InvalidArgument naming the first problem: migration id, source host
// (1..kMaxHostLength printable ASCII), 1..kMaxDevicesPerRequest devices,
// plausible device ids, a header on every device, known policy, deadlines
// of at most kMaxArcTimeoutMs.
absl::Status ValidatePrepareRequest(const v1::PrepareRequest& request);

// A device that passed CheckPrepareDevices.
struct PreparedTarget {
  std::string source_device_id;
  std::string target_device_id;
  std::shared_ptr<Device> device;
  // The prepared header, decoded: the stream's HEADER frame must equal it.
  stream::StreamHeader header;
  // Bound on the stream's device bytes for the StreamReader.
  uint64_t max_stream_bytes = 0;
  PlanDevice plan;
};

struct PrepareCheck {
  // True when every device was accepted.
  bool accepted = false;
  // One per request device, in request order.
  std::vector<v1::DeviceVerdict> verdicts;
  // The accepted devices, in request order (all of them when `accepted`).
  std::vector<PreparedTarget> targets;
};

// Per device: the target exists here, is not in another migration, is
// RUNNING and migratable, is named once; its header decodes, belongs to
// this migration and source device, and CheckHeaderCompatible accepts it
// against DeviceIdentityOf(target) and DeviceStateCapacity(target).
// `request` must have passed ValidatePrepareRequest.
PrepareCheck CheckPrepareDevices(const v1::PrepareRequest& request,
                                 const Inventory& inventory,
                                 const DeviceLeases& leases,
                                 const DestinationOptions& options);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DESTINATION_REQUEST_H_
