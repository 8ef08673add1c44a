#include "daemon/store/journal.h"

#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/engine/thread_name.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// PRAGMA user_version of the schema below. A newer daemon may add columns
// (and bump it); an older one refuses a journal it cannot read.
constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE migrations (
  role TEXT NOT NULL CHECK (role IN ('source', 'destination')),
  id TEXT NOT NULL,
  stage TEXT NOT NULL,
  pending TEXT NOT NULL,
  peer TEXT NOT NULL,
  phase TEXT NOT NULL,
  outcome TEXT NOT NULL,
  switchover TEXT NOT NULL,
  workload_paused INTEGER NOT NULL,
  -- vfiomig.v1.Workload of a source row (VMM sockets for the switchover
  -- action after a restart), serialized; empty for none.
  workload BLOB NOT NULL,
  started_unix_ms INTEGER NOT NULL,
  updated_unix_ms INTEGER NOT NULL,
  finished_unix_ms INTEGER NOT NULL,
  -- vfiomig.v1.Migration, serialized.
  record BLOB NOT NULL,
  PRIMARY KEY (role, id)
) WITHOUT ROWID;
CREATE INDEX migrations_by_stage ON migrations (role, stage, finished_unix_ms);
CREATE TABLE devices (
  role TEXT NOT NULL,
  migration_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  source_device_id TEXT NOT NULL,
  target_device_id TEXT NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (role, migration_id, position)
) WITHOUT ROWID;
)sql";

template <typename E>
absl::StatusOr<E> Parse(std::string_view text, std::string_view what,
                        std::initializer_list<E> values,
                        std::string_view (*name)(E)) {
  for (E value : values) {
    if (name(value) == text) return value;
  }
  return absl::DataLossError(
      absl::StrCat("unknown ", absl::string_view(what.data(), what.size()),
                   " '", absl::string_view(text.data(), text.size()), "'"));
}

}  // namespace

std::string_view JournalRoleName(JournalRole role) {
  return role == JournalRole::kSource ? "source" : "destination";
}

std::string_view JournalStageName(JournalStage stage) {
  switch (stage) {
    case JournalStage::kStarted:
      return "started";
    case JournalStage::kLoaded:
      return "loaded";
    case JournalStage::kHandedOver:
      return "handed_over";
    case JournalStage::kCommitted:
      return "committed";
    case JournalStage::kDone:
      return "done";
  }
  return "?";
}

std::string_view PeerVerdictName(PeerVerdict verdict) {
  switch (verdict) {
    case PeerVerdict::kNone:
      return "none";
    case PeerVerdict::kCommit:
      return "commit";
    case PeerVerdict::kAbort:
      return "abort";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(
    const std::filesystem::path& dir, JournalOptions options) {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db =
      SqliteDb::Open((dir / kFileName).string());
  if (!db.ok()) return db.status();
  std::unique_ptr<Journal> journal(new Journal(*std::move(db), options));
  absl::MutexLock lock(&journal->mu_);
  SqliteDb& sql = *journal->db_;
  // Another process holding the database (it should not: the state
  // directory is locked) gets a few seconds before writes fail.
  if (absl::Status s = sql.Exec("PRAGMA busy_timeout = 5000"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> mode = sql.QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    // "file is not a database" shows up here first.
    return absl::DataLossError(absl::StrCat(
        sql.path(),
        " is not a usable vfio-migd journal: ", mode.status().message()));
  }
  if (*mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        sql.path(), ": SQLite refused WAL mode (journal_mode is ", *mode,
        "); the state directory must be on a local file system"));
  }
  absl::StatusOr<std::string> check = sql.QueryText("PRAGMA quick_check");
  if (!check.ok() || *check != "ok") {
    return absl::DataLossError(absl::StrCat(
        sql.path(), " is damaged (quick_check: ",
        check.ok() ? *check : std::string(check.status().message()),
        "); move it away to start with an empty journal"));
  }
  absl::StatusOr<std::string> version = sql.QueryText("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version == "0") {
    if (absl::Status s = journal->CreateSchema(); !s.ok()) return s;
  } else if (*version != absl::StrCat(kSchemaVersion)) {
    return absl::FailedPreconditionError(
        absl::StrCat(sql.path(), " has journal schema version ", *version,
                     "; this vfio-migd reads version ", kSchemaVersion));
  }
  return journal;
}

absl::Status Journal::CreateSchema() {
  return db_->Exec(absl::StrCat("BEGIN IMMEDIATE;", kSchema,
                                "PRAGMA user_version = ", kSchemaVersion,
                                "; COMMIT;"));
}

absl::Status Journal::SetSync(Durability durability) {
  // FULL: the WAL is fsynced at every commit (survives power loss).
  // NORMAL: only at checkpoints (survives a crash of the process).
  const int wanted = durability == Durability::kDurable ? 2 : 1;
  if (sync_ == wanted) return absl::OkStatus();
  absl::Status s = db_->Exec(wanted == 2 ? "PRAGMA synchronous = FULL"
                                         : "PRAGMA synchronous = NORMAL");
  if (s.ok()) sync_ = wanted;
  return s;
}

Journal::~Journal() {
  std::thread writer;
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
    writer = std::move(writer_);
  }
  if (writer.joinable()) writer.join();
  Flush();
}

