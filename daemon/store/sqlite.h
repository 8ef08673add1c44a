// A thin RAII layer over SQLite's C API (Debian's libsqlite3-dev): one
// connection, prepared statements, and errors as absl::Status naming the
// SQL and SQLite's message. No policy: durability settings, the schema and
// transactions belong to the caller (journal.h).
//
// Not thread-safe: a SqliteDb and its statements are used by one thread at
// a time (the Journal holds a mutex around them).
#ifndef VFIOMIG_DAEMON_STORE_SQLITE_H_
#define VFIOMIG_DAEMON_STORE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace vfiomig {

class SqliteStatement;

class SqliteDb {
 public:
  // Opens (creating if needed) the database file at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(
      const std::string& path);
  ~SqliteDb();

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  const std::string& path() const { return path_; }

  // Runs one or more statements that return no rows the caller needs.
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<SqliteStatement> Prepare(std::string_view sql);
  // The first column of the first row of `sql`, as text ("" when no row).
  absl::StatusOr<std::string> QueryText(std::string_view sql);

  // `what` and SQLite's last error on this connection.
  absl::Status Error(std::string_view what, int code) const;

 private:
  SqliteDb(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  std::string path_;
  sqlite3* db_;
};

// A prepared statement. Bind parameters are 1-based, as in SQLite.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  ~SqliteStatement();

  void BindText(int index, std::string_view value);
  void BindBlob(int index, std::string_view value);
  void BindInt(int index, int64_t value);

  // Steps once: true with a row to read, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows, then resets it for reuse.
  absl::Status Run();
  // Ready to bind and run again.
  void Reset();

  std::string ColumnText(int index) const;
  std::string ColumnBlob(int index) const;
  int64_t ColumnInt(int index) const;

 private:
  friend class SqliteDb;
  SqliteStatement(const SqliteDb* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

  const SqliteDb* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_STORE_SQLITE_H_
