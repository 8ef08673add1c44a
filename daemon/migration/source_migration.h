// SourceMigration: one outgoing migration of a device group, on its own
// thread.
//
// The steps, each reported through the migration's MigrationTracker:
//   1. PREPARING: a stream header per device (DeviceIdentityOf + the
//      stop-copy estimate), Prepare on the destination (which validates
//      every device and puts its targets into RESUMING), and one StreamState
//      call per device, opened with its HEADER frame.
//   2. PRE_COPY (groups with PRE_COPY devices): the kPreCopy wave, then
//      rounds of pre-copy streaming, one thread per device, until
//      DecidePrecopy (core/precopy.h) says stop.
//   3. SWITCHOVER: the predicted downtime, then the SwitchoverAction pauses
//      the workload.
//   4. QUIESCE / STOP_COPY: the remaining source waves; after kStopCopy,
//      every device's save session is streamed to its end (one thread per
//      device), END sent, and each stream's summary checked.
//   5. COMMITTING: Load (every destination device loads its state, STOP,
//      and the destination records that it holds it), then THE COMMIT
//      POINT: the hand-over recorded durably in the journal
//      (PROTOCOL.md), then Commit, repeated until the destination answers;
//      the destination resumes its devices.
// Success leaves the source devices in STOP. Any failure before the commit
// point (an arc that fails, or is late under the sla policy; a destination
// error or lost connection; a stream error; Cancel) rolls back: the streams
// are cancelled, the destination told to Abort (concurrently; if the call
// does not get through, the AbortSender keeps trying), and the executor
// brings every source device back to RUNNING (group-ordered). After the
// commit point nothing rolls back: the source devices stay stopped and the
// migration waits for the destination. No exit path leaves a source device
// stopped without the destination owning the group.
//
// Crash recovery (spec.recover_from set) continues a migration of an
// earlier life of the daemon from its journal stage instead: kStarted rolls
// back as above; kHandedOver brings devices found in STOP_COPY to STOP and
// goes on with Commit.
//
// Memory stays bounded by one frame buffer per device: device state goes
// from the save session to gRPC frame by frame, and a slow destination
// blocks the sending thread (backpressure), never a queue.
//
// Thread-safety: Start, Join and the destructor from the owner's thread;
// Cancel from any thread.
#ifndef VFIOMIG_DAEMON_MIGRATION_SOURCE_MIGRATION_H_
#define VFIOMIG_DAEMON_MIGRATION_SOURCE_MIGRATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/planner.h"
#include "daemon/core/precopy.h"
#include "daemon/datachannel/handshake.h"
#include "daemon/datachannel/targets.h"
#include "daemon/engine/transition_executor.h"
#include "daemon/migration/abort_sender.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_journal.h"
#include "daemon/migration/migration_tracker.h"
#include "daemon/migration/source_peer.h"
#include "daemon/migration/switchover.h"
#include "daemon/store/journal.h"
#include "daemon/stream/format.h"
#include "plugins/backend.h"

namespace vfiomig {

// A validated migration request, ready to run.
struct SourceMigrationSpec {
  std::string id;
  // gRPC target of the destination daemon, and how to dial it.
  std::string destination;
  std::shared_ptr<grpc::ChannelCredentials> peer_credentials;
  // This host's name, for the stream headers.
  std::string source_host;
  // The group, in request order, and each device's target id (parallel).
  std::vector<std::shared_ptr<Device>> devices;
  std::vector<std::string> target_ids;
  // A migratable plan of `devices` (PlanMigration).
  GroupPlan plan;
  PlanOptions plan_options;
  DeadlinePolicy policy = DeadlinePolicy::kSla;
  ArcDeadlines deadlines;
  PrecopyPolicy precopy;
  // Base deadline of Prepare, Commit and Abort; Prepare and Commit add the
  // deadlines of the destination waves they run.
  absl::Duration peer_timeout = absl::Seconds(10);
  std::unique_ptr<SwitchoverAction> switchover;
  // The workload (Workload): its libvirt domain, its VMM socket on each
  // host, and the switchover's time bound.
  std::string domain;
  std::string source_vmm_socket;
  std::string destination_vmm_socket;
  absl::Duration switchover_timeout = absl::Seconds(30);
  // Send the state streams over a data channel when the destination offers
  // one (daemon/datachannel/; the daemon sets this only where the peer link
  // is plaintext, policy.h); otherwise, or when it cannot be reached, in
  // StreamState calls on the peer link.
  bool data_channel = false;
  // Held until the migration has finished; released before the final event.
  Lease lease;
  // The migration's journal row (stage kStarted already recorded).
  std::shared_ptr<MigrationJournal> journal;
  // Takes over Aborts that did not get through. May be null (tests).
  AbortSender* abort_sender = nullptr;
  // Crash recovery: the journal stage to continue from (kStarted or
  // kHandedOver), and whether the switchover had paused the workload.
  std::optional<JournalStage> recover_from;
  bool workload_paused = false;
};

class SourceMigration {
 public:
  // `tracker` holds the Migration resource (role "source", its devices in
  // spec order) and receives every update.
  SourceMigration(SourceMigrationSpec spec,
                  std::shared_ptr<MigrationTracker> tracker);
  // Cancels a migration still running and waits for it.
  ~SourceMigration();

