#include "daemon/migration/migration_journal.h"

#include "spdlog/spdlog.h"

namespace vfiomig {

absl::Status MigrationJournal::Update(
    absl::FunctionRef<void(JournalEntry&)> change, Durability durability) {
  absl::MutexLock lock(&mu_);
  JournalEntry next = entry_;
  change(next);
  if (journal_ != nullptr) {
    if (absl::Status s = journal_->Write(next, durability); !s.ok()) {
      spdlog::error("migration {}: journal write failed: {}", next.record.id(),
                    std::string(s.message()));
      return s;
    }
  }
  entry_ = std::move(next);
  return absl::OkStatus();
}

absl::Status MigrationJournal::SetStage(JournalStage stage) {
  return Update([&](JournalEntry& e) { e.stage = stage; }, stage_durability_);
}

void MigrationJournal::Snapshot(const v1::Migration& record) {
  absl::MutexLock lock(&mu_);
  entry_.record = record;
  // Written by the journal's thread: the migration does not wait for it.
  if (journal_ != nullptr) journal_->WriteLater(entry_);
}

void MigrationJournal::Finish(const v1::Migration& record) {
  (void)Update(
      [&](JournalEntry& e) {
        e.record = record;
        e.stage = JournalStage::kDone;
        // A finished migration has no Commit left to deliver (an Abort
        // may still be owed).
        if (e.pending == PeerVerdict::kCommit) e.pending = PeerVerdict::kNone;
      },
      stage_durability_);
}

Journal::SnapshotHold MigrationJournal::HoldSnapshots(absl::Duration max) {
  if (journal_ == nullptr) return {};
  return journal_->HoldSnapshots(max);
}

JournalEntry MigrationJournal::entry() const {
  absl::MutexLock lock(&mu_);
  return entry_;
}

}  // namespace vfiomig
