// MigrationJournal: one migration's row in the Journal (daemon/store), as
// the side running it sees it. Keeps the entry as last written, so that a
// stage change and a snapshot of the resource always write a whole,
// consistent row.
//
// Without a Journal (null) nothing is recorded: for unit tests of other
// concerns only; the daemon always has one.
//
// Stage records (SetStage, Finish) are written with `stage_durability`.
// The source's are kDurable (fsynced): they decide what the destination
// does with the state it holds (Commit or Abort), which must not change
// when the source's host loses power. The destination's are kRelaxed (see
// PROTOCOL.md, "Power loss"): they protect only state held in its own
// devices, which a power loss of its host destroys anyway, so they need to
// survive a crash of the daemon only - and they do once in the WAL.
//
// Thread-safe.
#ifndef VFIOMIG_DAEMON_MIGRATION_MIGRATION_JOURNAL_H_
#define VFIOMIG_DAEMON_MIGRATION_MIGRATION_JOURNAL_H_

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "daemon/store/journal.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

// How long a side's downtime window may hold snapshots back (see
// Journal::HoldSnapshots): windows are tens of milliseconds; one that runs
// for seconds (a large stop-copy, a slow arc, a peer retried) lets progress
// records through again after this.
inline constexpr absl::Duration kDowntimeSnapshotHold = absl::Seconds(1);

class MigrationJournal {
 public:
  MigrationJournal(Journal* journal, JournalEntry initial,
                   Durability stage_durability = Durability::kDurable)
      : journal_(journal),
        stage_durability_(stage_durability),
        entry_(std::move(initial)) {}

  MigrationJournal(const MigrationJournal&) = delete;
  MigrationJournal& operator=(const MigrationJournal&) = delete;

  bool enabled() const { return journal_ != nullptr; }

  // Applies `change` and writes the row. On error the entry is left as it
  // was, and the caller must not act as if the change were recorded.
  absl::Status Update(absl::FunctionRef<void(JournalEntry&)> change,
                      Durability durability);
  absl::Status SetStage(JournalStage stage);
  // The resource as it is now; relaxed and written in the background
  // (Journal::WriteLater). A failure is logged, not returned: nothing
  // recovery relies on comes from snapshots (it reads devices).
  void Snapshot(const v1::Migration& record);
  // The final resource, stage kDone. Logged on failure (the
  // migration is over either way; the next start-up would recover it
  // again from its last stage, which is safe).
  void Finish(const v1::Migration& record);

  // Journal::HoldSnapshots; an empty hold without a journal.
  Journal::SnapshotHold HoldSnapshots(absl::Duration max);

  JournalEntry entry() const;

 private:
  Journal* const journal_;
  const Durability stage_durability_;
  mutable absl::Mutex mu_;
  JournalEntry entry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_MIGRATION_JOURNAL_H_
