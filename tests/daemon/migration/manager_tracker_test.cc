#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "daemon/migration/migration_tracker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using Result = MigrationSubscription::Result;

v1::Migration Initial() {
  v1::Migration m;
  m.set_id("m-1");
  m.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  m.set_phase(v1::MIGRATION_PHASE_PLANNING);
  return m;
}

// Every event currently queued, without waiting.
std::vector<v1::MigrationEvent> Drain(MigrationSubscription& sub,
                                      bool* ended = nullptr) {
  std::vector<v1::MigrationEvent> events;
  v1::MigrationEvent e;
  for (;;) {
    const Result r = sub.Next(&e, absl::ZeroDuration());
    if (r == Result::kEvent) {
      events.push_back(e);
      continue;
    }
    if (ended != nullptr) *ended = r == Result::kEnded;
    return events;
  }
}

std::vector<std::string> Messages(const std::vector<v1::MigrationEvent>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.message());
  return out;
}

void SetPhase(MigrationTracker& t, v1::MigrationPhase phase,
              const std::string& message) {
  t.Publish([&](v1::Migration& m) { m.set_phase(phase); }, EventInfo(message));
}

TEST(MigrationTrackerTest, WatcherGetsEveryEventInOrderThenTheEnd) {
  MigrationTracker tracker(Initial());
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  SetPhase(tracker, v1::MIGRATION_PHASE_PREPARING, "a");
  tracker.Publish([](v1::Migration&) {},
                  EventInfo("b", 2, "p2p-quiesce", true));
  tracker.Finish(
      [](v1::Migration& m) {
        m.set_outcome(v1::MIGRATION_OUTCOME_SUCCEEDED);
        m.set_phase(v1::MIGRATION_PHASE_DONE);
      },
      EventInfo("done"));
  bool ended = false;
  const std::vector<v1::MigrationEvent> events = Drain(*sub, &ended);
  EXPECT_THAT(Messages(events),
              ::testing::ElementsAre("watching", "a", "b", "done"));
  EXPECT_TRUE(ended);
  EXPECT_EQ(events[1].migration().phase(), v1::MIGRATION_PHASE_PREPARING);
  EXPECT_EQ(events[2].wave(), 2);
  EXPECT_EQ(events[2].wave_phase(), "p2p-quiesce");
  EXPECT_TRUE(events[2].warning());
  EXPECT_EQ(events[3].migration().outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED);
  // Nothing changes after the end.
  SetPhase(tracker, v1::MIGRATION_PHASE_QUIESCE, "late");
  EXPECT_EQ(tracker.Get().phase(), v1::MIGRATION_PHASE_DONE);
}

TEST(MigrationTrackerTest, LateWatcherGetsTheReplayThenTheCurrentState) {
  MigrationTracker tracker(Initial());
  SetPhase(tracker, v1::MIGRATION_PHASE_PREPARING, "a");
  SetPhase(tracker, v1::MIGRATION_PHASE_PRE_COPY, "b");
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  const std::vector<v1::MigrationEvent> events = Drain(*sub);
  EXPECT_THAT(Messages(events), ::testing::ElementsAre("a", "b", "watching"));
  EXPECT_EQ(events.back().migration().phase(), v1::MIGRATION_PHASE_PRE_COPY);
}

TEST(MigrationTrackerTest, ReplayIsBounded) {
  MigrationTracker tracker(Initial(), {.replay_events = 3});
  for (int i = 0; i < 10; ++i) {
    tracker.Publish([](v1::Migration&) {}, EventInfo(std::to_string(i)));
  }
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  EXPECT_THAT(Messages(Drain(*sub)),
              ::testing::ElementsAre("7", "8", "9", "watching"));
}

TEST(MigrationTrackerTest, WatcherOfAFinishedMigrationGetsTheFinalEvent) {
  MigrationTracker tracker(Initial());
  SetPhase(tracker, v1::MIGRATION_PHASE_PREPARING, "a");
  tracker.Finish([](v1::Migration&) {}, EventInfo("gave up"));
  // An outcome left IN_PROGRESS becomes FAILED: finished means final.
  EXPECT_EQ(tracker.Get().outcome(), v1::MIGRATION_OUTCOME_FAILED);
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  bool ended = false;
  EXPECT_THAT(Messages(Drain(*sub, &ended)), ::testing::ElementsAre("gave up"));
  EXPECT_TRUE(ended);
}

