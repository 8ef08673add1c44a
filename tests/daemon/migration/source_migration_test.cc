// Source migrations end to end, in process: a source MigrationManager over
// one set of sim devices migrates to the real PeerService of a destination
// over another set, through a real gRPC server on 127.0.0.1.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "daemon/core/fsm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/source_test_util.h"

namespace vfiomig {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::vfiomig::testing::EventLog;
using ::vfiomig::testing::TwoHostsTest;

const std::vector<std::string> kGroup = {"gpu0", "gpu1", "nic0"};

// 64 MiB in all: two PRE_COPY devices that dirty their state while running,
// and one P2P-only device. Destination devices have other seeds, so equal
// digests afterwards mean the content really moved.
constexpr char kSourceBig[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "40MiB", "dirty_bytes_per_s": "64MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "16MiB", "dirty_bytes_per_s": "8MiB"},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "8MiB"}
]})json";
constexpr char kDestinationBig[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "40MiB", "seed": 1001},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "16MiB", "seed": 1002},
  {"id": "nic9", "features": ["stop_copy", "p2p"], "state_bytes": "8MiB",
   "seed": 1003}
]})json";

// Small states; nic0 drains for 3 s on every drain arc.
constexpr char kSourceSlowDrain[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "dirty_bytes_per_s": "1MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB"},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB",
   "drain_ms": 3000}
]})json";
// The same, with a 1 s drain (it is waited out three times).
constexpr char kSourceShortDrain[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "dirty_bytes_per_s": "1MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB"},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB",
   "drain_ms": 1000}
]})json";
constexpr char kDestinationSmall[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "seed": 7},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "seed": 8},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB",
   "seed": 9}
]})json";

constexpr char kSourceFailArc[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "fail_arcs": ["PRE_COPY_P2P>STOP_COPY"]},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"}
]})json";

// gpu0's arcs take 400 ms, so a cancel lands while it enters PRE_COPY.
// gpu0's arcs are slow enough that a test acting on the PRE_COPY event
// acts before the switchover even when a loaded machine delays it by a
// second or two (its arcs to the commit point take about 3 s).
constexpr char kSourceSlowArcs[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB", "arc_latency_ms": 1000},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "2MiB"},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"}
]})json";

bool IsFinal(const v1::MigrationEvent& e) {
  return e.migration().outcome() != v1::MIGRATION_OUTCOME_IN_PROGRESS;
}

class SourceMigrationTest : public TwoHostsTest {};