  SourceMigration(const SourceMigration&) = delete;
  SourceMigration& operator=(const SourceMigration&) = delete;

  // Starts the migration thread. Once.
  void Start();
  // Asks the migration to stop and roll back. Returns at once; the tracker
  // tells when it is done. No effect once Commit has been sent (the
  // destination may already run the devices) or the migration finished.
  void Cancel(const std::string& reason);
  // For the daemon's exit: Cancel, and after the commit point stop
  // retrying Commit without finishing (the journal keeps the hand-over;
  // the next start continues it). Returns at once; Join waits.
  void Shutdown();
  // Waits for the migration thread.
  void Join();
  // The control plane's go-ahead for the switchover (SwitchoverAction::
  // Proceed); any thread.
  absl::Status ProceedSwitchover();

  const std::string& id() const { return spec_.id; }

 private:
  struct DeviceRun;
  class Observer;

  void Run();
  // Everything up to and including Load.
  absl::Status Migrate();
  // Records the commit point. An error leaves the migration before it.
  absl::Status HandOver();
  // After the commit point: Commit until answered, then Succeed or
  // FinishUnresumed; returns without finishing on Shutdown.
  void CompleteHandOver();
  absl::StatusOr<v1::CommitResponse> DeliverCommit();
  // Crash recovery (spec_.recover_from).
  void Recover();
  // A new executor over this migration's devices; touches no device.
  std::unique_ptr<TransitionExecutor> MakeExecutor();
  // Load, in three steps so that the call can overlap the last source
  // wave: StartLoad (on the migration thread: publishes, returns the peer),
  // SendLoad (the call alone; any thread), CheckLoaded (migration thread).
  PeerClient* StartLoad(bool overlapped);
  absl::StatusOr<v1::LoadResponse> SendLoad(PeerClient& peer);
  absl::Status CheckLoaded(absl::StatusOr<v1::LoadResponse> response);
  absl::Status PrepareDestination();
  absl::Status OpenStreams();
  // Opens `device`'s stream over the data channel the destination offered:
  // the first reachable candidate becomes data_channel_target_; without an
  // offer, or when none is reachable, over a StreamState call.
  absl::Status OpenFirstStream(DeviceRun& device, PeerClient& peer);
  // Opens `device`'s stream over data_channel_target_ when set (falling
  // back to StreamState for this device if that fails), else StreamState.
  absl::Status OpenStream(DeviceRun& device, PeerClient& peer);
  datachannel::Hello HelloFor(const DeviceRun& device) const;
  absl::Status RunWave(size_t index);
  // Cancelled, or the destination connection is gone.
  absl::Status CheckContinue();
  DeviceRun* Find(const std::string& id);
  // "gpu0,nic0->nic3", for the log.
  std::string DeviceList() const;
  // The deadlines of the destination waves of `phases`, summed (each wave
  // as long as its longest arc deadline).
  absl::Duration DestinationBudget(
      std::initializer_list<WavePhase> phases) const;

  // The switchover action's context on this (the source) side.
  SwitchoverContext MakeSwitchoverContext() const;

  // Tags the executor's events of the rollback.
  void EnterRollback();

  // source_outcome.cc
  // `response`: the destination's answer to Commit.
  void Succeed(const v1::CommitResponse& response);
  // Before the commit point only.
  void Fail(const absl::Status& cause);
  // After the commit point, when the destination does not run the group
  // (it lost the state, or a device failed even its reset).
  void FinishUnresumed(const absl::Status& cause,
                       const v1::CommitResponse* response);

