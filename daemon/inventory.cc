#include "daemon/inventory.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vfiomig {
namespace {

// "'a', 'b'": quoted so that odd ids stay readable in messages.
std::string QuoteJoin(absl::Span<const std::string> ids) {
  return absl::StrJoin(ids, ", ", [](std::string* out, const std::string& id) {
    absl::StrAppend(out, "'", id, "'");
  });
}

}  // namespace

bool DeviceSnapshot::migratable() const {
  return info.migratable && state.ok();
}

std::string DeviceSnapshot::not_migratable_reason() const {
  if (!info.migratable) return info.not_migratable_reason;
  if (!state.ok()) {
    return absl::StrCat("cannot read the migration state: ",
                        state.status().message());
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Inventory>> Inventory::Create(
    std::unique_ptr<DeviceBackend> backend,
    absl::Span<const std::string> device_filter) {
  if (backend == nullptr) {
    return absl::InvalidArgumentError("no device backend");
  }
  absl::flat_hash_set<std::string_view> wanted(device_filter.begin(),
                                               device_filter.end());
  std::vector<std::shared_ptr<Device>> devices;
  absl::flat_hash_set<std::string> seen;
  for (std::shared_ptr<Device>& device : backend->Devices()) {
    const std::string& id = device->info().id;
    if (id.empty()) {
      return absl::InternalError(absl::StrCat("backend ",
                                              std::string(backend->name()),
                                              " has a device without id"));
    }
    if (!seen.insert(id).second) {
      return absl::InternalError(
          absl::StrCat("backend ", std::string(backend->name()),
                       " has two devices with id '", id, "'"));
    }
    if (wanted.empty() || wanted.contains(id)) {
      devices.push_back(std::move(device));
    }
  }
  std::vector<std::string> missing;
  for (const std::string& id : device_filter) {
    if (!seen.contains(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    return absl::NotFoundError(
        absl::StrCat("backend ", std::string(backend->name()),
                     " has no device ", QuoteJoin(missing)));
  }
  return std::unique_ptr<Inventory>(
      new Inventory(std::move(backend), std::move(devices)));
}

Inventory::Inventory(std::unique_ptr<DeviceBackend> backend,
                     std::vector<std::shared_ptr<Device>> devices)
    : backend_(std::move(backend)), devices_(std::move(devices)) {
  for (size_t i = 0; i < devices_.size(); ++i) {
    index_.emplace(devices_[i]->info().id, i);
  }
}

absl::StatusOr<std::shared_ptr<Device>> Inventory::Find(
    std::string_view id) const {
  auto it = index_.find(id);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no device '", std::string(id), "'"));
  }
  return devices_[it->second];
}

absl::StatusOr<std::vector<std::shared_ptr<Device>>> Inventory::FindAll(
    absl::Span<const std::string> ids) const {
  std::vector<std::shared_ptr<Device>> found;
  std::vector<std::string> missing;
  for (const std::string& id : ids) {
    auto it = index_.find(id);
    if (it == index_.end()) {
      missing.push_back(id);
    } else {
      found.push_back(devices_[it->second]);
    }
  }
  if (!missing.empty()) {
    return absl::NotFoundError(
        absl::StrCat(missing.size() == 1 ? "no device " : "no devices ",
                     QuoteJoin(missing)));
  }
  return found;
}

DeviceSnapshot Inventory::Snapshot(Device& device,
                                   const SnapshotOptions& options) {
  DeviceSnapshot snapshot;
  snapshot.info = device.info();
  snapshot.state = device.GetState();
  // The size estimate and the digest are optional extras: a device that
  // cannot report them is still usable, so their errors are dropped.
  if (options.stop_copy_size) {
    if (absl::StatusOr<uint64_t> size = device.StopCopySize(); size.ok()) {
      snapshot.stop_copy_bytes = *size;
    }
  }
  if (options.digest) {
    if (absl::StatusOr<std::string> digest = device.ContentDigest();
        digest.ok()) {
      snapshot.digest = *std::move(digest);
    }
  }
  return snapshot;
}

absl::StatusOr<std::vector<PlanDevice>> Inventory::PlanDevices(
    absl::Span<const std::string> ids) const {
  absl::StatusOr<std::vector<std::shared_ptr<Device>>> devices = FindAll(ids);
  if (!devices.ok()) return devices.status();
  std::vector<PlanDevice> plan_devices;
  plan_devices.reserve(devices->size());
  for (const std::shared_ptr<Device>& device : *devices) {
    plan_devices.push_back(
        ToPlanDevice(Snapshot(*device, {.stop_copy_size = false})));
  }
  return plan_devices;
}

PlanDevice Inventory::ToPlanDevice(const DeviceSnapshot& snapshot) {
  PlanDevice plan_device;
  plan_device.id = snapshot.info.id;
  plan_device.features = snapshot.info.features;
  // An unreadable state is reported through `migratable`; ERROR keeps the
  // planner from ever building a path from a state we do not know.
  plan_device.state = snapshot.state.value_or(DeviceState::ERROR);
  plan_device.migratable = snapshot.migratable();
  plan_device.not_migratable_reason = snapshot.not_migratable_reason();
  return plan_device;
}

}  // namespace vfiomig
