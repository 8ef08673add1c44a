#include "daemon/store/journal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/store/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/store/store_test_util.h"

namespace vfiomig {
namespace {

using ::testing::ElementsAre;

JournalEntry Entry(JournalRole role, const std::string& id, JournalStage stage,
                   int64_t started, int64_t finished = 0) {
  JournalEntry e;
  e.role = role;
  e.stage = stage;
  e.record.set_id(id);
  e.record.set_role(std::string(JournalRoleName(role)));
  e.record.set_peer("unix:/run/peer.sock");
  e.record.set_started_unix_ms(started);
  e.record.set_finished_unix_ms(finished);
  e.record.set_phase(v1::MIGRATION_PHASE_QUIESCE);
  e.record.set_outcome(stage == JournalStage::kDone
                           ? v1::MIGRATION_OUTCOME_SUCCEEDED
                           : v1::MIGRATION_OUTCOME_IN_PROGRESS);
  v1::MigrationDevice* d = e.record.add_devices();
  d->set_source_device_id("gpu0");
  d->set_target_device_id("gpu7");
  d->set_state(v1::DEVICE_STATE_RUNNING_P2P);
  d->set_state_name("RUNNING_P2P");
  return e;
}

std::vector<std::string> Ids(const std::vector<JournalEntry>& entries) {
  std::vector<std::string> ids;
  for (const JournalEntry& e : entries) ids.push_back(e.record.id());
  return ids;
}

TEST(JournalTest, EntriesRoundTripAcrossReopen) {
  TempDir tmp;
  {
    auto journal = Journal::Open(tmp.path());
    ASSERT_TRUE(journal.ok()) << journal.status();
    JournalEntry e =
        Entry(JournalRole::kSource, "m1", JournalStage::kStarted, 5);
    e.switchover = "qmp";
    e.workload_paused = true;
    e.workload.set_source_qmp_socket("/run/vm1.qmp");
    e.workload.set_switchover_timeout_ms(1500);
    ASSERT_TRUE((*journal)->Write(e, Durability::kRelaxed).ok());
    e.stage = JournalStage::kHandedOver;
    e.pending = PeerVerdict::kCommit;
    ASSERT_TRUE((*journal)->Write(e, Durability::kDurable).ok());
  }
  auto journal = Journal::Open(tmp.path());
  ASSERT_TRUE(journal.ok()) << journal.status();
  auto unfinished = (*journal)->Unfinished();
  ASSERT_TRUE(unfinished.ok()) << unfinished.status();
  ASSERT_EQ(unfinished->size(), 1u);
  const JournalEntry& e = (*unfinished)[0];
  EXPECT_EQ(e.role, JournalRole::kSource);
  EXPECT_EQ(e.stage, JournalStage::kHandedOver);
  EXPECT_EQ(e.pending, PeerVerdict::kCommit);
  EXPECT_EQ(e.switchover, "qmp");
  EXPECT_TRUE(e.workload_paused);
  EXPECT_EQ(e.workload.source_qmp_socket(), "/run/vm1.qmp");
  EXPECT_EQ(e.workload.switchover_timeout_ms(), 1500u);
  EXPECT_EQ(e.record.peer(), "unix:/run/peer.sock");
  ASSERT_EQ(e.record.devices_size(), 1);
  EXPECT_EQ(e.record.devices(0).state(), v1::DEVICE_STATE_RUNNING_P2P);
}

TEST(JournalTest, WriteLaterLandsAfterFlushNewestFirst) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  JournalEntry e = Entry(JournalRole::kSource, "m1", JournalStage::kStarted, 1);
  for (auto phase : {v1::MIGRATION_PHASE_PRE_COPY, v1::MIGRATION_PHASE_QUIESCE,
                     v1::MIGRATION_PHASE_STOP_COPY}) {
    e.record.set_phase(phase);
    journal->WriteLater(e);
  }
  journal->Flush();
  auto unfinished = journal->Unfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].record.phase(), v1::MIGRATION_PHASE_STOP_COPY);
}

TEST(JournalTest, WriteDropsAnOlderQueuedEntryOfTheSameRow) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  // Queued and written many times over while a stage record goes in: the
  // stage record must be what stays, whichever way the writer thread and
  // Write interleave.
  for (int i = 0; i < 200; ++i) {
    const std::string id = absl::StrCat("m", i);
    JournalEntry e =
        Entry(JournalRole::kSource, id, JournalStage::kStarted, i + 1);
    journal->WriteLater(e);
    e.stage = JournalStage::kHandedOver;
    e.pending = PeerVerdict::kCommit;
    ASSERT_TRUE(journal->Write(e, Durability::kRelaxed).ok());
  }
  journal->Flush();
  auto unfinished = journal->Unfinished().value();
  ASSERT_EQ(unfinished.size(), 200u);
  for (const JournalEntry& e : unfinished) {
    EXPECT_EQ(e.stage, JournalStage::kHandedOver) << e.record.id();
  }
}

