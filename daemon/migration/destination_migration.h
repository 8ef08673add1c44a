// DestinationMigration: one incoming migration on the destination daemon.
//
// Life (daemon/migration/PROTOCOL.md): Prepare() runs the destination
// waves up to RESUMING and keeps each device's resume data session; one
// IncomingStream per device then writes the device's state into it; the
// last stream's END starts RESUMING -> STOP (Preload), and Load() waits for
// it (or runs it) and records, durably, that the destination holds
// the state (in doubt from then on: no orphan timeout, and a restart keeps
// waiting); Commit() records the commit and runs STOP -> RUNNING_P2P ->
// RUNNING, never rolling back after that record; Abort() rolls every
// device back to RUNNING before it. Whatever ends the migration (commit,
// failed wave, broken stream, abort, orphan timeout) releases the device
// lease and calls the `on_finished` callback once. Each stage is written to
// the journal before anyone is told about it.
//
// Rolling back discards what was received: devices still in RESUMING, and
// once loading began also those in STOP, are reset (VFIO_DEVICE_RESET, which
// also returns them to RUNNING) rather than walked on, which would load or
// run state that is not theirs. The rest is the
// executor's (TransitionExecutor::Rollback: reverse arcs group-ordered, reset
// for devices in ERROR or stuck after a failed arc); a device still not
// RUNNING after that is reset here as a last resort. Resets are reported
// (DeviceStatus.was_reset). A freshly reset destination device issues no
// DMA (no guest driver runs it yet), so resetting ignores the P2P order.
//
// Thread-safety: Prepare, Commit and Abort serialise on one mutex (they
// drive the executor, which wants one calling thread); stream progress and
// the record shown to the control API take a second, short-held one. Lock
// order: op_mu_, then mu_.
#ifndef VFIOMIG_DAEMON_MIGRATION_DESTINATION_MIGRATION_H_
#define VFIOMIG_DAEMON_MIGRATION_DESTINATION_MIGRATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/planner.h"
#include "daemon/engine/transition_executor.h"
#include "daemon/migration/destination_request.h"
#include "daemon/migration/destination_stream.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_journal.h"
#include "daemon/migration/switchover.h"
#include "daemon/stream/format.h"
#include "vfiomig/v1/control.pb.h"
#include "vfiomig/v1/peer.pb.h"