TEST_F(SourceMigrationTest, MigratesA64MiBGroupWithPrecopy) {
  MigrationOptions options;
  // Iterate until (nearly) nothing is dirty, to exercise several rounds.
  options.precopy.threshold_bytes = 1 << 20;
  SetUpHosts(kSourceBig, kDestinationBig, options);
  v1::StartMigrationRequest request = Request(kGroup, endpoint_);
  (*request.mutable_device_map())["nic0"] = "nic9";
  v1::Migration started;
  std::unique_ptr<EventLog> log = StartAndWatch(request, &started);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(started.role(), "source");
  EXPECT_EQ(started.outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(120)));

  const std::vector<v1::MigrationEvent> events = log->events();
  ASSERT_FALSE(events.empty());
  const v1::Migration& m = events.back().migration();
  ASSERT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED) << m.error();
  EXPECT_EQ(m.phase(), v1::MIGRATION_PHASE_DONE);
  EXPECT_TRUE(m.error().empty());

  // Phases in order, the switchover included.
  const std::vector<v1::MigrationPhase> phases = log->Phases();
  const std::vector<v1::MigrationPhase> expected = {
      v1::MIGRATION_PHASE_PLANNING,   v1::MIGRATION_PHASE_PREPARING,
      v1::MIGRATION_PHASE_PRE_COPY,   v1::MIGRATION_PHASE_SWITCHOVER,
      v1::MIGRATION_PHASE_QUIESCE,    v1::MIGRATION_PHASE_STOP_COPY,
      v1::MIGRATION_PHASE_COMMITTING, v1::MIGRATION_PHASE_DONE};
  EXPECT_EQ(phases, expected);

  // Per-device bytes, visible while it ran and in the final resource.
  bool saw_device_bytes = false;
  for (const v1::MigrationEvent& e : events) {
    if (!IsFinal(e) && e.migration().devices_size() == 3 &&
        e.migration().devices(0).bytes_sent() > 0) {
      saw_device_bytes = true;
    }
  }
  EXPECT_TRUE(saw_device_bytes);
  ASSERT_EQ(m.devices_size(), 3);
  uint64_t total = 0;
  for (const v1::MigrationDevice& d : m.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_STOP) << d.source_device_id();
    EXPECT_GT(d.bytes_sent(), 0u) << d.source_device_id();
    EXPECT_EQ(d.bytes_sent(), d.pre_copy_bytes() + d.stop_copy_bytes());
    total += d.bytes_sent();
  }
  EXPECT_EQ(m.bytes_sent(), total);
  EXPECT_GE(total, uint64_t{64} << 20);
  EXPECT_GE(m.devices(0).pre_copy_rounds(), 1u);
  EXPECT_GT(m.devices(0).pre_copy_bytes(), uint64_t{30} << 20);
  EXPECT_EQ(m.devices(2).pre_copy_bytes(), 0u);  // nic0: no PRE_COPY
  EXPECT_EQ(m.devices(2).target_device_id(), "nic9");
  EXPECT_GT(m.throughput_mib_s(), 0);
  EXPECT_GT(m.downtime_ms(), 0u);
  // The same window to the microsecond; downtime_ms truncates it.
  EXPECT_GE(m.downtime_us(), m.downtime_ms() * 1000);
  EXPECT_LT(m.downtime_us(), (m.downtime_ms() + 1) * 1000);
  EXPECT_GT(m.predicted_downtime_ms(), 0u);
  EXPECT_GE(m.finished_unix_ms(), m.started_unix_ms());
  std::printf(
      "64 MiB migration: %.1f MiB/s, downtime %llu ms (predicted "
      "%llu ms), %llu bytes\n",
      m.throughput_mib_s(), static_cast<unsigned long long>(m.downtime_ms()),
      static_cast<unsigned long long>(m.predicted_downtime_ms()),
      static_cast<unsigned long long>(m.bytes_sent()));
  RecordProperty("throughput_mib_s", std::to_string(m.throughput_mib_s()));
  RecordProperty("downtime_ms", std::to_string(m.downtime_ms()));

  // The content moved: stopped source devices no longer dirty theirs.
  EXPECT_EQ(DigestOf(*destination_, "gpu0"), DigestOf(*source_, "gpu0"));
  EXPECT_EQ(DigestOf(*destination_, "gpu1"), DigestOf(*source_, "gpu1"));
  EXPECT_EQ(DigestOf(*destination_, "nic9"), DigestOf(*source_, "nic0"));
  for (const std::string& id : kGroup) {
    EXPECT_EQ(StateOf(*source_, id), DeviceState::STOP) << id;
  }
  for (const char* id : {"gpu0", "gpu1", "nic9"}) {
    EXPECT_EQ(StateOf(*destination_, id), DeviceState::RUNNING) << id;
  }
  // The leases are gone: the source devices are free again.
  EXPECT_FALSE(source_leases_.Owner("gpu0").has_value());
  absl::StatusOr<v1::Migration> got = manager_->Get(started.id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED);
}