absl::Status Journal::Write(const JournalEntry& entry, Durability durability) {
  absl::MutexLock lock(&mu_);
  {
    absl::MutexLock queue(&queue_mu_);
    queued_.erase({entry.role, entry.record.id()});
  }
  return WriteTransaction(entry, durability);
}

void Journal::WriteLater(JournalEntry entry) {
  absl::MutexLock lock(&queue_mu_);
  if (stopping_) return;
  auto key = std::make_pair(entry.role, entry.record.id());
  queued_.insert_or_assign(std::move(key), std::move(entry));
  if (!writer_.joinable()) {
    try {
      writer_ = std::thread([this] {
        NameThisThread("migd-journal");
        WriterLoop();
      });
    } catch (const std::system_error& e) {
      // No thread: written by the next Flush, or the destructor.
      spdlog::warn("journal: no writer thread ({}); snapshots wait", e.what());
    }
  }
}

std::optional<JournalEntry> Journal::TakeQueued() {
  absl::MutexLock lock(&queue_mu_);
  if (queued_.empty()) return std::nullopt;
  auto first = queued_.begin();
  JournalEntry entry = std::move(first->second);
  queued_.erase(first);
  return entry;
}

Journal::SnapshotHold& Journal::SnapshotHold::operator=(
    SnapshotHold&& other) noexcept {
  if (this != &other) {
    Release();
    journal_ = std::exchange(other.journal_, nullptr);
    until_ = other.until_;
  }
  return *this;
}

void Journal::SnapshotHold::Release() {
  if (journal_ == nullptr) return;
  absl::MutexLock lock(&journal_->queue_mu_);
  // Holds with the same end are interchangeable: erase any one of them.
  auto it = journal_->holds_.find(until_);
  if (it != journal_->holds_.end()) journal_->holds_.erase(it);
  journal_ = nullptr;
}

Journal::SnapshotHold Journal::HoldSnapshots(absl::Duration max) {
  const absl::Time until = absl::Now() + max;
  absl::MutexLock lock(&queue_mu_);
  holds_.insert(until);
  return SnapshotHold(this, until);
}

void Journal::WriterLoop() {
  // Time alone can end a hold, so the wait also ends when the last one
  // expires and looks again.
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return stopping_ || (!queued_.empty() &&
                         (holds_.empty() || *holds_.rbegin() <= absl::Now()));
  };
  for (;;) {
    {
      absl::MutexLock lock(&queue_mu_);
      while (!ready()) {
        queue_mu_.AwaitWithDeadline(
            absl::Condition(&ready),
            holds_.empty() ? absl::InfiniteFuture() : *holds_.rbegin());
      }
      if (stopping_) return;  // The destructor flushes.
    }
    absl::MutexLock lock(&mu_);
    if (std::optional<JournalEntry> entry = TakeQueued()) WriteQueued(*entry);
  }
}

void Journal::Flush() {
  absl::MutexLock lock(&mu_);
  while (std::optional<JournalEntry> entry = TakeQueued()) {
    WriteQueued(*entry);
  }
}

