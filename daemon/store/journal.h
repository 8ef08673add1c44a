// Journal: the daemon's durable record of every migration it takes part
// in, as source or destination, in an SQLite database (WAL mode) in the
// state directory. Crash recovery (daemon/migration/PROTOCOL.md) reads it
// on start-up; the control API's history comes from it after a restart.
//
// One row per (role, migration id) holds the recovery stage, the verdict
// the peer still has to hear, and the Migration resource as last recorded
// (phase, per-device states, figures); a devices table repeats each
// device's last recorded state so that `sqlite3 journal.db` shows it
// without decoding protobuf.
//
// Durability. SQLite in WAL mode with synchronous=FULL fsyncs the WAL on
// every commit: once Write(..., kDurable) returns, the row survives a power
// loss, not only a crash of the process. Stage changes are written that way
// (a side acts on them, and its peer acts on what this side then says).
// Progress snapshots use synchronous=NORMAL and are written by a
// background thread (WriteLater): the newest snapshot of a migration
// replaces one still queued, and the migration's thread never waits for
// SQLite on their account. A crash of the daemon may lose the latest ones
// (those still queued; a power loss those not fsynced yet), which costs
// nothing because recovery GETs every device's real state anyway. The next
// durable commit makes every earlier relaxed one durable (the WAL is one
// sequential file).
//
// Thread-safe: one connection behind a mutex; writes are short.
#ifndef VFIOMIG_DAEMON_STORE_JOURNAL_H_
#define VFIOMIG_DAEMON_STORE_JOURNAL_H_

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/store/sqlite.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

enum class JournalRole { kSource, kDestination };

// Where a migration stands, as far as recovery after a crash cares.
enum class JournalStage {
  // Source: Prepare may have been sent, devices may have left RUNNING.
  // Destination: devices may be on their way to RESUMING or receiving.
  kStarted,
  // Destination: every device loaded the received state (RESUMING -> STOP)
  // and holds it stopped; in doubt until the source's Commit or Abort.
  kLoaded,
  // Source: THE COMMIT POINT. The hand-over is recorded: the devices now
  // belong to the destination and the source never resumes them.
  kHandedOver,
  // Destination: the source's Commit arrived; the resume rolls forward.
  kCommitted,
  // Finished; `record` has the outcome.
  kDone,
};

// What the peer has not acknowledged yet (source rows).
enum class PeerVerdict { kNone, kCommit, kAbort };

std::string_view JournalRoleName(JournalRole role);
std::string_view JournalStageName(JournalStage stage);
std::string_view PeerVerdictName(PeerVerdict verdict);

struct JournalEntry {
  JournalRole role = JournalRole::kSource;
  JournalStage stage = JournalStage::kStarted;
  // The Migration resource: id, peer (source: the destination's gRPC
  // target; destination: the source host), devices with their last known
  // states, deadlines, outcome and figures.
  v1::Migration record;
  PeerVerdict pending = PeerVerdict::kNone;
  // Source: the switchover action, and whether it paused the workload
  // without resuming it yet (recovery before the commit point resumes it).
  std::string switchover;
  bool workload_paused = false;
  // Source: the request's Workload (domain, VMM sockets, switchover
  // timeout), so that a restarted source can resume the workload.
  v1::Workload workload;
};

enum class Durability { kRelaxed, kDurable };

struct JournalOptions {
  // Finished migrations kept per role; older ones are deleted.
  size_t keep_finished = 1000;
};

class Journal {
 public:
  static constexpr char kFileName[] = "journal.db";

