#include "daemon/domains/domain_admission.h"

#include <cctype>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/control_service.h"
#include "daemon/core/fsm.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// libvirt allows almost any name; ours end up in log lines and messages.
constexpr size_t kMaxDomainNameLength = 256;

absl::Status ValidateDomain(const std::string& name, const std::string& uuid) {
  if (name.empty()) {
    return absl::InvalidArgumentError("domain_name is empty");
  }
  if (name.size() > kMaxDomainNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("domain_name has ", name.size(), " bytes; at most ",
                     kMaxDomainNameLength));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "domain_name contains a control character");
    }
  }
  if (uuid.size() > 36) {
    return absl::InvalidArgumentError("domain_uuid is not a UUID");
  }
  for (unsigned char c : uuid) {
    if (!(std::isxdigit(c) || c == '-')) {
      return absl::InvalidArgumentError("domain_uuid is not a UUID");
    }
  }
  return absl::OkStatus();
}

bool NamesDomain(const v1::Migration& m, const std::string& name,
                 const std::string& uuid) {
  if (m.domain().empty()) return false;
  return m.domain() == name || (!uuid.empty() && m.domain() == uuid);
}

std::string StageName(v1::DomainStage stage) {
  return stage == v1::DOMAIN_STAGE_INCOMING_MIGRATION ? "migrate" : "prepare";
}

}  // namespace

DomainAdmission::DomainAdmission(const Inventory* inventory,
                                 const DeviceLeases* leases,
                                 IncomingMigrationList incoming)
    : inventory_(inventory), leases_(leases), incoming_(std::move(incoming)) {}

