// libFuzzer target: sim backend config files (JSON) into ParseSimConfig.
//
// The parser must refuse bad input with a status, never throw (nlohmann
// throws on its own; the parser must contain that), crash or accept
// something the device code cannot use. Traps when an accepted config
// breaks what sim_config.h promises the device code:
//   - every device has a non-empty, unique id;
//   - pre-copy bytes only with PRE_COPY, never more than the state;
//   - durations are within 0..kMaxArcMillis.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "plugins/sim/sim_config.h"

namespace {

namespace sim = vfiomig::sim;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sim::SimConfig> config = sim::ParseSimConfig(json, "fuzz");
  if (!config.ok()) {
    Check(!config.status().message().empty());
    return 0;
  }
  std::set<std::string> ids;
  const absl::Duration max = absl::Milliseconds(sim::kMaxArcMillis);
  for (const sim::SimDeviceConfig& device : config->devices) {
    Check(!device.id.empty());
    Check(ids.insert(device.id).second);
    Check(device.precopy_bytes == 0 || device.features.pre_copy());
    Check(device.precopy_bytes <= device.state_bytes);
    Check(device.arc_latency >= absl::ZeroDuration() &&
          device.arc_latency <= max);
    Check(device.drain >= absl::ZeroDuration() && device.drain <= max);
  }
  return 0;
}
