// SimBackend: the "sim" DeviceBackend, serving SimDevices from a config.
//
// The daemon creates it through the registry (registry.h) as "sim" with
// BackendOptions::sim_config_path (required) and an optional device_filter;
// tests may build one directly from a SimConfig and a fake clock. Devices
// keep the config's order; a filter keeps that order too, and an id in the
// filter that the config lacks is an error naming it.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_BACKEND_H_
#define VFIOMIG_PLUGINS_SIM_SIM_BACKEND_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "plugins/backend.h"
#include "plugins/registry.h"
#include "plugins/sim/sim_config.h"
#include "plugins/sim/sim_device.h"

namespace vfiomig::sim {

class SimBackend final : public DeviceBackend {
 public:
  // `source_name` names the config in errors (usually its path). With
  // config.persist_state, devices keep their state in `state_dir`/sim
  // (required then) and restore it from there.
  static absl::StatusOr<std::unique_ptr<SimBackend>> Create(
      const SimConfig& config, absl::Span<const std::string> device_filter,
      std::string_view source_name, const SimClock& clock = SimClock::Real(),
      const std::string& state_dir = "");

  std::string_view name() const override { return "sim"; }
  std::vector<std::shared_ptr<Device>> Devices() override;

  // The devices with their sim-specific interface, same order.
  const std::vector<std::shared_ptr<SimDevice>>& sim_devices() const {
    return devices_;
  }

 private:
  explicit SimBackend(std::vector<std::shared_ptr<SimDevice>> devices)
      : devices_(std::move(devices)) {}

  const std::vector<std::shared_ptr<SimDevice>> devices_;
};

// The registered factory: loads options.sim_config_path.
absl::StatusOr<std::unique_ptr<DeviceBackend>> CreateSimBackend(
    const BackendOptions& options);

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_BACKEND_H_
