// The sim backend's device configuration: a JSON file of simulated devices,
// validated at the edge so that the device code receives only sound values.
//
//   {"devices": [{"id": "gpu0", "features": ["stop_copy", "p2p"],
//                 "state_bytes": "4GiB", "drain_ms": 50}, ...]}
//
// plugins/sim/README.md documents every key. A file that breaks a rule is
// refused as a whole with InvalidArgument naming the file, the key and the
// reason ("sim.json: devices[2].drain_ms: must be a non-negative integer");
// nothing here throws.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_CONFIG_H_
#define VFIOMIG_PLUGINS_SIM_SIM_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"

namespace vfiomig::sim {

inline constexpr uint64_t kDefaultStateBytes = uint64_t{1} << 20;
// Bounds on durations: long enough to simulate a drain that hangs for the
// length of any test, short enough that a typo does not hang a host.
inline constexpr int64_t kMaxArcMillis = 24 * 60 * 60 * 1000;

// An arc that the simulated driver fails, to test the daemon's recovery.
struct FailArc {
  DeviceState from = DeviceState::RUNNING;
  DeviceState to = DeviceState::RUNNING;
  // Like a driver that breaks: the failure leaves the device in ERROR
  // rather than in `from`.
  bool to_error = false;

  friend bool operator==(const FailArc&, const FailArc&) = default;
};

// An arc that takes longer than the others (a drain that hangs in one
// wave only, say), on top of arc_latency and drain.
struct SlowArc {
  DeviceState from = DeviceState::RUNNING;
  DeviceState to = DeviceState::RUNNING;
  absl::Duration extra = absl::ZeroDuration();
};

struct SimDeviceConfig {
  std::string id;
  MigrationFeatures features;
  // Total device state. Also the capacity a resume may fill.
  uint64_t state_bytes = kDefaultStateBytes;
  // Bytes offered as initial data in PRE_COPY; 0 without pre_copy.
  uint64_t precopy_bytes = 0;
  // How fast the running device dirties its state.
  uint64_t dirty_bytes_per_s = 0;
  // Time every arc takes.
  absl::Duration arc_latency = absl::ZeroDuration();
  // Extra time on arcs into RUNNING_P2P, PRE_COPY_P2P and STOP.
  absl::Duration drain = absl::ZeroDuration();
  std::vector<FailArc> fail_arcs;
  std::vector<SlowArc> slow_arcs;
  // Origin of the device's content.
  uint64_t seed = 0;
  // Empty: the device makes up one from its size and features.
  std::string description;
};

struct SimConfig {
  std::vector<SimDeviceConfig> devices;  // in file order
  // Devices keep their FSM state and content across daemon restarts, in
  // the daemon's state directory (sim_state_file.h).
  bool persist_state = false;
};

// `source_name` (usually the path) prefixes every error message.
absl::StatusOr<SimConfig> ParseSimConfig(std::string_view json,
                                         std::string_view source_name);

// Reads and parses the file at `path`; NotFound etc. when it cannot be read.
absl::StatusOr<SimConfig> LoadSimConfig(const std::string& path);

// The seed of a device whose config sets none: stable across runs and
// distinct per id.
uint64_t DefaultSeed(std::string_view id);

// The fail_arcs notation: "RUNNING>RUNNING_P2P" or "...:error".
std::string FailArcName(const FailArc& arc);

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_CONFIG_H_