void Journal::WriteQueued(const JournalEntry& entry) {
  if (absl::Status s = WriteTransaction(entry, Durability::kRelaxed); !s.ok()) {
    spdlog::warn("migration {}: journal snapshot not written: {}",
                 entry.record.id(), std::string(s.message()));
  }
}

absl::StatusOr<SqliteStatement*> Journal::Cached(
    std::optional<SqliteStatement>& slot, std::string_view sql) {
  if (!slot.has_value()) {
    absl::StatusOr<SqliteStatement> prepared = db_->Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    slot.emplace(*std::move(prepared));
  }
  return &*slot;
}

absl::Status Journal::Run(std::optional<SqliteStatement>& slot,
                          std::string_view sql) {
  absl::StatusOr<SqliteStatement*> statement = Cached(slot, sql);
  if (!statement.ok()) return statement.status();
  return (*statement)->Run();
}

absl::Status Journal::WriteTransaction(const JournalEntry& entry,
                                       Durability durability) {
  if (absl::Status s = SetSync(durability); !s.ok()) return s;
  if (absl::Status s = Run(begin_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = WriteLocked(entry);
  if (s.ok() && entry.stage == JournalStage::kDone &&
      entry.pending == PeerVerdict::kNone) {
    s = PruneLocked(entry.role);
  }
  if (s.ok()) s = Run(commit_, "COMMIT");
  if (!s.ok()) {
    // Leaves the row as it was: the caller did not get its record.
    (void)db_->Exec("ROLLBACK");
  }
  return s;
}

absl::Status Journal::WriteLocked(const JournalEntry& entry) {
  const v1::Migration& m = entry.record;
  const std::string role(JournalRoleName(entry.role));
  absl::StatusOr<SqliteStatement*> upsert = Cached(upsert_, R"sql(
INSERT INTO migrations (role, id, stage, pending, peer, phase, outcome,
    switchover, workload_paused, started_unix_ms, updated_unix_ms,
    finished_unix_ms, record, workload)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
  ON CONFLICT (role, id) DO UPDATE SET stage = ?3, pending = ?4, peer = ?5,
    phase = ?6, outcome = ?7, switchover = ?8, workload_paused = ?9,
    started_unix_ms = ?10, updated_unix_ms = ?11, finished_unix_ms = ?12,
    record = ?13, workload = ?14)sql");
  if (!upsert.ok()) return upsert.status();
  SqliteStatement& row = **upsert;
  row.BindText(1, role);
  row.BindText(2, m.id());
  row.BindText(3, JournalStageName(entry.stage));
  row.BindText(4, PeerVerdictName(entry.pending));
  row.BindText(5, m.peer());
  row.BindText(6, v1::MigrationPhase_Name(m.phase()));
  row.BindText(7, v1::MigrationOutcome_Name(m.outcome()));
  row.BindText(8, entry.switchover);
  row.BindInt(9, entry.workload_paused ? 1 : 0);
  row.BindInt(10, m.started_unix_ms());
  row.BindInt(11, absl::ToUnixMillis(absl::Now()));
  row.BindInt(12, m.finished_unix_ms());
  row.BindBlob(13, m.SerializeAsString());
  row.BindBlob(14, entry.workload.SerializeAsString());
  if (absl::Status s = row.Run(); !s.ok()) return s;

  absl::StatusOr<SqliteStatement*> clear =
      Cached(clear_devices_,
             "DELETE FROM devices WHERE role = ?1 AND migration_id = ?2");
  if (!clear.ok()) return clear.status();
  (*clear)->BindText(1, role);
  (*clear)->BindText(2, m.id());
  if (absl::Status s = (*clear)->Run(); !s.ok()) return s;
  absl::StatusOr<SqliteStatement*> insert = Cached(
      insert_device_,
      "INSERT INTO devices (role, migration_id, position, source_device_id, "
      "target_device_id, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!insert.ok()) return insert.status();
  SqliteStatement& device = **insert;
  for (int i = 0; i < m.devices_size(); ++i) {
    const v1::MigrationDevice& d = m.devices(i);
    device.BindText(1, role);
    device.BindText(2, m.id());
    device.BindInt(3, i);
    device.BindText(4, d.source_device_id());
    device.BindText(5, d.target_device_id());
    device.BindText(6, d.state_name().empty() ? "UNKNOWN" : d.state_name());
    if (absl::Status s = device.Run(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Journal::PruneLocked(JournalRole role) {
  absl::StatusOr<SqliteStatement> prune = db_->Prepare(R"sql(
DELETE FROM migrations WHERE role = ?1 AND stage = 'done' AND pending = 'none'
  AND id NOT IN (SELECT id FROM migrations
                 WHERE role = ?1 AND stage = 'done' AND pending = 'none'
                 ORDER BY finished_unix_ms DESC LIMIT ?2))sql");
  if (!prune.ok()) return prune.status();
  prune->BindText(1, JournalRoleName(role));
  prune->BindInt(2, static_cast<int64_t>(options_.keep_finished));
  if (absl::Status s = prune->Run(); !s.ok()) return s;
  absl::StatusOr<SqliteStatement> orphans = db_->Prepare(
      "DELETE FROM devices WHERE role = ?1 AND migration_id NOT IN "
      "(SELECT id FROM migrations WHERE role = ?1)");
  if (!orphans.ok()) return orphans.status();
  orphans->BindText(1, JournalRoleName(role));
  return orphans->Run();
}

absl::StatusOr<std::vector<JournalEntry>> Journal::Select(
    std::string_view where, std::string_view order, int64_t limit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<SqliteStatement> select = db_->Prepare(absl::StrCat(
      "SELECT role, id, stage, pending, switchover, workload_paused, record, "
      "workload "
      "FROM migrations WHERE ",
      absl::string_view(where.data(), where.size()), " ORDER BY ",
      absl::string_view(order.data(), order.size()), " LIMIT ?1"));
  if (!select.ok()) return select.status();
  select->BindInt(1, limit);
  std::vector<JournalEntry> entries;
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string id = select->ColumnText(1);
    auto damaged = [&](const absl::Status& why) {
      return absl::DataLossError(
          absl::StrCat(path(), ": migration ", id, ": ", why.message()));
    };
    JournalEntry entry;
    absl::StatusOr<JournalRole> role = Parse<JournalRole>(
        select->ColumnText(0), "role",
        {JournalRole::kSource, JournalRole::kDestination}, &JournalRoleName);
    absl::StatusOr<JournalStage> stage =
        Parse<JournalStage>(select->ColumnText(2), "stage",
                            {JournalStage::kStarted, JournalStage::kLoaded,
                             JournalStage::kHandedOver,
                             JournalStage::kCommitted, JournalStage::kDone},
                            &JournalStageName);
    absl::StatusOr<PeerVerdict> pending = Parse<PeerVerdict>(
        select->ColumnText(3), "pending verdict",
        {PeerVerdict::kNone, PeerVerdict::kCommit, PeerVerdict::kAbort},
        &PeerVerdictName);
    if (!role.ok()) return damaged(role.status());
    if (!stage.ok()) return damaged(stage.status());
    if (!pending.ok()) return damaged(pending.status());
    entry.role = *role;
    entry.stage = *stage;
    entry.pending = *pending;
    entry.switchover = select->ColumnText(4);
    entry.workload_paused = select->ColumnInt(5) != 0;
    if (!entry.record.ParseFromString(select->ColumnBlob(6)) ||
        entry.record.id() != id) {
      return damaged(absl::DataLossError("the record does not parse"));
    }
    if (!entry.workload.ParseFromString(select->ColumnBlob(7))) {
      return damaged(absl::DataLossError("the workload does not parse"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<JournalEntry>> Journal::Unfinished() {
  return Select("stage <> 'done'", "started_unix_ms, id", -1);
}

absl::StatusOr<std::vector<JournalEntry>> Journal::PendingVerdicts() {
  return Select("stage = 'done' AND pending <> 'none'", "started_unix_ms, id",
                -1);
}

absl::StatusOr<std::vector<JournalEntry>> Journal::History(JournalRole role,
                                                           size_t limit) {
  return Select(role == JournalRole::kSource
                    ? "stage = 'done' AND role = 'source'"
                    : "stage = 'done' AND role = 'destination'",
                "finished_unix_ms DESC, id", static_cast<int64_t>(limit));
}

}  // namespace vfiomig
