#include "plugins/sim/sim_backend.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace vfiomig::sim {
namespace {

const BackendRegistration kRegistration("sim", &CreateSimBackend);

}  // namespace

absl::StatusOr<std::unique_ptr<SimBackend>> SimBackend::Create(
    const SimConfig& config, absl::Span<const std::string> device_filter,
    std::string_view source_name, const SimClock& clock,
    const std::string& state_dir) {
  absl::flat_hash_set<std::string_view> known;
  for (const SimDeviceConfig& d : config.devices) known.insert(d.id);
  for (const std::string& id : device_filter) {
    if (!known.contains(id)) {
      std::vector<absl::string_view> ids;
      for (const SimDeviceConfig& d : config.devices) ids.push_back(d.id);
      return absl::NotFoundError(absl::StrCat(
          "device filter names '", id, "', which ",
          absl::string_view(source_name.data(), source_name.size()),
          " does not define (it has: ",
          ids.empty() ? "no devices" : absl::StrJoin(ids, ", "), ")"));
    }
  }
  absl::flat_hash_set<std::string_view> wanted(device_filter.begin(),
                                               device_filter.end());
  std::filesystem::path dir;
  if (config.persist_state) {
    if (state_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::string_view(source_name.data(), source_name.size()),
          ": persist_state needs the daemon's state directory"));
    }
    dir = std::filesystem::path(state_dir) / "sim";
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
    }
  }
  std::vector<std::shared_ptr<SimDevice>> devices;
  for (const SimDeviceConfig& d : config.devices) {
    if (!wanted.empty() && !wanted.contains(d.id)) continue;
    SimPersistence persistence;
    if (config.persist_state) {
      persistence.file =
          std::make_shared<SimStateFile>(dir / absl::StrCat(d.id, ".json"));
      absl::StatusOr<std::optional<SimSavedState>> saved =
          persistence.file->Load(d.state_bytes);
      if (!saved.ok()) return saved.status();
      persistence.restored = *std::move(saved);
      if (persistence.restored.has_value()) {
        spdlog::info("sim {}: restored state {} from {}", d.id,
                     DeviceStateName(persistence.restored->state),
                     persistence.file->path().string());
      }
    }
    devices.push_back(SimDevice::Create(d, clock, std::move(persistence)));
  }
  return std::unique_ptr<SimBackend>(new SimBackend(std::move(devices)));
}

std::vector<std::shared_ptr<Device>> SimBackend::Devices() {
  return {devices_.begin(), devices_.end()};
}

absl::StatusOr<std::unique_ptr<DeviceBackend>> CreateSimBackend(
    const BackendOptions& options) {
  if (options.sim_config_path.empty()) {
    return absl::InvalidArgumentError(
        "the sim backend needs a device config file (sim_config_path)");
  }
  absl::StatusOr<SimConfig> config = LoadSimConfig(options.sim_config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<SimBackend>> backend = SimBackend::Create(
      *config, options.device_filter, options.sim_config_path, SimClock::Real(),
      options.state_dir);
  if (!backend.ok()) return backend.status();
  spdlog::info("sim backend: {} devices from {}",
               (*backend)->sim_devices().size(), options.sim_config_path);
  return std::unique_ptr<DeviceBackend>(*std::move(backend));
}

}  // namespace vfiomig::sim