namespace vfiomig {

struct DestinationSettings {
  std::string id;
  std::string source_host;
  ArcDeadlines deadlines;
  DeadlinePolicy policy = DeadlinePolicy::kSla;
  absl::Duration abort_timeout = absl::Seconds(30);
  // The workload's libvirt domain (Workload.domain), may be empty.
  std::string domain;
  // Checked at Load (before the commit point: CheckStart) and starts the
  // workload here once every device is RUNNING (Commit); null for none.
  // `switchover_context` is what it gets.
  std::shared_ptr<SwitchoverAction> switchover;
  SwitchoverContext switchover_context;
  // Null: nothing recorded (unit tests of other concerns).
  Journal* journal = nullptr;
  // 0: now. A recovered migration keeps its original start.
  int64_t started_unix_ms = 0;
  // Created by crash recovery: Recover() will run (Commit and Abort wait
  // for it).
  bool recovering = false;
};

// The destination side's SwitchoverContext for migration `id` from
// `source_host` of `workload` to the devices `targets` (group order).
SwitchoverContext DestinationSwitchoverContext(
    const std::string& id, const std::string& source_host,
    const v1::Workload& workload, std::vector<std::string> targets);

class DestinationMigration
    : public std::enable_shared_from_this<DestinationMigration>,
      private ExecutorObserver {
 public:
  using FinishedCallback = std::function<void(const std::string& id)>;

  // `waves` is PlanDestination's destination side for the targets; `lease`
  // holds every target.
  DestinationMigration(DestinationSettings settings,
                       std::vector<PreparedTarget> targets,
                       std::vector<Wave> waves, Lease lease,
                       FinishedCallback on_finished);
  ~DestinationMigration() override;

  DestinationMigration(const DestinationMigration&) = delete;
  DestinationMigration& operator=(const DestinationMigration&) = delete;

  const std::string& id() const { return settings_.id; }

  // Runs the waves up to and including RESUMING. On failure the devices
  // are rolled back, the migration is finished, and the error names the
  // device and arc (with the rollback's outcome). Call once.
  absl::Status Prepare();

  // See DestinationRegistry::OpenStream.
  absl::StatusOr<std::unique_ptr<IncomingStream>> OpenStream(
      const std::string& target_device_id);

  // See DestinationRegistry::Load.
  absl::StatusOr<v1::LoadResponse> Load();

  // See DestinationRegistry::Commit.
  absl::StatusOr<v1::CommitResponse> Commit();

  // Rolls back unless finished or committed; returns every device's state.
  v1::AbortResponse Abort(const std::string& reason);

  // Crash recovery: continues a migration the journal has at `stage`
  // (kStarted, kLoaded or kCommitted) after a restart of this daemon.
  // `record` is the journal's last record of it. Until it returns, Commit
  // and Abort wait for it. kStarted: resets every device not RUNNING and
  // finishes FAILED. kLoaded: waits for the source's verdict if every
  // device is still in STOP, else (the state is lost) resets them and
  // finishes FAILED. kCommitted: walks every device to RUNNING and
  // finishes.
  void Recover(JournalStage stage, const v1::Migration& record);

  // Aborts when no stream is open, no operation runs, and nothing happened
  // for abort_timeout up to `now`. True when it aborted.
  bool AbortIfOrphaned(absl::Time now);

  bool finished() const;
  // The control API's view (role "destination").
  v1::Migration ToProto() const;

  // --- For IncomingStream (any thread) -----------------------------------
  // OK while the device's stream may write; Aborted once the migration is
  // no longer receiving. Counts as activity.
  absl::Status CheckReceiving(size_t device) const;
  void OnStreamProgress(size_t device, const stream::StreamTotals& totals,
                        uint64_t frames);
  void OnStreamEnded(size_t device, const stream::StreamTotals& totals,
                     uint64_t frames);
  // The stream failed: abort the migration (unless already finished).
  void OnStreamFailed(size_t device, const absl::Status& error);
  // The stream object is gone (finished, failed or dropped).
  void OnStreamClosed(size_t device);

 private:
  enum class Stage {
    kRecovering,  // Recover() has not decided yet
    kPreparing,
    kReceiving,
    kLoading,
    kLoaded,  // in doubt: waits for the source's Commit or Abort
    kCommitting,
    kRollingBack,
    kDone
  };
  enum class StreamState { kNone, kOpen, kEnded, kFailed };

  struct DeviceRecord {
    PreparedTarget target;
    // Last known state.
    DeviceState state = DeviceState::RUNNING;
    std::shared_ptr<DataSession> session;
    StreamState stream = StreamState::kNone;
    stream::StreamTotals received;
    uint64_t frames = 0;
    bool was_reset = false;
    std::string error;
  };

  // ExecutorObserver, called on the op thread.
  void OnArcFinished(const ArcResult& result) override;
  void OnArcLate(const PlannedArc& arc, absl::Duration elapsed,
                 absl::Duration deadline) override;
  void OnDeviceReset(const std::string& device,
                     const absl::Status& why) override;

  // Runs the waves of `phases`, in plan order. Keeps resume sessions.
  absl::Status RunWaves(const std::vector<WavePhase>& phases)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Once every stream has ended, RESUMING -> STOP runs at once on a pool
  // thread instead of when Load comes: Load follows the last END by the
  // source's bookkeeping and a round trip, all inside the downtime. The
  // kLoaded record and CheckStart stay with Load, so a source that never
  // asks still meets the orphan timeout, and a failure here is reported to
  // Load (or rolled back by the orphan timeout or an Abort).
  void Preload();
  // Load's work: RESUMING -> STOP (unless Preload did it) and the kLoaded
  // record; rolls back and finishes on failure. OK when already loaded.
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // After the kCommitted record: every device to RUNNING (the planned
  // waves when `planned`, then, for whatever they left, the executor's
  // group-ordered walk with resets as a last resort), then finishes.
  void CompleteCommit(bool planned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Waits while Recover() runs.
  void AwaitRecovered() const;
  // Rolls every device back to RUNNING and finishes the migration as
  // failed (or cancelled) with `why`. Returns a one-line summary of the
  // devices' final states.
  std::string RollBackAndFinish(const absl::Status& why,
                                v1::MigrationOutcome outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Resets every device idle in RESUMING. Walking it RESUMING -> STOP
  // instead would load whatever was received, checked or not (a device may
  // accept its own complete data although the envelope's END never came),
  // into a device the migration is giving up on.
  void DiscardResumes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Releases the lease, stops the executor, notifies the registry.
  void Finish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  void StatusesTo(google::protobuf::RepeatedPtrField<v1::DeviceStatus>* out)
      const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  DeviceRecord* FindDevice(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::MigrationPhase PhaseLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Migration ToProtoLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DestinationSettings settings_;
  const std::vector<Wave> waves_;
  FinishedCallback on_finished_;
  const int64_t started_unix_ms_;
  // Created in the constructor; the row is first written by Prepare.
  std::unique_ptr<MigrationJournal> journal_;

  absl::Mutex op_mu_;
  std::unique_ptr<TransitionExecutor> executor_ ABSL_GUARDED_BY(op_mu_);
  Lease lease_ ABSL_GUARDED_BY(op_mu_);
  // From the start of loading to Finish: the downtime window.
  Journal::SnapshotHold snapshot_hold_ ABSL_GUARDED_BY(op_mu_);

  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(op_mu_);
  Stage stage_ ABSL_GUARDED_BY(mu_) = Stage::kPreparing;
  std::vector<DeviceRecord> devices_ ABSL_GUARDED_BY(mu_);
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
  // Prepare, a stream frame, a stream's end: the orphan timer counts from
  // here while no stream is open.
  mutable absl::Time last_activity_ ABSL_GUARDED_BY(mu_);
  v1::MigrationOutcome outcome_ ABSL_GUARDED_BY(mu_) =
      v1::MIGRATION_OUTCOME_IN_PROGRESS;
  std::string error_ ABSL_GUARDED_BY(mu_);
  std::string failed_device_ ABSL_GUARDED_BY(mu_);
  std::string failed_arc_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> warnings_ ABSL_GUARDED_BY(mu_);
  int64_t finished_unix_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // Set before the first rollback step so that streams stop writing at
  // once, not when the op mutex frees up.
  bool abort_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string abort_reason_ ABSL_GUARDED_BY(mu_);
  // RESUMING -> STOP began: a device in STOP may hold received state.
  bool load_started_ ABSL_GUARDED_BY(mu_) = false;
  enum class PreloadState { kNone, kQueued, kDone };
  PreloadState preload_ ABSL_GUARDED_BY(mu_) = PreloadState::kNone;
  // Preload's outcome, for Load.
  absl::Status preload_status_ ABSL_GUARDED_BY(mu_);
  // The commit is recorded: nothing rolls back any more.
  bool committed_ ABSL_GUARDED_BY(mu_) = false;
  // Continued by Recover() after a restart.
  bool recovered_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DESTINATION_MIGRATION_H_
