// MigrationTracker: one migration's Migration resource and its event feed.
//
// The migration's thread is the only writer: it applies changes (phase,
// per-device states and bytes, warnings, the outcome) through Publish,
// Progress and Finish, each of which also emits a MigrationEvent carrying
// the resource as of that change. Readers (GetMigration) take copies;
// watchers (WatchMigration) subscribe and receive every event in order.
//
// Watchers cannot slow the migration down: each has a bounded queue. Byte
// progress is rate-limited at the source (at most one progress event per
// progress_interval), a progress event replaces a progress event still
// queued behind it (the newer snapshot supersedes it), and a full queue
// drops its oldest progress event, or failing that its oldest other event.
// The final event is never dropped, and after it the subscription ends.
// Every event carries the whole resource, so a watcher that lost events
// still sees the current state.
//
// A watcher that subscribes while the migration runs first gets the last
// replay_events events again (progress events excepted), then a snapshot
// of the resource as it is, so a Watch right after Start misses nothing. A
// watcher of a finished migration gets its final event only.
//
// Thread-safe.
#ifndef VFIOMIG_DAEMON_MIGRATION_MIGRATION_TRACKER_H_
#define VFIOMIG_DAEMON_MIGRATION_MIGRATION_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

// What an event says besides the resource snapshot.
struct EventInfo {
  explicit EventInfo(std::string message, bool warning = false)
      : message(std::move(message)), warning(warning) {}
  EventInfo(std::string message, int wave, std::string wave_phase,
            bool warning = false)
      : message(std::move(message)),
        wave(wave),
        wave_phase(std::move(wave_phase)),
        warning(warning) {}

  std::string message;
  // 1-based index of the wave the event concerns in the plan's source
  // waves; 0 when none.
  int wave = 0;
  std::string wave_phase;
  bool warning = false;
};

struct TrackerOptions {
  absl::Duration progress_interval = absl::Milliseconds(100);
  // Events a watcher may have queued; at least 2.
  size_t queue_capacity = 64;
  // Events kept for replay to new watchers while the migration runs.
  size_t replay_events = 64;
};

bool IsFinalOutcome(v1::MigrationOutcome outcome);
// "succeeded", "failed", "cancelled" (the metrics' outcome label); "failed"
// for anything else.
std::string OutcomeLabel(v1::MigrationOutcome outcome);

class MigrationSubscription;

class MigrationTracker {
 public:
  using Mutation = absl::FunctionRef<void(v1::Migration&)>;
  // Receives the resource after every Publish (final=false) and after
  // Finish (final=true), under the tracker's lock and before any watcher
  // sees the event: what the journal records is never behind what the
  // control API has shown. Progress updates are not passed on.
  using Sink = std::function<void(const v1::Migration&, bool final)>;

  explicit MigrationTracker(v1::Migration initial, TrackerOptions options = {});
  // A migration that finished in an earlier life of the daemon (history
  // from the journal): Get returns `record`, a watcher gets it as the final
  // event.
  static std::shared_ptr<MigrationTracker> Finished(
      v1::Migration record, TrackerOptions options = {});
  ~MigrationTracker();

  MigrationTracker(const MigrationTracker&) = delete;
  MigrationTracker& operator=(const MigrationTracker&) = delete;

  const std::string& id() const { return id_; }
  // Set once, before the first Publish.
  void SetSink(Sink sink);
  v1::Migration Get() const;
  bool finished() const;

  // Applies `update` and sends an event to every watcher. Ignored after
  // Finish.
  void Publish(Mutation update, const EventInfo& event);
  // Applies `update`; sends a progress event with `message` only when the
  // last event is at least progress_interval old.
  void Progress(Mutation update, const std::string& message);
  // The same, with the event's wave.
  void Progress(Mutation update, const EventInfo& event);
  // Applies `update` (which sets the final outcome; IN_PROGRESS and
  // UNSPECIFIED become FAILED), sends the final event and ends every
  // subscription. Only the first call counts.
  void Finish(Mutation update, const EventInfo& event);

  // True once finished; false when `deadline` passed first.
  bool WaitFinished(absl::Time deadline) const;

  // A new watcher: replayed events, then the resource as it is now; for a
  // finished migration the final event, after which the subscription ends.
  std::unique_ptr<MigrationSubscription> Subscribe();

 private:
  friend class MigrationSubscription;
  struct Item {
    v1::MigrationEvent event;
    bool progress = false;
    bool final = false;
  };
  struct Queue;

  void SendLocked(const EventInfo& event, bool progress, bool final)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const TrackerOptions options_;
  mutable absl::Mutex mu_;
  v1::Migration migration_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  Sink sink_ ABSL_GUARDED_BY(mu_);
  absl::Time last_event_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Watchers that went away drop out on the next send.
  std::vector<std::weak_ptr<Queue>> watchers_ ABSL_GUARDED_BY(mu_);
  // Recent non-progress events (while running), and the final one.
  std::deque<Item> replay_ ABSL_GUARDED_BY(mu_);
  Item final_event_ ABSL_GUARDED_BY(mu_);
};

class MigrationSubscription {
 public:
  enum class Result { kEvent, kTimeout, kEnded };

  ~MigrationSubscription();
  MigrationSubscription(const MigrationSubscription&) = delete;
  MigrationSubscription& operator=(const MigrationSubscription&) = delete;

  // The next event, waiting at most `timeout` for one. kEnded once the
  // final event has been returned.
  Result Next(v1::MigrationEvent* event, absl::Duration timeout);
  // Events this watcher lost to a full queue (progress coalescing is not
  // counted: no information is lost there).
  uint64_t dropped() const;

 private:
  friend class MigrationTracker;
  explicit MigrationSubscription(
      std::shared_ptr<MigrationTracker::Queue> queue);

  std::shared_ptr<MigrationTracker::Queue> queue_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_MIGRATION_TRACKER_H_
