// SimDevice: a simulated VFIO migration device, behaving as the kernel's
// drivers do (modelled on mtty, samples/vfio-mdev/mtty.c).
//
//  - It enforces the kernel FSM: SetState accepts exactly the single kernel
//    arcs from the current state (IsSingleArc) and refuses anything else
//    with InvalidArgument, leaving the state unchanged, like -EINVAL. Unlike
//    the kernel, SET to the current state is refused too: the daemon's
//    contract is one arc per call. From ERROR only Reset() helps.
//  - Each arc takes arc_latency (+ drain on drain arcs); the wait holds no
//    lock that GetState, ContentDigest or a data session need.
//  - Content is versioned blocks of deterministic bytes (sim_content.h);
//    a running device dirties them at dirty_bytes_per_s, applied lazily from
//    the injected clock.
//  - RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P and STOP -> STOP_COPY
//    open a save session; PRE_COPY_P2P -> STOP_COPY keeps it. In pre-copy a
//    Read returning 0 means "nothing more for now"; in STOP_COPY it means
//    end of stream. STOP -> RESUMING opens a resume session; RESUMING ->
//    STOP succeeds only once a complete stream arrived, and then the
//    received content replaces the device's.
//  - fail_arcs make chosen arcs fail, leaving the device in the arc's source
//    state or (":error") in ERROR.
//  - Reset() (VFIO_DEVICE_RESET) returns the device to RUNNING with its
//    power-on content (seed and state_bytes of its config): whatever state
//    it held, its own or received, is gone, as on hardware.
//  - With a state file (sim_state_file.h) the FSM state and content are
//    written after every arc and reset and restored on creation, the way a
//    device whose fd a VMM holds outlives the daemon; sessions are not.
//
// Thread-safe: every method, and every method of the sessions it returns,
// may be called from any thread. A session keeps its device alive and fails
// cleanly with FailedPrecondition once the device left the session's states.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_DEVICE_H_
#define VFIOMIG_PLUGINS_SIM_SIM_DEVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugins/backend.h"
#include "plugins/sim/sim_config.h"
#include "plugins/sim/sim_content.h"
#include "plugins/sim/sim_state_file.h"

namespace vfiomig::sim {

// Time as the sim sees it; tests inject a fake one so that dirtying and
// latencies are deterministic.
struct SimClock {
  std::function<absl::Time()> now;
  std::function<void(absl::Duration)> sleep;

  static SimClock Real();
};

// Where a device keeps its state across daemon restarts, and what it
// restores at creation.
struct SimPersistence {
  std::shared_ptr<const SimStateFile> file;
  // Validated against the config (SimStateFile::Load's max_size).
  std::optional<SimSavedState> restored;
};

class SimDevice final : public Device,
                        public std::enable_shared_from_this<SimDevice> {
 public:
  // `config` must be valid as ParseSimConfig would accept it.
  static std::shared_ptr<SimDevice> Create(SimDeviceConfig config,
                                           SimClock clock = SimClock::Real(),
                                           SimPersistence persistence = {});
  ~SimDevice() override;

  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<DeviceState> GetState() override;
  absl::StatusOr<std::unique_ptr<DataSession>> SetState(
      DeviceState next) override;
  absl::StatusOr<uint64_t> StopCopySize() override;
  absl::Status Reset() override;
  // 16 hex digits; equal for byte-identical content whatever the seeds.
  absl::StatusOr<std::string> ContentDigest() override;

  const SimDeviceConfig& config() const { return config_; }
  // The size of the current content: state_bytes until a resume brings
  // another size.
  uint64_t content_size();

 private:
  class SaveHandle;
  class ResumeHandle;
  struct SaveSession;
  struct ResumeSession;

  SimDevice(SimDeviceConfig config, SimClock clock, SimPersistence persistence);

  // Writes the state file, if any. Logged on failure: the device itself is
  // fine, only its stand-in for surviving the daemon is behind.
  void PersistLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The data session methods, for the handles; `session` tells a current
  // session from one that has ended.
  absl::StatusOr<size_t> SaveRead(uint64_t session, absl::Span<uint8_t> buf);
  absl::StatusOr<PrecopyInfo> SavePrecopyInfo(uint64_t session);
  absl::Status ResumeWrite(uint64_t session, absl::Span<const uint8_t> data);

  // Applies the dirtying the device did since the last call.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckArcLocked(DeviceState next) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes an arc whose wait is over: injected failures, the resume
  // commit, sessions.
  absl::StatusOr<std::unique_ptr<DataSession>> FinishArcLocked(DeviceState from,
                                                               DeviceState next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StartRecordLocked(SaveSession& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishRecordLocked(SaveSession& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ClosedLocked(absl::string_view what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SimDeviceConfig config_;
  const SimClock clock_;
  const DeviceInfo info_;
  const std::shared_ptr<const SimStateFile> state_file_;

  // Serialises arcs and resets; held across an arc's wait. Taken before
  // mu_, never while holding it.
  absl::Mutex arc_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Everything else; never held across a wait.
  mutable absl::Mutex mu_;
  DeviceState state_ ABSL_GUARDED_BY(mu_) = DeviceState::RUNNING;
  SimContent content_ ABSL_GUARDED_BY(mu_);
  // Bumped when a resume replaces content_, so that a hash computed from an
  // older content is not cached into the new one.
  uint64_t content_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_advance_ ABSL_GUARDED_BY(mu_);
  double dirty_credit_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rng_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::unique_ptr<SaveSession> save_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ResumeSession> resume_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_DEVICE_H_