TEST(JournalTest, QueuedEntriesAreWrittenWhenTheJournalCloses) {
  TempDir tmp;
  {
    auto journal = Journal::Open(tmp.path()).value();
    for (int i = 0; i < 20; ++i) {
      journal->WriteLater(Entry(JournalRole::kDestination, absl::StrCat("m", i),
                                JournalStage::kLoaded, i + 1));
    }
  }
  auto journal = Journal::Open(tmp.path()).value();
  EXPECT_EQ(journal->Unfinished().value().size(), 20u);
}

// Polls Unfinished() until `id` is there; false after `timeout`.
bool AwaitWritten(Journal& journal, const std::string& id,
                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    absl::StatusOr<std::vector<JournalEntry>> entries = journal.Unfinished();
    if (!entries.ok()) return false;
    for (const JournalEntry& e : *entries) {
      if (e.record.id() == id) return true;
    }
    absl::SleepFor(absl::Milliseconds(2));
  } while (absl::Now() < deadline);
  return false;
}

TEST(JournalTest, HeldSnapshotsWaitForTheRelease) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  Journal::SnapshotHold hold = journal->HoldSnapshots(absl::Seconds(60));
  EXPECT_TRUE(hold.active());
  // A second, shorter hold ends first: the longer one still holds.
  Journal::SnapshotHold shorter = journal->HoldSnapshots(absl::Seconds(60));
  JournalEntry e = Entry(JournalRole::kSource, "m1", JournalStage::kStarted, 1);
  for (auto phase : {v1::MIGRATION_PHASE_PRE_COPY, v1::MIGRATION_PHASE_QUIESCE,
                     v1::MIGRATION_PHASE_STOP_COPY}) {
    e.record.set_phase(phase);
    journal->WriteLater(e);
  }
  shorter.Release();
  EXPECT_FALSE(shorter.active());
  EXPECT_FALSE(AwaitWritten(*journal, "m1", absl::Milliseconds(200)));
  // Write is not held back.
  ASSERT_TRUE(
      journal
          ->Write(Entry(JournalRole::kSource, "m2", JournalStage::kStarted, 2),
                  Durability::kRelaxed)
          .ok());
  EXPECT_TRUE(AwaitWritten(*journal, "m2", absl::Seconds(0)));
  EXPECT_FALSE(AwaitWritten(*journal, "m1", absl::Seconds(0)));
  // Moved, it still holds; released, the newest queued snapshot lands.
  Journal::SnapshotHold moved = std::move(hold);
  EXPECT_FALSE(hold.active());
  EXPECT_FALSE(AwaitWritten(*journal, "m1", absl::Milliseconds(50)));
  moved.Release();
  ASSERT_TRUE(AwaitWritten(*journal, "m1", absl::Seconds(10)));
  absl::StatusOr<std::vector<JournalEntry>> entries = journal->Unfinished();
  ASSERT_TRUE(entries.ok()) << entries.status();
  for (const JournalEntry& w : *entries) {
    if (w.record.id() == "m1") {
      EXPECT_EQ(w.record.phase(), v1::MIGRATION_PHASE_STOP_COPY);
    }
  }
}

TEST(JournalTest, ASnapshotHoldExpires) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  const absl::Time start = absl::Now();
  Journal::SnapshotHold hold = journal->HoldSnapshots(absl::Milliseconds(300));
  journal->WriteLater(
      Entry(JournalRole::kDestination, "m1", JournalStage::kLoaded, 1));
  ASSERT_TRUE(AwaitWritten(*journal, "m1", absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_TRUE(hold.active());  // expired, not released: releasing is safe
}

TEST(JournalTest, RolesAreSeparateRowsForOneId) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  ASSERT_TRUE(
      journal
          ->Write(Entry(JournalRole::kSource, "m1", JournalStage::kStarted, 1),
                  Durability::kDurable)
          .ok());
  ASSERT_TRUE(journal
                  ->Write(Entry(JournalRole::kDestination, "m1",
                                JournalStage::kLoaded, 2),
                          Durability::kDurable)
                  .ok());
  auto unfinished = journal->Unfinished().value();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].role, JournalRole::kSource);
  EXPECT_EQ(unfinished[1].role, JournalRole::kDestination);
  EXPECT_EQ(unfinished[1].stage, JournalStage::kLoaded);
}