  // Opens or creates `dir`/journal.db. DataLoss for a file that is not a
  // journal or fails SQLite's quick_check; FailedPrecondition for a journal
  // written by a newer, incompatible vfio-migd.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(
      const std::filesystem::path& dir, JournalOptions options = {});

  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return db_->path(); }

  // Writes what is still queued (WriteLater), then stops its thread.
  ~Journal();

  // Inserts or replaces the entry's row and device rows in one transaction.
  // A queued WriteLater of the same (role, id) is dropped: entries are
  // whole rows, and the caller's is the newer one.
  absl::Status Write(const JournalEntry& entry, Durability durability);
  // Queues a relaxed Write of `entry` for the journal's thread; a later
  // WriteLater of the same (role, id) replaces it while it is queued.
  // Errors are logged: for progress snapshots only, which nothing relies
  // on.
  void WriteLater(JournalEntry entry);
  // Writes every queued entry now (tests; the destructor).
  void Flush();

  // Keeps WriteLater's thread from starting a write while it lives, for at
  // most `max`; queued snapshots keep replacing each other meanwhile, and
  // Write is not held back. A migration holds it through its downtime
  // window: on a host that gives the daemon one CPU, a snapshot written
  // between two waves delays the next wave by the write's whole cost
  // (0.1-0.4 ms here), and nothing in the window waits for a snapshot.
  // The journal must outlive it.
  class SnapshotHold {
   public:
    SnapshotHold() = default;
    SnapshotHold(SnapshotHold&& other) noexcept { *this = std::move(other); }
    SnapshotHold& operator=(SnapshotHold&& other) noexcept;
    SnapshotHold(const SnapshotHold&) = delete;
    SnapshotHold& operator=(const SnapshotHold&) = delete;
    ~SnapshotHold() { Release(); }

    // Ends the hold early; a no-op for an empty or released one.
    void Release();
    bool active() const { return journal_ != nullptr; }

   private:
    friend class Journal;
    SnapshotHold(Journal* journal, absl::Time until)
        : journal_(journal), until_(until) {}

    Journal* journal_ = nullptr;
    absl::Time until_;
  };
  SnapshotHold HoldSnapshots(absl::Duration max);

  // Entries not kDone, oldest first: what recovery must act on.
  absl::StatusOr<std::vector<JournalEntry>> Unfinished();
  // kDone entries whose peer still has to hear a verdict.
  absl::StatusOr<std::vector<JournalEntry>> PendingVerdicts();
  // kDone entries of `role`, newest first, at most `limit`.
  absl::StatusOr<std::vector<JournalEntry>> History(JournalRole role,
                                                    size_t limit);

 private:
  Journal(std::unique_ptr<SqliteDb> db, JournalOptions options)
      : db_(std::move(db)), options_(options) {}

  absl::Status CreateSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetSync(Durability durability)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteTransaction(const JournalEntry& entry,
                                Durability durability)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteLocked(const JournalEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The statement in `slot`, prepared from `sql` on first use and kept:
  // preparing is most of the CPU time of a write otherwise.
  absl::StatusOr<SqliteStatement*> Cached(std::optional<SqliteStatement>& slot,
                                          std::string_view sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the cached statement (no rows).
  absl::Status Run(std::optional<SqliteStatement>& slot, std::string_view sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The oldest-keyed queued entry, removed from the queue; none if empty.
  std::optional<JournalEntry> TakeQueued() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // A relaxed write of a queued entry; a failure is logged.
  void WriteQueued(const JournalEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriterLoop();
  absl::Status PruneLocked(JournalRole role) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<JournalEntry>> Select(std::string_view where,
                                                   std::string_view order,
                                                   int64_t limit);

  absl::Mutex mu_;
  std::unique_ptr<SqliteDb> db_ ABSL_PT_GUARDED_BY(mu_);
  const JournalOptions options_;
  // The synchronous mode last set; -1 before the first write.
  int sync_ ABSL_GUARDED_BY(mu_) = -1;
  // A write's statements (Cached), finalised before db_ closes.
  std::optional<SqliteStatement> begin_ ABSL_GUARDED_BY(mu_);
  std::optional<SqliteStatement> commit_ ABSL_GUARDED_BY(mu_);
  std::optional<SqliteStatement> upsert_ ABSL_GUARDED_BY(mu_);
  std::optional<SqliteStatement> clear_devices_ ABSL_GUARDED_BY(mu_);
  std::optional<SqliteStatement> insert_device_ ABSL_GUARDED_BY(mu_);

  // WriteLater's queue. Lock order: mu_, then queue_mu_; the writer takes
  // an entry and writes it under one hold of mu_, so a Write that drops a
  // queued entry can never be overtaken by the older one.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<std::pair<JournalRole, std::string>, JournalEntry> queued_
      ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  // When each live SnapshotHold ends at the latest.
  std::multiset<absl::Time> holds_ ABSL_GUARDED_BY(queue_mu_);
  // Started by the first WriteLater.
  std::thread writer_ ABSL_GUARDED_BY(queue_mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_STORE_JOURNAL_H_
