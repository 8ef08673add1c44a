// VfioBackend: the "vfio" DeviceBackend, serving the host's kernel VFIO
// devices.
//
// At Create it discovers devices in sysfs (sysfs_discovery.h), keeps those
// the device filter selects (all usable ones when the filter is empty),
// opens each through VfioAccess (one container or iommufd for the daemon)
// and probes its capabilities. A selected device that fails to open is
// still managed and listed, not migratable, with the error; a filter id
// that is not a usable VFIO device fails Create with the reason. Everything
// else found on the host is reported by HostDevices() with its reason.
//
// The daemon creates it through the registry as "vfio"; tests build one
// over a fake sysfs tree with Create(roots, filter).
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_BACKEND_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "plugins/backend.h"
#include "plugins/vfio/sysfs_discovery.h"
#include "plugins/vfio/vfio_access.h"
#include "plugins/vfio/vfio_device.h"

namespace vfiomig::vfio {

class VfioBackend final : public DeviceBackend {
 public:
  static absl::StatusOr<std::unique_ptr<VfioBackend>> Create(
      const HostRoots& roots, absl::Span<const std::string> device_filter);

  std::string_view name() const override { return "vfio"; }
  std::vector<std::shared_ptr<Device>> Devices() override;
  std::vector<HostDevice> HostDevices() override { return host_devices_; }

 private:
  VfioBackend() = default;

  // Declared first: devices hold fds of groups it keeps open, and are
  // destroyed (closing them) before it.
  VfioAccess access_;
  std::vector<std::shared_ptr<VfioDevice>> devices_;
  std::vector<HostDevice> host_devices_;
};

// HostDevice of a device the backend does not manage, with `reason`.
HostDevice ToHostDevice(const DiscoveredDevice& found, std::string reason);

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_BACKEND_H_