TEST(JournalTest, HistoryIsNewestFirstAndPendingVerdictsAreSeparate) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(journal
                    ->Write(Entry(JournalRole::kSource, absl::StrCat("m", i),
                                  JournalStage::kDone, i, 100 + i),
                            Durability::kDurable)
                    .ok());
  }
  JournalEntry pending =
      Entry(JournalRole::kSource, "m4", JournalStage::kDone, 4, 104);
  pending.pending = PeerVerdict::kAbort;
  ASSERT_TRUE(journal->Write(pending, Durability::kDurable).ok());
  ASSERT_TRUE(journal
                  ->Write(Entry(JournalRole::kDestination, "d1",
                                JournalStage::kDone, 1, 200),
                          Durability::kDurable)
                  .ok());
  EXPECT_THAT(Ids(journal->History(JournalRole::kSource, 10).value()),
              ElementsAre("m4", "m3", "m2", "m1"));
  EXPECT_THAT(Ids(journal->History(JournalRole::kSource, 2).value()),
              ElementsAre("m4", "m3"));
  EXPECT_THAT(Ids(journal->History(JournalRole::kDestination, 10).value()),
              ElementsAre("d1"));
  EXPECT_THAT(Ids(journal->PendingVerdicts().value()), ElementsAre("m4"));
  EXPECT_TRUE(journal->Unfinished().value().empty());
}

TEST(JournalTest, KeepsOnlyTheNewestFinishedButNeverPendingOrRunning) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path(), {.keep_finished = 2}).value();
  ASSERT_TRUE(journal
                  ->Write(Entry(JournalRole::kSource, "running",
                                JournalStage::kStarted, 0),
                          Durability::kDurable)
                  .ok());
  JournalEntry pending =
      Entry(JournalRole::kSource, "pending", JournalStage::kDone, 0, 1);
  pending.pending = PeerVerdict::kAbort;
  ASSERT_TRUE(journal->Write(pending, Durability::kDurable).ok());
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(journal
                    ->Write(Entry(JournalRole::kSource, absl::StrCat("m", i),
                                  JournalStage::kDone, i, 10 + i),
                            Durability::kRelaxed)
                    .ok());
  }
  EXPECT_THAT(Ids(journal->History(JournalRole::kSource, 10).value()),
              ElementsAre("m4", "m3", "pending"));
  EXPECT_THAT(Ids(journal->Unfinished().value()), ElementsAre("running"));
  // The devices of pruned migrations go with them.
  auto db = SqliteDb::Open((tmp.path() / Journal::kFileName).string()).value();
  EXPECT_EQ(db->QueryText("SELECT count(*) FROM devices").value(), "4");
}

TEST(JournalTest, UsesWalAndShowsDevicesInPlainSql) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  ASSERT_TRUE(journal
                  ->Write(Entry(JournalRole::kSource, "m1",
                                JournalStage::kHandedOver, 1),
                          Durability::kDurable)
                  .ok());
  auto db = SqliteDb::Open((tmp.path() / Journal::kFileName).string()).value();
  EXPECT_EQ(db->QueryText("PRAGMA journal_mode").value(), "wal");
  EXPECT_EQ(
      db->QueryText("SELECT stage FROM migrations WHERE id = 'm1'").value(),
      "handed_over");
  EXPECT_EQ(db->QueryText("SELECT source_device_id || '>' || "
                          "target_device_id || ' ' || state FROM devices")
                .value(),
            "gpu0>gpu7 RUNNING_P2P");
}

// A durable write survives the writer's SIGKILL right after it returns.
TEST(JournalTest, DurableWriteSurvivesSigkill) {
  TempDir tmp;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto journal = Journal::Open(tmp.path());
    if (!journal.ok()) _exit(1);
    JournalEntry e =
        Entry(JournalRole::kSource, "m1", JournalStage::kHandedOver, 1);
    if (!(*journal)->Write(e, Durability::kDurable).ok()) _exit(2);
    raise(SIGKILL);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  auto journal = Journal::Open(tmp.path()).value();
  auto unfinished = journal->Unfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].stage, JournalStage::kHandedOver);
}

TEST(JournalTest, NotAJournalIsRefused) {
  TempDir tmp;
  std::ofstream(tmp.path() / Journal::kFileName) << std::string(4096, 'x');
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(tmp.path());
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kDataLoss)
      << journal.status();
  EXPECT_NE(journal.status().message().find("journal.db"), std::string::npos);
}

TEST(JournalTest, NewerSchemaIsRefused) {
  TempDir tmp;
  {
    auto db =
        SqliteDb::Open((tmp.path() / Journal::kFileName).string()).value();
    ASSERT_TRUE(db->Exec("PRAGMA user_version = 99").ok());
  }
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(tmp.path());
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(journal.status().message().find("version 99"), std::string::npos);
}

TEST(JournalTest, DamagedRecordIsReportedWithItsId) {
  TempDir tmp;
  auto journal = Journal::Open(tmp.path()).value();
  ASSERT_TRUE(
      journal
          ->Write(Entry(JournalRole::kSource, "m1", JournalStage::kStarted, 1),
                  Durability::kDurable)
          .ok());
  auto db = SqliteDb::Open((tmp.path() / Journal::kFileName).string()).value();
  ASSERT_TRUE(db->Exec("UPDATE migrations SET record = x'ffff'").ok());
  absl::StatusOr<std::vector<JournalEntry>> unfinished = journal->Unfinished();
  ASSERT_EQ(unfinished.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(unfinished.status().message().find("migration m1"),
            std::string::npos)
      << unfinished.status();
}

}  // namespace
}  // namespace vfiomig