absl::StatusOr<v1::AdmitDomainResponse> DomainAdmission::Admit(
    const v1::AdmitDomainRequest& request) {
  const std::string& name = request.domain_name();
  const std::string& uuid = request.domain_uuid();
  if (absl::Status s = ValidateDomain(name, uuid); !s.ok()) return s;
  if (request.stage() != v1::DOMAIN_STAGE_PREPARE &&
      request.stage() != v1::DOMAIN_STAGE_INCOMING_MIGRATION) {
    return absl::InvalidArgumentError(
        "stage must be PREPARE or "
        "INCOMING_MIGRATION");
  }
  if (request.device_ids().empty()) {
    return absl::InvalidArgumentError("device_ids is empty");
  }
  if (static_cast<size_t>(request.device_ids_size()) > kMaxDevicesPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("device_ids has ", request.device_ids_size(),
                     " entries; at most ", kMaxDevicesPerRequest));
  }
  for (const std::string& id : request.device_ids()) {
    if (absl::Status s = ValidateDeviceId(id); !s.ok()) return s;
  }

  // The domain's incoming migration, if any (outside mu_: it takes the
  // destination registry's locks).
  std::optional<v1::Migration> incoming;
  if (incoming_) {
    for (v1::Migration& m : incoming_()) {
      if (!NamesDomain(m, name, uuid)) continue;
      if (m.outcome() == v1::MIGRATION_OUTCOME_IN_PROGRESS ||
          m.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED) {
        incoming = std::move(m);
        break;
      }
    }
  }
  const bool map_through =
      incoming.has_value() &&
      request.stage() == v1::DOMAIN_STAGE_INCOMING_MIGRATION;

  v1::AdmitDomainResponse response;
  if (map_through) response.set_migration_id(incoming->id());
  std::set<std::string> seen_local;
  std::vector<std::string> locals;
  bool all_accepted = true;
  for (const std::string& id : request.device_ids()) {
    v1::DeviceAdmission& verdict = *response.add_devices();
    verdict.set_device_id(id);
    auto refuse = [&](std::string reason) {
      verdict.set_accepted(false);
      verdict.set_reason(std::move(reason));
      all_accepted = false;
    };
    std::string local = id;
    if (map_through) {
      std::vector<std::string> carried;
      bool found = false;
      for (const v1::MigrationDevice& d : incoming->devices()) {
        carried.push_back(d.source_device_id());
        if (d.source_device_id() == id) {
          local = d.target_device_id();
          found = true;
        }
      }
      if (!found) {
        refuse(absl::StrCat("not carried by incoming migration ",
                            incoming->id(), " (it carries ",
                            absl::StrJoin(carried, ", "), ")"));
        continue;
      }
    }
    verdict.set_local_device_id(local);
    const std::string which =
        local == id ? std::string("it") : absl::StrCat("its target ", local);
    if (!seen_local.insert(local).second) {
      refuse(absl::StrCat(which, " is named twice in the domain"));
      continue;
    }
    absl::StatusOr<std::shared_ptr<Device>> device = inventory_->Find(local);
    if (!device.ok()) {
      refuse(absl::StrCat(which, " is not a device this vfio-migd manages"));
      continue;
    }
    if (std::optional<std::string> holder = HolderOf(local);
        holder.has_value() && *holder != name) {
      refuse(absl::StrCat(which, " is held by domain '", *holder, "'"));
      continue;
    }
    std::optional<std::string> lease = leases_->Owner(local);
    const bool leased_for_us =
        lease.has_value() && incoming.has_value() &&
        incoming->outcome() == v1::MIGRATION_OUTCOME_IN_PROGRESS &&
        *lease == incoming->id();
    if (lease.has_value() && !leased_for_us) {
      refuse(absl::StrCat(which, " is busy in migration ", *lease));
      continue;
    }
    if (!leased_for_us) {
      absl::StatusOr<DeviceState> state = (*device)->GetState();
      if (!state.ok()) {
        refuse(absl::StrCat(
            which, ": migration state unreadable: ", state.status().message()));
        continue;
      }
      if (*state == DeviceState::ERROR) {
        refuse(absl::StrCat(which, " is in ERROR (needs a reset)"));
        continue;
      }
    }
    verdict.set_accepted(true);
    locals.push_back(local);
  }

  if (all_accepted) {
    absl::MutexLock lock(&mu_);
    // Re-checked under the lock: another domain may have won a device.
    for (const auto& [holder, held] : held_) {
      if (holder == name) continue;
      for (v1::DeviceAdmission& verdict : *response.mutable_devices()) {
        for (const std::string& d : held.devices) {
          if (d != verdict.local_device_id()) continue;
          verdict.set_accepted(false);
          verdict.set_reason(
              absl::StrCat("it is held by domain '", holder, "'"));
          all_accepted = false;
        }
      }
    }
    if (all_accepted) held_[name] = Held{uuid, locals};
  }
  response.set_admitted(all_accepted);
  if (all_accepted) {
    spdlog::info("domain {}: {} admitted {}{}", name,
                 StageName(request.stage()), absl::StrJoin(locals, ","),
                 map_through ? absl::StrCat(" (mapped by incoming migration ",
                                            incoming->id(), ")")
                             : "");
  } else {
    std::vector<std::string> reasons;
    for (const v1::DeviceAdmission& v : response.devices()) {
      if (!v.accepted()) {
        reasons.push_back(absl::StrCat(v.device_id(), ": ", v.reason()));
      }
    }
    spdlog::info("domain {}: {} refused: {}", name, StageName(request.stage()),
                 absl::StrJoin(reasons, "; "));
  }
  return response;
}

v1::ReleaseDomainResponse DomainAdmission::Release(
    const v1::ReleaseDomainRequest& request) {
  v1::ReleaseDomainResponse response;
  absl::MutexLock lock(&mu_);
  auto it = held_.find(request.domain_name());
  if (it == held_.end()) return response;
  if (!request.domain_uuid().empty() && !it->second.uuid.empty() &&
      request.domain_uuid() != it->second.uuid) {
    spdlog::warn("domain {}: release for UUID {} ignored: held for UUID {}",
                 request.domain_name(), request.domain_uuid(), it->second.uuid);
    return response;
  }
  for (const std::string& d : it->second.devices) response.add_device_ids(d);
  spdlog::info("domain {}: released {}", request.domain_name(),
               absl::StrJoin(it->second.devices, ","));
  held_.erase(it);
  return response;
}

std::optional<std::string> DomainAdmission::HolderOf(
    const std::string& device) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, held] : held_) {
    for (const std::string& d : held.devices) {
      if (d == device) return name;
    }
  }
  return std::nullopt;
}

std::optional<std::string> DomainAdmission::ConflictFor(
    const std::string& device, const std::string& domain) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, held] : held_) {
    if (!domain.empty() && (name == domain || held.uuid == domain)) continue;
    for (const std::string& d : held.devices) {
      if (d == device) {
        return absl::StrCat("held by running libvirt domain '", name, "'");
      }
    }
  }
  return std::nullopt;
}

}  // namespace vfiomig
