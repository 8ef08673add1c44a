// SimStateFile: what a simulated device keeps across the death of the
// daemon, standing in for hardware whose fd outlives the daemon.
//
// A real VFIO device is not part of the daemon: when a VMM holds the
// device fd (the daemon works on a dup of it), the daemon's SIGKILL leaves
// the device exactly where it was - in STOP, say, with the VM's state - and
// a restarted daemon finds it there. What does die with the daemon is what
// only the daemon held: the migration data fds (an open save or resume
// session; a partial resume is discarded with it). When the daemon held the
// last fd instead, the kernel closes the device and the state is lost;
// that is the sim without `persist_state`, whose devices start afresh.
//
// With `persist_state` the sim backend writes each device's FSM state and
// content (size, origin seed, the version of every changed block) to
// DIR/sim/ID.json after every arc and reset, and a device created with a
// file restores them, sessions closed. A running device's continual
// dirtying is written with its next arc: a restarted device that was
// RUNNING runs on from the content of its last arc, which is as good as any
// content a running device has.
//
// Files are replaced atomically (write, then rename), so a SIGKILL mid-write
// leaves the previous version. They are not fsynced: a power loss takes a
// real device's state with it too.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_STATE_FILE_H_
#define VFIOMIG_PLUGINS_SIM_SIM_STATE_FILE_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/core/fsm.h"

namespace vfiomig::sim {

struct SimSavedState {
  DeviceState state = DeviceState::RUNNING;
  uint64_t size = 0;
  uint64_t origin_seed = 0;
  // (block index, version) of every block whose version is not 0.
  std::vector<std::pair<uint64_t, uint64_t>> versions;
};

class SimStateFile {
 public:
  explicit SimStateFile(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const { return path_; }

  // nullopt when there is no file yet. InvalidArgument naming the file for
  // one that does not parse or breaks a bound (a size over `max_size`, a
  // block index past the end).
  absl::StatusOr<std::optional<SimSavedState>> Load(uint64_t max_size) const;
  absl::Status Save(const SimSavedState& state) const;

 private:
  std::filesystem::path path_;
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_STATE_FILE_H_