TEST_F(SourceMigrationTest, LateDrainUnderSlaFailsFastAndRollsBack) {
  SetUpHosts(kSourceSlowDrain, kDestinationSmall);
  v1::StartMigrationRequest request = Request(kGroup, endpoint_);
  request.set_policy(v1::DEADLINE_POLICY_SLA);
  request.set_drain_timeout_ms(300);
  v1::Migration started;
  const absl::Time start = absl::Now();
  std::unique_ptr<EventLog> log = StartAndWatch(request, &started);
  ASSERT_NE(log, nullptr);

  // The failure is known long before nic0's 3 s drain returns.
  std::optional<v1::MigrationEvent> failing = log->WaitFor(
      [](const v1::MigrationEvent& e) {
        return e.migration().phase() == v1::MIGRATION_PHASE_ROLLING_BACK;
      },
      absl::Seconds(30));
  ASSERT_TRUE(failing.has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(failing->migration().failed_device_id(), "nic0");
  EXPECT_EQ(failing->migration().failed_arc(), "RUNNING>RUNNING_P2P");
  EXPECT_THAT(failing->migration().error(), HasSubstr("nic0"));

  ASSERT_TRUE(log->WaitEnded(absl::Seconds(30)));
  const v1::Migration m = log->events().back().migration();
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(m.phase(), v1::MIGRATION_PHASE_DONE);
  EXPECT_EQ(m.failed_device_id(), "nic0");
  EXPECT_EQ(m.failed_arc(), "RUNNING>RUNNING_P2P");
  for (const v1::MigrationDevice& d : m.devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.source_device_id();
  }
  EXPECT_TRUE(
      WaitAllIn(*source_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  EXPECT_TRUE(
      WaitAllIn(*destination_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  // Everything is back within a few seconds of the start.
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST_F(SourceMigrationTest, LateDrainUnderMandatoryWarnsAndSucceeds) {
  SetUpHosts(kSourceShortDrain, kDestinationSmall);
  v1::StartMigrationRequest request = Request(kGroup, endpoint_);
  request.set_policy(v1::DEADLINE_POLICY_MANDATORY);
  request.set_drain_timeout_ms(300);
  v1::Migration started;
  std::unique_ptr<EventLog> log = StartAndWatch(request, &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(60)));
  const std::vector<v1::MigrationEvent> events = log->events();
  const v1::Migration& m = events.back().migration();
  ASSERT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED) << m.error();
  EXPECT_EQ(m.policy(), v1::DEADLINE_POLICY_MANDATORY);
  bool warned = false;
  for (const std::string& w : m.warnings()) {
    warned |= absl::StrContains(w, "nic0") && absl::StrContains(w, "late") &&
              absl::StrContains(w, "RUNNING>RUNNING_P2P");
  }
  EXPECT_TRUE(warned) << "warnings: " << m.ShortDebugString();
  EXPECT_TRUE(std::any_of(
      events.begin(), events.end(), [](const v1::MigrationEvent& e) {
        return e.warning() && absl::StrContains(e.message(), "late");
      }));
  // The drains (into RUNNING_P2P and twice into STOP) were waited out.
  EXPECT_GE(m.downtime_ms(), 2000u);
  EXPECT_EQ(DigestOf(*destination_, "nic0"), DigestOf(*source_, "nic0"));
  EXPECT_TRUE(
      WaitAllIn(*destination_, kGroup, DeviceState::RUNNING, absl::Seconds(1)));
}

TEST_F(SourceMigrationTest, FailedSourceArcRollsBothSidesBack) {
  SetUpHosts(kSourceFailArc, kDestinationSmall);
  v1::Migration started;
  std::unique_ptr<EventLog> log =
      StartAndWatch(Request(kGroup, endpoint_), &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(30)));
  const v1::Migration m = log->events().back().migration();
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_EQ(m.failed_device_id(), "gpu1");
  EXPECT_EQ(m.failed_arc(), "PRE_COPY_P2P>STOP_COPY");
  EXPECT_THAT(m.error(), HasSubstr("gpu1"));
  // It failed after the switchover, so the devices were already quiesced.
  EXPECT_THAT(log->Phases(), Contains(v1::MIGRATION_PHASE_SWITCHOVER));
  EXPECT_THAT(log->Phases(), Contains(v1::MIGRATION_PHASE_ROLLING_BACK));
  EXPECT_TRUE(
      WaitAllIn(*source_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  EXPECT_TRUE(
      WaitAllIn(*destination_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  EXPECT_FALSE(source_leases_.Owner("gpu1").has_value());
  EXPECT_FALSE(destination_leases_.Owner("gpu1").has_value());
}

TEST_F(SourceMigrationTest, CancelDuringPrecopyRollsBack) {
  SetUpHosts(kSourceSlowArcs, kDestinationSmall);
  v1::Migration started;
  std::unique_ptr<EventLog> log =
      StartAndWatch(Request(kGroup, endpoint_), &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitFor(
      [](const v1::MigrationEvent& e) {
        return e.migration().phase() == v1::MIGRATION_PHASE_PRE_COPY;
      },
      absl::Seconds(30)));
  absl::StatusOr<v1::Migration> cancelled =
      manager_->Cancel(started.id(), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->outcome(), v1::MIGRATION_OUTCOME_CANCELLED);
  EXPECT_EQ(cancelled->phase(), v1::MIGRATION_PHASE_DONE);
  EXPECT_THAT(cancelled->error(), HasSubstr("cancel"));
  for (const v1::MigrationDevice& d : cancelled->devices()) {
    EXPECT_EQ(d.state(), v1::DEVICE_STATE_RUNNING) << d.source_device_id();
  }
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(10)));
  EXPECT_THAT(log->Phases(),
              ::testing::Not(Contains(v1::MIGRATION_PHASE_SWITCHOVER)));
  EXPECT_TRUE(
      WaitAllIn(*source_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  EXPECT_TRUE(
      WaitAllIn(*destination_, kGroup, DeviceState::RUNNING, absl::Seconds(5)));
  // A second cancel finds it finished.
  absl::StatusOr<v1::Migration> again =
      manager_->Cancel(started.id(), absl::Now() + absl::Seconds(1));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SourceMigrationTest, LostDestinationFailsAndRollsBack) {
  SetUpHosts(kSourceSlowArcs, kDestinationSmall);
  v1::Migration started;
  std::unique_ptr<EventLog> log =
      StartAndWatch(Request(kGroup, endpoint_), &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitFor(
      [](const v1::MigrationEvent& e) {
        return e.migration().phase() == v1::MIGRATION_PHASE_PRE_COPY;
      },
      absl::Seconds(30)));
  // The destination daemon goes away mid-migration (its calls are cut).
  server_->Shutdown(absl::ZeroDuration());
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(60)));
  const v1::Migration m = log->events().back().migration();
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED) << m.error();
  EXPECT_FALSE(m.error().empty());
  // Generous: the rollback walks gpu0's slow arcs back, and a loaded
  // machine stretches them.
  EXPECT_TRUE(
      WaitAllIn(*source_, kGroup, DeviceState::RUNNING, absl::Seconds(30)));
  // The destination noticed its broken streams and rolled back by itself.
  EXPECT_TRUE(WaitAllIn(*destination_, kGroup, DeviceState::RUNNING,
                        absl::Seconds(30)));
}

TEST_F(SourceMigrationTest, UnreachableDestinationFailsAtPrepare) {
  SetUpHosts(kSourceFailArc, "");
  v1::Migration started;
  // Port 1 on loopback: nothing listens there.
  std::unique_ptr<EventLog> log =
      StartAndWatch(Request(kGroup, "127.0.0.1:1"), &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(30)));
  const std::vector<v1::MigrationEvent> events = log->events();
  const v1::Migration& m = events.back().migration();
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_THAT(m.error(), HasSubstr("Prepare"));
  EXPECT_THAT(m.error(), HasSubstr("127.0.0.1:1"));
  EXPECT_TRUE(m.failed_arc().empty());
  // No arc ran.
  for (const v1::MigrationEvent& e : events)
    EXPECT_EQ(e.wave(), 0) << e.message();
  EXPECT_THAT(log->Phases(),
              ::testing::Not(Contains(v1::MIGRATION_PHASE_PRE_COPY)));
  for (const std::string& id : kGroup) {
    EXPECT_EQ(StateOf(*source_, id), DeviceState::RUNNING) << id;
  }
}

TEST_F(SourceMigrationTest, RefusedPrepareNamesTheDeviceAndTouchesNothing) {
  SetUpHosts(kSourceFailArc, kDestinationSmall);
  v1::StartMigrationRequest request = Request(kGroup, endpoint_);
  (*request.mutable_device_map())["gpu1"] = "missing7";
  v1::Migration started;
  std::unique_ptr<EventLog> log = StartAndWatch(request, &started);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->WaitEnded(absl::Seconds(30)));
  const v1::Migration m = log->events().back().migration();
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_THAT(m.error(), HasSubstr("missing7"));
  EXPECT_EQ(m.failed_device_id(), "gpu1");
  EXPECT_FALSE(m.devices(1).error().empty());
  for (const std::string& id : kGroup) {
    EXPECT_EQ(StateOf(*source_, id), DeviceState::RUNNING) << id;
    EXPECT_EQ(StateOf(*destination_, id), DeviceState::RUNNING) << id;
  }
  EXPECT_FALSE(destination_leases_.Owner("gpu0").has_value());
}

}  // namespace
}  // namespace vfiomig
