// Backends register a factory by name; the daemon creates one by name from
// its --backend flag and never includes a backend's own headers.
//
// Registration happens in each plugin's translation unit through a static
// BackendRegistration; plugins are linked as object libraries so that the
// linker keeps those objects.
#ifndef VFIOMIG_PLUGINS_REGISTRY_H_
#define VFIOMIG_PLUGINS_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "plugins/backend.h"

namespace vfiomig {

// Validated daemon settings a backend may use.
struct BackendOptions {
  // sim: the JSON device config.
  std::string sim_config_path;
  // When non-empty, only these device ids are managed.
  std::vector<std::string> device_filter;
  // The daemon's state directory (--state-dir), for a backend that keeps
  // state across restarts (sim: persist_state).
  std::string state_dir;
};

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<DeviceBackend>>(
        const BackendOptions&)>;

class BackendRegistry {
 public:
  static void Register(std::string name, BackendFactory factory);
  // NotFound listing the registered names when `name` is unknown.
  static absl::StatusOr<std::unique_ptr<DeviceBackend>> Create(
      std::string_view name, const BackendOptions& options);
  static std::vector<std::string> Names();
};

struct BackendRegistration {
  BackendRegistration(std::string name, BackendFactory factory) {
    BackendRegistry::Register(std::move(name), std::move(factory));
  }
};

}  // namespace vfiomig

#endif  // VFIOMIG_PLUGINS_REGISTRY_H_
