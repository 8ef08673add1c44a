// MigrationManager: the migrations this daemon runs as a source, by id.
//
// Start validates a StartMigrationRequest completely before touching any
// device (ids, destination, device map, policy, deadlines; the group's
// devices leased and planned), then runs a SourceMigration on its own
// thread and returns the new resource at once. Get/List/Watch read the
// resources through their MigrationTrackers; Cancel rolls a migration back.
// Finished migrations stay listed (the newest history_limit of them).
// Incoming (destination) migrations are another component's; List and Get
// include them through IncomingMigrations when set.
//
// Thread-safe. `inventory` and `leases` must outlive the manager. The
// destructor cancels the migrations still running and waits until they are
// rolled back.
#ifndef VFIOMIG_DAEMON_MIGRATION_MIGRATION_MANAGER_H_
#define VFIOMIG_DAEMON_MIGRATION_MIGRATION_MANAGER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/precopy.h"
#include "daemon/engine/transition_executor.h"
#include "daemon/inventory.h"
#include "daemon/migration/abort_sender.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/driver_deadlines.h"
#include "daemon/migration/migration_tracker.h"
#include "daemon/store/journal.h"
#include "daemon/transport_security.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

class SourceMigration;

// Daemon-wide settings of outgoing migrations (flags).
struct MigrationOptions {
  // Per-arc deadlines when a request leaves them 0.
  ArcDeadlines default_deadlines;
  // Deadlines of the devices of some drivers, when a request leaves them 0.
  DriverDeadlineOverrides driver_deadlines;
  // The policy when a request leaves it unspecified.
  DeadlinePolicy default_policy = DeadlinePolicy::kSla;
  PrecopyPolicy precopy;
  // SwitchoverRegistry name, when a request names none.
  std::string switchover = "none";
  // SwitchoverContext::timeout when a request leaves it 0.
  absl::Duration switchover_timeout = absl::Seconds(30);
  // Base deadline of the Prepare, Commit and Abort calls to the peer.
  absl::Duration peer_timeout = absl::Seconds(10);
  // How the destination is dialled: mutual TLS for TCP destinations when
  // the daemon has TLS files, plaintext only with --insecure. The default
  // allows unix-socket destinations only (a TCP one is refused at Start).
  TransportSecurity transport;
  // Use a destination's data channel offer (SourceMigrationSpec); the
  // daemon sets it by datachannel::DecideDataChannel.
  bool data_channel = false;
  // This host's name in stream headers; gethostname() when empty.
  std::string source_host;
  // Finished migrations kept for Get/List.
  size_t history_limit = 100;
  TrackerOptions tracker;
  // Where every migration's progress is recorded (daemon/store/journal.h).
  // Null only in unit tests of other concerns; the daemon always sets it.
  Journal* journal = nullptr;
};

// Bounds of a request's deadlines: a longer one is a typo, not a plan.
inline constexpr uint32_t kMaxArcTimeoutMs = 24 * 3600 * 1000;
inline constexpr size_t kMaxDestinationLength = 1024;
// sun_path holds 108 bytes including the terminating NUL.
inline constexpr size_t kMaxVmmSocketPath = 107;

// InvalidArgument naming the field: a domain or switchover name that is
// too long or not printable, a socket path that is not absolute, too long
// for sun_path or contains "..", a timeout above kMaxArcTimeoutMs. Shared
// with the destination's PrepareRequest checks.
absl::Status ValidateWorkload(const v1::Workload& workload);

// Read access to the destination side's migrations.
struct IncomingMigrations {
  std::function<std::vector<v1::Migration>()> list;
  // NotFound when there is no such incoming migration.
  std::function<absl::StatusOr<v1::Migration>(const std::string&)> get;
};

class MigrationManager {
 public:
  MigrationManager(const Inventory* inventory, DeviceLeases* leases,
                   MigrationOptions options);
  ~MigrationManager();

