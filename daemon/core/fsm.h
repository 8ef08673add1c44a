// The VFIO migration v2 device FSM, as the kernel defines it.
//
// States, flags and the step function mirror include/uapi/linux/vfio.h and
// vfio_mig_get_next_state() in drivers/vfio/vfio_main.c. vfio-migd computes
// kernel paths itself (rather than asking the kernel for a multi-step
// transition) so that every single arc can get its own deadline and take its
// place in a group-wide ordering.
//
// Pure: no I/O, no threads, no allocation beyond the returned vectors.
#ifndef VFIOMIG_DAEMON_CORE_FSM_H_
#define VFIOMIG_DAEMON_CORE_FSM_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vfiomig {

// enum vfio_device_mig_state; the enumerator names are the kernel's.
enum class DeviceState : uint32_t {
  ERROR = 0,
  STOP = 1,
  RUNNING = 2,
  STOP_COPY = 3,
  RESUMING = 4,
  RUNNING_P2P = 5,
  PRE_COPY = 6,
  PRE_COPY_P2P = 7,
};

inline constexpr int kNumDeviceStates = 8;
inline constexpr std::array<DeviceState, kNumDeviceStates> kAllDeviceStates = {
    DeviceState::ERROR,     DeviceState::STOP,        DeviceState::RUNNING,
    DeviceState::STOP_COPY, DeviceState::RESUMING,    DeviceState::RUNNING_P2P,
    DeviceState::PRE_COPY,  DeviceState::PRE_COPY_P2P};

// "RUNNING_P2P" etc.; "INVALID" for out-of-range values.
std::string_view DeviceStateName(DeviceState state);
// Accepts the kernel name in any letter case, with or without the
// "VFIO_DEVICE_STATE_" prefix.
std::optional<DeviceState> ParseDeviceState(std::string_view name);
// A raw kernel value, validated.
std::optional<DeviceState> DeviceStateFromKernel(uint32_t value);

// VFIO_MIGRATION_* flags of VFIO_DEVICE_FEATURE_MIGRATION.
enum MigrationFlag : uint32_t {
  VFIO_MIGRATION_STOP_COPY = 1u << 0,
  VFIO_MIGRATION_P2P = 1u << 1,
  VFIO_MIGRATION_PRE_COPY = 1u << 2,
};
inline constexpr uint32_t kKnownMigrationFlags =
    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

// A device's migration feature set: the kernel's flags word, with helpers.
class MigrationFeatures {
 public:
  constexpr MigrationFeatures() = default;
  constexpr explicit MigrationFeatures(uint32_t flags) : flags_(flags) {}

  constexpr uint32_t flags() const { return flags_; }
  constexpr bool stop_copy() const { return flags_ & VFIO_MIGRATION_STOP_COPY; }
  constexpr bool p2p() const { return flags_ & VFIO_MIGRATION_P2P; }
  constexpr bool pre_copy() const { return flags_ & VFIO_MIGRATION_PRE_COPY; }

  // Lower-case names joined by ',': "stop_copy,p2p,pre_copy". Unknown bits
  // appear as "0x..".
  std::string ToString() const;
  // Lower-case names; "stop_copy", "p2p", "pre_copy".
  std::vector<std::string> Names() const;
  // Parses "stop_copy,p2p" (any case, also upper-case kernel-style names).
  static absl::StatusOr<MigrationFeatures> Parse(std::string_view text);

  friend constexpr bool operator==(MigrationFeatures a, MigrationFeatures b) {
    return a.flags_ == b.flags_;
  }

 private:
  uint32_t flags_ = 0;
};

// True when a device with `features` can be in `state` at all (the kernel's
// state_flags_table). ERROR is never supported as a place to go.
bool StateSupported(MigrationFeatures features, DeviceState state);

// The next arc from `cur` toward `target`, exactly as the kernel's
// vfio_mig_get_next_state() computes it: states the device lacks are
// skipped, a target the device lacks is refused, ERROR is never a valid
// target, a device in ERROR has no path (only VFIO_DEVICE_RESET leaves it),
// and blocked arcs (STOP_COPY -> PRE_COPY[_P2P]) are refused. Returns `cur`
// when cur == target.
absl::StatusOr<DeviceState> NextState(MigrationFeatures features,
                                      DeviceState cur, DeviceState target);

// The whole kernel path, `from` first and `to` last; {from} when equal.
absl::StatusOr<std::vector<DeviceState>> StatePath(MigrationFeatures features,
                                                   DeviceState from,
                                                   DeviceState to);

// True when `from` -> `to` is one arc the kernel would ask the driver for.
bool IsSingleArc(MigrationFeatures features, DeviceState from, DeviceState to);

// Arcs into RUNNING_P2P, PRE_COPY_P2P and STOP wait for the device to drain
// in-flight work (DMA, page requests) and may take unbounded time.
bool IsDrainArc(DeviceState from, DeviceState to);

// Arcs on which VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE returns a new data_fd.
enum class DataSessionKind { kNone, kSave, kResume };
DataSessionKind ArcOpensDataSession(DeviceState from, DeviceState to);

// "RUNNING_P2P>STOP", the notation of sim fail_arcs and logs.
std::string ArcName(DeviceState from, DeviceState to);

// Renders a path as kernel names separated by single spaces.
std::string PathToString(const std::vector<DeviceState>& path);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CORE_FSM_H_
