#include "plugins/vfio/vfio_backend.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugins/registry.h"
#include "spdlog/spdlog.h"

namespace vfiomig::vfio {
namespace {

absl::StatusOr<std::unique_ptr<DeviceBackend>> CreateVfioBackend(
    const BackendOptions& options) {
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(HostRoots{}, options.device_filter);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<DeviceBackend>(*std::move(backend));
}

const BackendRegistration kRegistration("vfio", &CreateVfioBackend);

}  // namespace

HostDevice ToHostDevice(const DiscoveredDevice& found, std::string reason) {
  HostDevice host;
  host.id = found.id;
  host.driver = found.driver;
  host.description = found.Description();
  host.reason = std::move(reason);
  host.pci_vendor_id = found.vendor_id;
  host.pci_device_id = found.device_id;
  host.iommu_group = found.iommu_group;
  return host;
}

absl::StatusOr<std::unique_ptr<VfioBackend>> VfioBackend::Create(
    const HostRoots& roots, absl::Span<const std::string> device_filter) {
  absl::StatusOr<Discovery> found = Discover(roots);
  if (!found.ok()) return found.status();

  // A filter id must name a usable VFIO device; say why when it does not.
  absl::flat_hash_map<std::string, const DiscoveredDevice*> usable;
  absl::flat_hash_map<std::string, const DiscoveredDevice*> unusable;
  for (const DiscoveredDevice& d : found->usable) usable[d.id] = &d;
  for (const DiscoveredDevice& d : found->unusable) unusable[d.id] = &d;
  std::vector<std::string> errors;
  for (const std::string& id : device_filter) {
    if (usable.contains(id)) continue;
    auto it = unusable.find(id);
    errors.push_back(it == unusable.end()
                         ? absl::StrCat("no device '", id, "' on this host")
                         : absl::StrCat("'", id, "' is not usable: ",
                                        it->second->unusable_reason));
  }
  if (!errors.empty()) {
    return absl::NotFoundError(
        absl::StrCat("--devices: ", absl::StrJoin(errors, "; ")));
  }

  absl::flat_hash_set<std::string> wanted(device_filter.begin(),
                                          device_filter.end());
  std::unique_ptr<VfioBackend> backend(new VfioBackend());
  for (const DiscoveredDevice& d : found->usable) {
    if (!wanted.empty() && !wanted.contains(d.id)) {
      backend->host_devices_.push_back(ToHostDevice(
          d, "a usable VFIO device, not selected by this daemon's --devices"));
      continue;
    }
    absl::StatusOr<VfioDeviceFd> fd = backend->access_.Open(d);
    if (!fd.ok()) {
      spdlog::warn("vfio: device {}: {}", d.id,
                   std::string(fd.status().message()));
    }
    backend->devices_.push_back(VfioDevice::Create(d, std::move(fd)));
  }
  for (const DiscoveredDevice& d : found->unusable) {
    backend->host_devices_.push_back(ToHostDevice(d, d.unusable_reason));
  }
  if (backend->devices_.empty()) {
    spdlog::info(
        "vfio: found no VFIO devices in {} ({} other host devices, none "
        "bound to vfio-pci, a VFIO variant driver or an mdev driver); "
        "`vfio-migctl devices --all` lists them with the reason each is "
        "not usable",
        roots.sys.string(), backend->host_devices_.size());
  } else {
    spdlog::info("vfio: {} VFIO devices, {} other host devices",
                 backend->devices_.size(), backend->host_devices_.size());
  }
  for (const HostDevice& host : backend->host_devices_) {
    spdlog::debug("vfio: host device {} ({}{}): {}", host.id, host.description,
                  host.driver.empty() ? "" : ", driver " + host.driver,
                  host.reason);
  }
  return backend;
}

std::vector<std::shared_ptr<Device>> VfioBackend::Devices() {
  return {devices_.begin(), devices_.end()};
}

}  // namespace vfiomig::vfio
