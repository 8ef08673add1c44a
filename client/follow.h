// Following a migration to its end: the WatchMigration loop shared by
// `migrate` and `watch`, what Ctrl-C does meanwhile, and asking the
// destination daemon what state it left its devices in.
#ifndef VFIOMIG_CLIENT_FOLLOW_H_
#define VFIOMIG_CLIENT_FOLLOW_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/common.h"
#include "client/migration_format.h"
#include "client/progress_view.h"
#include "client/rpc.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

// What the first Ctrl-C does; a second one always stops waiting.
enum class InterruptAction {
  // `migrate`: the CLI started the migration, so Ctrl-C means "stop it":
  // CancelMigration, then keep watching the rollback.
  kCancel,
  // `watch`: only an observer; Ctrl-C detaches and the migration goes on.
  kDetach,
};

struct FollowResult {
  v1::Migration migration;
  // The migration had failed (or was cancelled) and was still rolling back
  // when the CLI stopped waiting: some device's arc had not returned within
  // the grace period (a hung drain), so `migration` is not final.
  bool rollback_pending = false;
};

// How long the CLI keeps watching a rollback once the migration has failed.
// A drain the kernel cannot interrupt may hold the rollback for as long as
// it hangs (forever, for a page request nobody answers); under the SLA
// policy the caller needs the verdict now, not when the device returns.
inline constexpr absl::Duration kRollbackGrace = absl::Seconds(1);

// One followed migration: the progress view (none with --json), the open
// watch stream, and the interrupt handling, which runs on another thread
// and therefore shares this state under a lock.
class Follower {
 public:
  // `view` may be null: then notes go to stderr as "vfio-migctl: ..." lines.
  Follower(const ControlClient* client, std::unique_ptr<ProgressView> view,
           InterruptAction action,
           absl::Duration rollback_grace = kRollbackGrace);
  // Stops an outstanding cancel request and waits for its thread.
  ~Follower();

  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // Known once StartMigration answered; an interrupt before that is held
  // and acted on here.
  void SetMigrationId(const std::string& id);
  // Called by the InterruptWatcher thread.
  void OnInterrupt(int count);

  // Watches until the migration ends and returns its final state, or,
  // once it has failed, until the rollback grace runs out. Errors: the
  // daemon's (unknown id, unreachable) or Cancelled when the user stopped
  // waiting. A stream that ends early (daemon restart, proxy timeout) is
  // re-opened a few times while the migration is still known.
  absl::StatusOr<FollowResult> Run();

  // Draws the view's final picture (no-op without a view).
  void FinishView();
  // Seconds since the follower was created, for the view's stamps.
  double Now() const;
  // A line for the user, above the live view or on stderr.
  void Note(std::string_view line);
  ProgressView* view() { return view_.get(); }
  // True when the user asked to cancel (the outcome may still be SUCCEEDED:
  // the request can arrive too late).
  bool cancel_requested() const;

 private:
  void NoteLocked(std::string_view line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartCancelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartGraceTimerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ControlClient* client_;
  const std::chrono::steady_clock::time_point start_;
  const InterruptAction action_;
  const absl::Duration rollback_grace_;

  mutable absl::Mutex mu_;
  std::unique_ptr<ProgressView> view_ ABSL_GUARDED_BY(mu_);
  std::string id_ ABSL_GUARDED_BY(mu_);
  MigrationWatch* watch_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool detached_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  // Run has returned; the grace timer stops waiting.
  bool run_done_ ABSL_GUARDED_BY(mu_) = false;
  // The grace ran out with the rollback still going.
  bool gave_up_ ABSL_GUARDED_BY(mu_) = false;
  std::thread grace_thread_;
  // CancelMigration blocks until the rollback is done; it runs on its own
  // thread so that the watch keeps showing the rollback meanwhile.
  grpc::ClientContext cancel_context_;
  std::atomic<bool> cancel_done_{false};
  std::thread cancel_thread_;
};

// Device states on the destination daemon at `target`, for the report of a
// migration this daemon was the source of. Never fails: when the peer
// cannot be asked, `known` is false and the reason says why. Connecting is
// bounded by min(--timeout, 3 s) so a dead destination costs little.
PeerStates QueryPeerStates(const v1::Migration& migration,
                           const std::string& target,
                           const GlobalOptions& global);

// The width of the terminal on stdout, or 100.
int TerminalColumns();

// Prints the final report (JSON or human summary plus a stderr line when it
// did not succeed) and returns the exit code. `cancelled` says whether a
// pending rollback (see FollowResult) belongs to a cancel (exit 5) or a
// failure (exit 4).
int ReportFinal(const FollowResult& result, const PeerStates& peer,
                bool cancelled, bool json, std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_FOLLOW_H_