TEST(MigrationTrackerTest, ProgressIsRateLimited) {
  MigrationTracker tracker(Initial(), {.progress_interval = absl::Hours(1)});
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  tracker.Publish([](v1::Migration&) {}, EventInfo("started"));
  Drain(*sub);
  for (int i = 1; i <= 100; ++i) {
    tracker.Progress([&](v1::Migration& m) { m.set_bytes_sent(i); }, "bytes");
  }
  // The state always moves; events do not, within the interval.
  EXPECT_EQ(tracker.Get().bytes_sent(), 100u);
  EXPECT_TRUE(Drain(*sub).empty());
  // The next real event carries the latest bytes.
  tracker.Publish([](v1::Migration&) {}, EventInfo("x"));
  const std::vector<v1::MigrationEvent> events = Drain(*sub);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].migration().bytes_sent(), 100u);
}

TEST(MigrationTrackerTest, QueuedProgressIsCoalesced) {
  MigrationTracker tracker(Initial(),
                           {.progress_interval = absl::ZeroDuration()});
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  for (int i = 1; i <= 50; ++i) {
    tracker.Progress([&](v1::Migration& m) { m.set_bytes_sent(i); }, "bytes");
  }
  const std::vector<v1::MigrationEvent> events = Drain(*sub);
  // "watching" is a progress event too: all of them collapse into one,
  // the newest.
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].migration().bytes_sent(), 50u);
  EXPECT_EQ(sub->dropped(), 0u);
}

TEST(MigrationTrackerTest, SlowWatcherLosesOldEventsButNeverTheFinalOne) {
  MigrationTracker tracker(Initial(),
                           {.queue_capacity = 4, .replay_events = 0});
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  for (int i = 0; i < 20; ++i) {
    tracker.Publish([](v1::Migration&) {}, EventInfo(std::to_string(i)));
  }
  tracker.Finish(
      [](v1::Migration& m) { m.set_outcome(v1::MIGRATION_OUTCOME_FAILED); },
      EventInfo("final"));
  bool ended = false;
  const std::vector<std::string> messages = Messages(Drain(*sub, &ended));
  EXPECT_TRUE(ended);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.back(), "final");
  // The newest events survive, in order, and the final one on top of the
  // queue's capacity.
  EXPECT_THAT(messages,
              ::testing::ElementsAre("16", "17", "18", "19", "final"));
  EXPECT_GT(sub->dropped(), 0u);
}

TEST(MigrationTrackerTest, ProgressIsDroppedBeforeOtherEvents) {
  MigrationTracker tracker(Initial(),
                           {.progress_interval = absl::ZeroDuration(),
                            .queue_capacity = 3,
                            .replay_events = 0});
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  // Queue: [watching(progress)]
  tracker.Publish([](v1::Migration&) {}, EventInfo("a"));
  tracker.Publish([](v1::Migration&) {}, EventInfo("b"));
  // Full: the progress event goes, not "a".
  tracker.Publish([](v1::Migration&) {}, EventInfo("c"));
  EXPECT_THAT(Messages(Drain(*sub)), ::testing::ElementsAre("a", "b", "c"));
}

TEST(MigrationTrackerTest, NextTimesOutAndWaitFinishedWaits) {
  MigrationTracker tracker(Initial());
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  Drain(*sub);
  v1::MigrationEvent e;
  EXPECT_EQ(sub->Next(&e, absl::Milliseconds(10)), Result::kTimeout);
  EXPECT_FALSE(tracker.WaitFinished(absl::Now() + absl::Milliseconds(10)));
  std::thread finisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    tracker.Finish(
        [](v1::Migration& m) {
          m.set_outcome(v1::MIGRATION_OUTCOME_CANCELLED);
        },
        EventInfo("cancelled"));
  });
  EXPECT_EQ(sub->Next(&e, absl::Seconds(10)), Result::kEvent);
  EXPECT_EQ(e.message(), "cancelled");
  EXPECT_EQ(sub->Next(&e, absl::Seconds(10)), Result::kEnded);
  EXPECT_TRUE(tracker.WaitFinished(absl::Now() + absl::Seconds(10)));
  EXPECT_TRUE(tracker.finished());
  finisher.join();
}

TEST(MigrationTrackerTest, AbandonedWatchersAreForgotten) {
  MigrationTracker tracker(Initial());
  for (int i = 0; i < 100; ++i) tracker.Subscribe();
  // Sends to nobody and does not crash.
  tracker.Publish([](v1::Migration&) {}, EventInfo("a"));
  std::unique_ptr<MigrationSubscription> sub = tracker.Subscribe();
  EXPECT_FALSE(Drain(*sub).empty());
}

}  // namespace
}  // namespace vfiomig