  // source_streaming.cc
  absl::Status RunPrecopy(int wave);
  absl::Status Switchover(int wave);
  // PumpStopCopy, AwaitSummaries, ReportStopCopy.
  absl::Status StreamStopCopy(int wave);
  // Every device's stop-copy data and END; the destination's summaries
  // are the caller's to await.
  absl::Status PumpStopCopy(int wave);
  // Logs and publishes what the stop-copy phase sent, the last summary
  // having come at `end`.
  void ReportStopCopy(int wave, absl::Time end);
  std::vector<DeviceRun*> AllDevices() const;
  // Runs `fn` for every device of `devices`, on up to kMaxStreamingThreads
  // threads that take the devices in order; the first failure stops the
  // others. The failing device's own error wins over the errors the others
  // see because of it.
  absl::Status ForEachDevice(const std::vector<DeviceRun*>& devices,
                             const std::function<absl::Status(DeviceRun&)>& fn);
  // Waits for the summary of every stream that sent END (SendEnd); the
  // first real failure names the device, as in ForEachDevice.
  absl::Status AwaitSummaries(const std::vector<DeviceRun*>& devices);
  // The same, one result per device, for FirstCause. Thread-safe (it
  // touches only the streams): Migrate runs it beside a wave.
  std::vector<absl::Status> CollectSummaries(
      const std::vector<DeviceRun*>& devices);
  // The first failure that is not a consequence of the stop (Aborted,
  // Cancelled) names its device; OK when every result is.
  absl::Status FirstCause(const std::vector<DeviceRun*>& devices,
                          const std::vector<absl::Status>& results);
  // Stops every pump and breaks every open stream.
  void StopStreams();
  void DestroyStreams();
  void OnFrame(DeviceRun& device, stream::Section section, uint64_t bytes);
  // Brings bytes_total of every device and of the migration up to date.
  void PublishTotals();

  SourceMigrationSpec spec_;
  std::shared_ptr<MigrationTracker> tracker_;
  std::vector<std::unique_ptr<DeviceRun>> devices_;
  std::map<std::string, DeviceRun*> by_id_;
  std::unique_ptr<Observer> observer_;
  std::thread thread_;

  // Set from any thread.
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> committing_{false};
  std::atomic<bool> shutting_down_{false};
  // Tells pumps to stop (failure or cancel).
  std::atomic<bool> stop_{false};

  // Guards what Cancel reaches from other threads: the peer client and
  // the devices' streams (created and destroyed by the migration thread).
  absl::Mutex mu_;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  // Wakes DeliverCommit's backoff on Shutdown.
  bool stop_waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<PeerClient> peer_ ABSL_GUARDED_BY(mu_);

  // The migration thread's own state.
  std::unique_ptr<TransitionExecutor> executor_;
  // Prepare was sent: the destination may hold devices and needs an Abort.
  bool prepare_sent_ = false;
  // The destination accepted every device and holds them in RESUMING.
  bool prepared_ = false;
  // Load was sent: the destination may hold the state (and then waits for
  // a verdict, which Fail must deliver).
  bool load_sent_ = false;
  // The commit point is recorded: no rollback from here on.
  bool handed_over_ = false;
  // From the PrepareResponse (empty when spec_.data_channel is off).
  // data_channel_target_ is set once a data connection worked, before the
  // other streams open (they only read it).
  v1::DataChannelOffer data_channel_offer_;
  std::optional<datachannel::Target> data_channel_target_;
  bool paused_ = false;
  std::string failed_device_;
  std::string failed_arc_;
  std::atomic<uint64_t> bytes_sent_{0};
  absl::Duration streaming_time_ = absl::ZeroDuration();
  // When the stop-copy pumps started, and bytes_sent_ then.
  absl::Time stop_copy_start_;
  uint64_t stop_copy_before_ = 0;
  absl::Duration precopy_time_ = absl::ZeroDuration();
  uint64_t precopy_bytes_ = 0;
  absl::Duration measured_wave_time_ = absl::ZeroDuration();
  int measured_waves_ = 0;
  // From the switchover to the end of Run (migration thread only).
  Journal::SnapshotHold snapshot_hold_;
  absl::Time downtime_start_ = absl::InfinitePast();
  absl::Time commit_done_ = absl::InfinitePast();
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SOURCE_MIGRATION_H_