  MigrationManager(const MigrationManager&) = delete;
  MigrationManager& operator=(const MigrationManager&) = delete;

  // Set once, before the manager serves calls.
  void SetIncoming(IncomingMigrations incoming);

  // Finished outgoing migrations of earlier lives of the daemon (from the
  // journal), newest first. Before the manager serves calls.
  void LoadHistory(std::vector<v1::Migration> finished);

  // Crash recovery of an unfinished journal entry (role source): leases
  // its devices and continues it on its own thread (SourceMigration with
  // recover_from), listed and watchable like any other. An error (a
  // device this daemon does not manage any more, a lease conflict, an
  // unknown switchover action) leaves the journal row for a later start.
  // Before the manager serves calls.
  absl::Status Recover(const JournalEntry& entry);

  // A finished migration whose Abort never reached its destination
  // (Journal::PendingVerdicts): delivered in the background.
  void ResendAbort(const JournalEntry& entry);

  // INVALID_ARGUMENT for a malformed request, NOT_FOUND naming every unknown
  // device, ALREADY_EXISTS for a migration id in use (running or in the
  // history), FAILED_PRECONDITION for a busy device or a blocked plan (the
  // blockers, per device) and after Shutdown. Nothing is touched then.
  absl::StatusOr<v1::Migration> Start(const v1::StartMigrationRequest& request);

  // NOT_FOUND when neither this daemon's source nor destination knows `id`.
  absl::StatusOr<v1::Migration> Get(const std::string& id) const;

  // Outgoing migrations newest first, then incoming ones.
  std::vector<v1::Migration> List() const;

  // Events of an outgoing migration; NOT_FOUND for unknown ids (an incoming
  // migration cannot be watched here yet).
  absl::StatusOr<std::unique_ptr<MigrationSubscription>> Watch(
      const std::string& id) const;

  // Asks a running migration to roll back and waits until it finished or
  // `deadline` passed; returns the resource as it is then (the outcome is
  // still IN_PROGRESS when the rollback outlasted the deadline: a drain the
  // kernel cannot interrupt). FAILED_PRECONDITION when it had already
  // finished, NOT_FOUND for unknown ids.
  absl::StatusOr<v1::Migration> Cancel(const std::string& id,
                                       absl::Time deadline);

  // The control plane's go-ahead for a migration whose switchover action
  // waits for one ("external"); returns the resource. NOT_FOUND for unknown
  // ids, FAILED_PRECONDITION when the migration finished, is incoming, or
  // its action does not wait (or no longer waits) for a go-ahead.
  absl::StatusOr<v1::Migration> Switchover(const std::string& id);

  // Refuses new migrations, cancels the running ones and waits until they
  // are rolled back; migrations past their commit point stop waiting for
  // their destination and are left to the next start (the journal has
  // them). For SIGTERM.
  void Shutdown();

  // Migrations not finished yet.
  size_t running() const;

 private:
  struct Entry {
    std::shared_ptr<MigrationTracker> tracker;
    // Null once joined. Shared so that Cancel can hold it while a reap
    // runs.
    std::shared_ptr<SourceMigration> migration;
    absl::Time started;
  };

  absl::StatusOr<std::string> NewId(const std::string& requested) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Start after the id was reserved: devices, lease, plan, launch.
  absl::StatusOr<v1::Migration> StartReserved(
      const std::string& id, const v1::StartMigrationRequest& request);
  // Registers and starts `source`.
  void Launch(const std::string& id, std::shared_ptr<MigrationTracker> tracker,
              std::shared_ptr<SourceMigration> source);
  // Joins finished migrations and trims the history.
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Inventory* inventory_;
  DeviceLeases* leases_;
  const MigrationOptions options_;
  IncomingMigrations incoming_;
  AbortSender abort_sender_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Ids in start order, oldest first (for the history bound and List).
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_MIGRATION_MANAGER_H_
