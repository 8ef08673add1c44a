#include "daemon/migration/destination_request.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/control_service.h"
#include "daemon/migration/device_identity.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/stream/header.h"

namespace vfiomig {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

bool IsPrintable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The bound on a stream's device bytes: pre-copy may resend dirtied data,
// so a multiple of what the target holds.
uint64_t StreamLimit(uint64_t capacity, const DestinationOptions& options) {
  if (capacity == kUnknownCapacity) {
    return options.unknown_capacity_stream_limit;
  }
  const uint64_t factor =
      options.stream_capacity_factor == 0 ? 1 : options.stream_capacity_factor;
  if (capacity > UINT64_MAX / factor) return UINT64_MAX;
  return capacity * factor;
}

// Reasons `device`'s header cannot be used, apart from device compatibility.
// Sets *decoded when the header could be decoded at all.
std::vector<std::string> HeaderProblems(const v1::PrepareRequest& request,
                                        const v1::PeerDevice& device,
                                        stream::StreamHeader* header,
                                        bool* decoded_ok) {
  *decoded_ok = false;
  std::vector<std::string> reasons;
  // The header goes through the same decoder as the HEADER frame later, so
  // both are validated alike and compare as plain structs.
  std::string bytes;
  if (!device.header().SerializeToString(&bytes)) {
    return {"header cannot be serialised"};
  }
  absl::StatusOr<stream::StreamHeader> decoded =
      stream::DecodeHeaderPayload(absl::Span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (!decoded.ok()) {
    return {absl::StrCat("invalid header: ", decoded.status().message())};
  }
  *header = *std::move(decoded);
  *decoded_ok = true;
  if (header->migration_id != request.migration_id()) {
    reasons.push_back(absl::StrCat("header is for migration '",
                                   header->migration_id, "', not '",
                                   request.migration_id(), "'"));
  }
  if (header->source_host != request.source_host()) {
    reasons.push_back(absl::StrCat("header is from host '", header->source_host,
                                   "', not '", request.source_host(), "'"));
  }
  if (header->device.device_id != device.source_device_id()) {
    reasons.push_back(absl::StrCat("header describes source device '",
                                   header->device.device_id, "', not '",
                                   device.source_device_id(), "'"));
  }
  return reasons;
}

}  // namespace

absl::Status ValidateMigrationId(std::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("migration_id is empty");
  if (id.size() > kMaxMigrationIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration_id is ", id.size(), " bytes; at most ",
                     kMaxMigrationIdLength, " are accepted"));
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return absl::InvalidArgumentError(
          "migration_id may contain only letters, digits and . _ : -");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePrepareRequest(const v1::PrepareRequest& request) {
  if (absl::Status s = ValidateMigrationId(request.migration_id()); !s.ok()) {
    return s;
  }
  const std::string& host = request.source_host();
  if (host.empty() || host.size() > kMaxHostLength || !IsPrintable(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "source_host must be 1..", kMaxHostLength, " printable characters"));
  }
  if (request.devices().empty()) {
    return absl::InvalidArgumentError("devices is empty");
  }
  if (static_cast<size_t>(request.devices_size()) > kMaxDevicesPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("devices has ", request.devices_size(),
                     " entries; at most ", kMaxDevicesPerRequest));
  }
  for (int i = 0; i < request.devices_size(); ++i) {
    const v1::PeerDevice& device = request.devices(i);
    for (const std::string* id :
         {&device.source_device_id(), &device.target_device_id()}) {
      if (absl::Status s = ValidateDeviceId(*id); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("devices[", i, "]: ", s.message()));
      }
    }
    if (device.drain_timeout_ms() > kMaxArcTimeoutMs ||
        device.arc_timeout_ms() > kMaxArcTimeoutMs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "devices[", i, "]: deadlines above ", kMaxArcTimeoutMs, " ms"));
    }
    if (!device.has_header()) {
      return absl::InvalidArgumentError(absl::StrCat("devices[", i, "] (",
                                                     device.target_device_id(),
                                                     "): no stream header"));
    }
  }
  if (!v1::DeadlinePolicy_IsValid(request.policy())) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown deadline policy ", request.policy()));
  }
  // The source's deadlines bound how long a hung arc holds a device here:
  // the same bound as a StartMigration request's.
  if (request.drain_timeout_ms() > kMaxArcTimeoutMs ||
      request.arc_timeout_ms() > kMaxArcTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("drain_timeout_ms and arc_timeout_ms must be at most ",
                     kMaxArcTimeoutMs, " (24 h)"));
  }
  return ValidateWorkload(request.workload());
}

PrepareCheck CheckPrepareDevices(const v1::PrepareRequest& request,
                                 const Inventory& inventory,
                                 const DeviceLeases& leases,
                                 const DestinationOptions& options) {
  PrepareCheck check;
  check.accepted = true;
  // target id -> first index naming it.
  std::map<std::string, int> first_use;
  for (int i = 0; i < request.devices_size(); ++i) {
    const v1::PeerDevice& device = request.devices(i);
    const std::string& target_id = device.target_device_id();
    std::vector<std::string> reasons;
    PreparedTarget target;
    target.source_device_id = device.source_device_id();
    target.target_device_id = target_id;

    auto [it, inserted] = first_use.emplace(target_id, i);
    if (!inserted) {
      reasons.push_back(absl::StrCat("named twice (devices[", it->second,
                                     "] and devices[", i, "])"));
    }
    bool header_decoded = false;
    std::vector<std::string> header_reasons =
        HeaderProblems(request, device, &target.header, &header_decoded);
    reasons.insert(reasons.end(), header_reasons.begin(), header_reasons.end());

    absl::StatusOr<std::shared_ptr<Device>> found = inventory.Find(target_id);
    if (!found.ok()) {
      reasons.push_back(
          absl::StrCat("no device '", target_id, "' on this host"));
    } else {
      target.device = *found;
      if (std::optional<std::string> owner = leases.Owner(target_id)) {
        reasons.push_back(absl::StrCat("busy: in migration ", *owner));
      }
      const DeviceSnapshot snapshot =
          Inventory::Snapshot(**found, {.stop_copy_size = false});
      target.plan = Inventory::ToPlanDevice(snapshot);
      if (!snapshot.migratable()) {
        reasons.push_back(
            absl::StrCat("not migratable: ", snapshot.not_migratable_reason()));
      } else if (*snapshot.state != DeviceState::RUNNING) {
        reasons.push_back(
            absl::StrCat("is ", std::string(DeviceStateName(*snapshot.state)),
                         ", not RUNNING"));
      }
      // Only a header that decoded can be compared.
      if (header_decoded) {
        const uint64_t capacity = DeviceStateCapacity(snapshot.info);
        for (std::string& r : stream::HeaderIncompatibilities(
                 target.header, DeviceIdentityOf(snapshot.info), capacity)) {
          reasons.push_back(std::move(r));
        }
        target.max_stream_bytes = StreamLimit(capacity, options);
      }
    }

    v1::DeviceVerdict& verdict = check.verdicts.emplace_back();
    verdict.set_target_device_id(target_id);
    verdict.set_accepted(reasons.empty());
    verdict.set_reason(absl::StrJoin(reasons, "; "));
    if (reasons.empty()) {
      check.targets.push_back(std::move(target));
    } else {
      check.accepted = false;
    }
  }
  return check;
}

}  // namespace vfiomig
