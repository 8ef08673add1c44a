#include "daemon/migration/migration_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "daemon/metrics/metrics.h"

namespace vfiomig {

struct MigrationTracker::Queue {
  using Item = MigrationTracker::Item;

  explicit Queue(size_t capacity) : capacity(std::max<size_t>(capacity, 2)) {}

  // Called with the tracker's lock held: events enter in tracker order.
  void Push(Item item) {
    absl::MutexLock lock(&mu);
    if (closed) return;
    if (item.progress && !items.empty() && items.back().progress) {
      items.back() = std::move(item);
      return;
    }
    if (!item.final && items.size() >= capacity) {
      auto victim = std::find_if(items.begin(), items.end(),
                                 [](const Item& i) { return i.progress; });
      if (victim == items.end()) victim = items.begin();
      items.erase(victim);
      ++dropped;
    }
    if (item.final) closed = true;
    items.push_back(std::move(item));
  }

  const size_t capacity;
  mutable absl::Mutex mu;
  std::deque<Item> items ABSL_GUARDED_BY(mu);
  // No more events will be pushed (the final one is queued or delivered).
  bool closed ABSL_GUARDED_BY(mu) = false;
  uint64_t dropped ABSL_GUARDED_BY(mu) = 0;
};

bool IsFinalOutcome(v1::MigrationOutcome outcome) {
  return outcome == v1::MIGRATION_OUTCOME_SUCCEEDED ||
         outcome == v1::MIGRATION_OUTCOME_FAILED ||
         outcome == v1::MIGRATION_OUTCOME_CANCELLED;
}

std::string OutcomeLabel(v1::MigrationOutcome outcome) {
  switch (outcome) {
    case v1::MIGRATION_OUTCOME_SUCCEEDED:
      return "succeeded";
    case v1::MIGRATION_OUTCOME_CANCELLED:
      return "cancelled";
    default:
      return "failed";
  }
}

MigrationTracker::MigrationTracker(v1::Migration initial,
                                   TrackerOptions options)
    : id_(initial.id()), options_(options), migration_(std::move(initial)) {}

MigrationTracker::~MigrationTracker() = default;

std::shared_ptr<MigrationTracker> MigrationTracker::Finished(
    v1::Migration record, TrackerOptions options) {
  auto tracker = std::make_shared<MigrationTracker>(std::move(record), options);
  tracker->Finish([](v1::Migration&) {},
                  EventInfo("finished before the daemon last started "
                            "(from the journal)"));
  return tracker;
}

void MigrationTracker::SetSink(Sink sink) {
  absl::MutexLock lock(&mu_);
  sink_ = std::move(sink);
}

v1::Migration MigrationTracker::Get() const {
  absl::MutexLock lock(&mu_);
  return migration_;
}

bool MigrationTracker::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

void MigrationTracker::Publish(Mutation update, const EventInfo& event) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  update(migration_);
  if (sink_) sink_(migration_, /*final=*/false);
  SendLocked(event, /*progress=*/false, /*final=*/false);
}

void MigrationTracker::Progress(Mutation update, const std::string& message) {
  Progress(update, EventInfo(message));
}

void MigrationTracker::Progress(Mutation update, const EventInfo& event) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  update(migration_);
  if (absl::Now() - last_event_ < options_.progress_interval) return;
  SendLocked(event, /*progress=*/true,
             /*final=*/false);
}

void MigrationTracker::Finish(Mutation update, const EventInfo& event) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  update(migration_);
  if (!IsFinalOutcome(migration_.outcome())) {
    migration_.set_outcome(v1::MIGRATION_OUTCOME_FAILED);
  }
  finished_ = true;
  if (sink_) sink_(migration_, /*final=*/true);
  // Trackers are the source side's migrations.
  Metrics().MigrationFinished(MetricsRole::kSource,
                              OutcomeLabel(migration_.outcome()));
  SendLocked(event, /*progress=*/false, /*final=*/true);
  watchers_.clear();
}

bool MigrationTracker::WaitFinished(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(&finished_), deadline);
}

std::unique_ptr<MigrationSubscription> MigrationTracker::Subscribe() {
  absl::MutexLock lock(&mu_);
  // Room for the replay, so that a new watcher loses none of it.
  auto queue = std::make_shared<Queue>(
      std::max(options_.queue_capacity, replay_.size() + 1));
  if (finished_) {
    queue->Push(final_event_);
  } else {
    for (const Item& item : replay_) queue->Push(item);
    Item now;
    *now.event.mutable_migration() = migration_;
    now.event.set_message("watching");
    now.progress = true;
    queue->Push(std::move(now));
    watchers_.push_back(queue);
  }
  return std::unique_ptr<MigrationSubscription>(
      new MigrationSubscription(std::move(queue)));
}

void MigrationTracker::SendLocked(const EventInfo& event, bool progress,
                                  bool final) {
  last_event_ = absl::Now();
  Item item;
  *item.event.mutable_migration() = migration_;
  item.event.set_message(event.message);
  item.event.set_wave(event.wave);
  item.event.set_wave_phase(event.wave_phase);
  item.event.set_warning(event.warning);
  item.progress = progress;
  item.final = final;
  if (final) {
    final_event_ = item;
    replay_.clear();
  } else if (!progress && options_.replay_events > 0) {
    if (replay_.size() >= options_.replay_events) replay_.pop_front();
    replay_.push_back(item);
  }
  auto it = watchers_.begin();
  while (it != watchers_.end()) {
    if (std::shared_ptr<Queue> queue = it->lock()) {
      queue->Push(item);
      ++it;
    } else {
      it = watchers_.erase(it);
    }
  }
}

MigrationSubscription::MigrationSubscription(
    std::shared_ptr<MigrationTracker::Queue> queue)
    : queue_(std::move(queue)) {}

MigrationSubscription::~MigrationSubscription() = default;

MigrationSubscription::Result MigrationSubscription::Next(
    v1::MigrationEvent* event, absl::Duration timeout) {
  MigrationTracker::Queue& q = *queue_;
  absl::MutexLock lock(&q.mu);
  auto ready = [&q]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(q.mu) {
    return !q.items.empty() || q.closed;
  };
  if (!q.mu.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return Result::kTimeout;
  }
  if (q.items.empty()) return Result::kEnded;
  *event = std::move(q.items.front().event);
  q.items.pop_front();
  return Result::kEvent;
}

uint64_t MigrationSubscription::dropped() const {
  absl::MutexLock lock(&queue_->mu);
  return queue_->dropped;
}

}  // namespace vfiomig
