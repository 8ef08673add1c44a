// vfio-migctl's migration rendering, checked on hand-built resources: the
// JSON shape scripts rely on, the failure report (device, arc, the state
// every device was left in on both sides), exit codes, the progress bar and
// both live views (terminal redraws and plain lines), and --map validation.
#include <sstream>
#include <string>
#include <vector>

#include "client/common.h"
#include "client/migrate_command.h"
#include "client/migration_format.h"
#include "client/progress_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;

v1::MigrationDevice* AddDevice(v1::Migration& migration, const char* id,
                               v1::DeviceState state, uint64_t sent,
                               uint64_t total) {
  v1::MigrationDevice* device = migration.add_devices();
  device->set_source_device_id(id);
  device->set_target_device_id(id);
  device->set_state(state);
  device->set_bytes_sent(sent);
  device->set_bytes_total(total);
  return device;
}

v1::Migration Succeeded() {
  v1::Migration migration;
  migration.set_id("m-1");
  migration.set_role("source");
  migration.set_peer("unix:/tmp/dst.sock");
  migration.set_outcome(v1::MIGRATION_OUTCOME_SUCCEEDED);
  migration.set_phase(v1::MIGRATION_PHASE_DONE);
  migration.set_policy(v1::DEADLINE_POLICY_SLA);
  v1::MigrationDevice* gpu0 =
      AddDevice(migration, "gpu0", v1::DEVICE_STATE_STOP, 64 * kMiB, 64 * kMiB);
  gpu0->set_pre_copy_bytes(48 * kMiB);
  gpu0->set_stop_copy_bytes(16 * kMiB);
  gpu0->set_pre_copy_rounds(3);
  AddDevice(migration, "nic0", v1::DEVICE_STATE_STOP, 8 * kMiB, 8 * kMiB);
  migration.set_bytes_sent(72 * kMiB);
  migration.set_bytes_total(72 * kMiB);
  migration.set_downtime_ms(120);
  migration.set_downtime_us(120400);
  migration.set_predicted_downtime_ms(110);
  migration.set_throughput_mib_s(412.5);
  migration.set_started_unix_ms(1700000000000);
  migration.set_finished_unix_ms(1700000002500);
  return migration;
}

v1::MigrationEvent Event(v1::MigrationPhase phase, uint64_t gpu0_sent,
                         const char* message = "", int wave = 0);

v1::Migration FailedOnDrain() {
  v1::Migration migration = Succeeded();
  migration.set_outcome(v1::MIGRATION_OUTCOME_FAILED);
  migration.set_downtime_ms(0);
  migration.set_error("gpu1 RUNNING>RUNNING_P2P passed its 300 ms deadline");
  migration.set_failed_device_id("gpu1");
  migration.set_failed_arc("RUNNING>RUNNING_P2P");
  migration.mutable_devices(0)->set_state(v1::DEVICE_STATE_RUNNING);
  migration.mutable_devices(1)->set_state(v1::DEVICE_STATE_RUNNING);
  v1::MigrationDevice* gpu1 =
      AddDevice(migration, "gpu1", v1::DEVICE_STATE_RUNNING, 0, 32 * kMiB);
  gpu1->set_target_device_id("gpu7");
  gpu1->set_was_reset(true);
  gpu1->set_error("drain timed out");
  return migration;
}

PeerStates Peer(std::map<std::string, std::string> states) {
  PeerStates peer;
  peer.known = true;
  peer.states = std::move(states);
  return peer;
}

TEST(NamesTest, StripPrefixesAndKeepUnknownValues) {
  EXPECT_EQ(PhaseName(v1::MIGRATION_PHASE_PRE_COPY), "PRE_COPY");
  EXPECT_EQ(PhaseName(static_cast<v1::MigrationPhase>(99)), "UNKNOWN(99)");
  EXPECT_EQ(OutcomeName(v1::MIGRATION_OUTCOME_CANCELLED), "CANCELLED");
  EXPECT_EQ(PolicyName(v1::DEADLINE_POLICY_UNSPECIFIED), "sla");
  EXPECT_EQ(PolicyName(v1::DEADLINE_POLICY_MANDATORY), "mandatory");
}

TEST(MigrationToJsonTest, HasTheDocumentedShape) {
  const PeerStates peer = Peer({{"gpu0", "RUNNING"}, {"nic0", "RUNNING"}});
  Json json = MigrationToJson(Succeeded(), &peer);
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"id",
                                            "role",
                                            "peer",
                                            "outcome",
                                            "phase",
                                            "policy",
                                            "domain",
                                            "switchover",
                                            "drain_timeout_ms",
                                            "arc_timeout_ms",
                                            "devices",
                                            "bytes_sent",
                                            "bytes_total",
                                            "downtime_ms",
                                            "downtime_us",
                                            "predicted_downtime_ms",
                                            "throughput_mib_s",
                                            "error",
                                            "failed_device",
                                            "failed_arc",
                                            "warnings",
                                            "started_unix_ms",
                                            "finished_unix_ms",
                                            "handed_over",
                                            "running_side",
                                            "recovered",
                                            "duration_ms"}));
  EXPECT_EQ(json["outcome"], "SUCCEEDED");
  EXPECT_EQ(json["phase"], "DONE");
  EXPECT_EQ(json["downtime_ms"], 120);
  EXPECT_EQ(json["downtime_us"], 120400);
  EXPECT_EQ(json["duration_ms"], 2500);
  EXPECT_DOUBLE_EQ(json["throughput_mib_s"].get<double>(), 412.5);
  EXPECT_EQ(json["devices"][0],
            Json::parse(R"({"device": "gpu0", "target": "gpu0",
              "source_state": "STOP", "destination_state": "RUNNING",
              "bytes_sent": 67108864, "bytes_total": 67108864,
              "pre_copy_bytes": 50331648, "stop_copy_bytes": 16777216,
              "pre_copy_rounds": 3, "was_reset": false, "error": ""})"));
}

TEST(MigrationToJsonTest, LeavesUnknownStatesOutAndSaysWhy) {
  PeerStates peer;
  peer.unknown_reason = "cannot reach vfio-migd at unix:/tmp/dst.sock";
  Json json = MigrationToJson(FailedOnDrain(), &peer);
  EXPECT_EQ(json["failed_device"], "gpu1");
  EXPECT_EQ(json["failed_arc"], "RUNNING>RUNNING_P2P");
  EXPECT_EQ(json["devices"][2]["target"], "gpu7");
  EXPECT_EQ(json["devices"][2]["source_state"], "RUNNING");
  EXPECT_FALSE(json["devices"][2].contains("destination_state"));
  EXPECT_EQ(json["destination_unknown_reason"], peer.unknown_reason);
}

TEST(MigrationToJsonTest, DestinationRoleDescribesTheDestination) {
  v1::Migration migration = Succeeded();
  migration.set_role("destination");
  migration.mutable_devices(0)->set_state(v1::DEVICE_STATE_RUNNING);
  Json json = MigrationToJson(migration);
  EXPECT_EQ(json["devices"][0]["destination_state"], "RUNNING");
  EXPECT_FALSE(json["devices"][0].contains("source_state"));
}

TEST(SummaryTest, FailureNamesDeviceArcAndEveryDeviceOnBothSides) {
  const PeerStates peer = Peer({{"gpu0", "RUNNING"}, {"nic0", "RUNNING"}});
  std::ostringstream out;
  RenderMigrationSummary(FailedOnDrain(), &peer, out);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("Migration m-1 FAILED and rolled back (to "
                              "unix:/tmp/dst.sock)\n"));
  EXPECT_THAT(text, HasSubstr("  failed:    device gpu1, arc "
                              "RUNNING>RUNNING_P2P\n"));
  EXPECT_THAT(text, HasSubstr("Devices were left in:\n"));
  EXPECT_THAT(text, ContainsRegex("\n  DEVICE +TARGET +SOURCE +DESTINATION"));
  EXPECT_THAT(text, ContainsRegex("\n  gpu0 +gpu0 +RUNNING +RUNNING "));
  // gpu7 was not in the peer's answer: unknown, not invented.
  EXPECT_THAT(text, ContainsRegex("\n  gpu1 +gpu7 +RUNNING +\\? .*was "
                                  "reset; drain timed out\n"));
  EXPECT_THAT(text, Not(HasSubstr("ATTENTION")));
  EXPECT_EQ(FailureLine(FailedOnDrain()),
            "migration m-1 FAILED: gpu1 RUNNING>RUNNING_P2P passed its 300 "
            "ms deadline (device gpu1, arc RUNNING>RUNNING_P2P); rolled back");
}

TEST(SummaryTest, SuccessShowsBytesThroughputAndDowntime) {
  const PeerStates peer = Peer({{"gpu0", "RUNNING"}, {"nic0", "RUNNING"}});
  v1::Migration migration = Succeeded();
  migration.add_warnings("gpu0 RUNNING>PRE_COPY late: 40 ms > 30 ms");
  std::ostringstream out;
  RenderMigrationSummary(migration, &peer, out);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("Migration m-1 SUCCEEDED (to "));
  EXPECT_THAT(text,
              HasSubstr("  moved:     72.0/72.0 MiB in 2500 ms at 412.5 MiB/s\n"
                        "  downtime:  120 ms (predicted 110 ms)\n"));
  EXPECT_THAT(text, ContainsRegex("\n  gpu0 +gpu0 +STOP +RUNNING +64.0 MiB +"
                                  "48.0 MiB +16.0 MiB +3\n"));
  EXPECT_THAT(text, HasSubstr("Warnings:\n  ! gpu0 RUNNING>PRE_COPY late"));
  EXPECT_THAT(text, Not(HasSubstr("error:")));
}

TEST(SummaryTest, PendingRollbackIsNotPassedOffAsFinal) {
  v1::Migration migration = FailedOnDrain();
  migration.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  migration.set_phase(v1::MIGRATION_PHASE_ROLLING_BACK);
  EXPECT_TRUE(FailureDecided(migration));
  EXPECT_FALSE(FailureDecided(FailedOnDrain()));  // final: decided and done
  EXPECT_FALSE(
      FailureDecided(Event(v1::MIGRATION_PHASE_PRE_COPY, 0).migration()));
  std::ostringstream out;
  RenderMigrationSummary(migration, nullptr, out);
  EXPECT_THAT(out.str(), HasSubstr("Migration m-1 FAILED, still rolling back"));
  EXPECT_THAT(out.str(), ContainsRegex("\n  gpu1 +gpu7 +RUNNING +\? .*failed "
                                       "arc RUNNING>RUNNING_P2P"));
  EXPECT_THAT(FailureLine(migration),
              HasSubstr("migration m-1 FAILED, still rolling back: gpu1"));
  EXPECT_EQ(ExitCodeFor(migration, nullptr), kExitDaemon);  // not final
}

TEST(SummaryTest, PeerUnknownIsSaid) {
  PeerStates peer;
  peer.unknown_reason = "no connection within 3s";
  std::ostringstream out;
  RenderMigrationSummary(FailedOnDrain(), &peer, out);
  EXPECT_THAT(out.str(), HasSubstr("(destination states unknown: no "
                                   "connection within 3s)"));
  EXPECT_THAT(out.str(), ContainsRegex("\n  gpu0 +gpu0 +RUNNING +\\? "));
}

TEST(ExitCodeTest, FollowsOutcomeAndDeviceStates) {
  const PeerStates running =
      Peer({{"gpu0", "RUNNING"}, {"nic0", "RUNNING"}, {"gpu7", "RUNNING"}});
  EXPECT_EQ(ExitCodeFor(Succeeded(), &running), kExitOk);
  EXPECT_EQ(ExitCodeFor(FailedOnDrain(), &running), kExitMigrationFailed);
  v1::Migration cancelled = FailedOnDrain();
  cancelled.set_outcome(v1::MIGRATION_OUTCOME_CANCELLED);
  EXPECT_EQ(ExitCodeFor(cancelled, nullptr), kExitMigrationCancelled);
  // A destination device stuck in RESUMING after the rollback.
  const PeerStates stuck = Peer({{"gpu0", "RESUMING"}});
  EXPECT_EQ(ExitCodeFor(FailedOnDrain(), &stuck), kExitDevicesNeedAttention);
  // A source device in ERROR after the rollback.
  v1::Migration error = FailedOnDrain();
  error.mutable_devices(1)->set_state(v1::DEVICE_STATE_ERROR);
  EXPECT_EQ(ExitCodeFor(error, nullptr), kExitDevicesNeedAttention);
  std::ostringstream out;
  RenderMigrationSummary(error, nullptr, out);
  EXPECT_THAT(out.str(), HasSubstr("ATTENTION"));
  v1::Migration running_migration = Succeeded();
  running_migration.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  EXPECT_EQ(ExitCodeFor(running_migration, nullptr), kExitDaemon);
}

TEST(MigrationTableTest, ShowsTheDocumentedColumns) {
  v1::ListMigrationsResponse response;
  v1::Migration succeeded = Succeeded();
  succeeded.set_running_side("destination");
  *response.add_migrations() = succeeded;
  v1::Migration failed = FailedOnDrain();
  failed.set_id("m-2");
  failed.set_started_unix_ms(0);
  failed.set_running_side("source");
  failed.set_recovered(true);
  *response.add_migrations() = failed;
  v1::Migration committing = Succeeded();
  committing.set_id("m-3");
  committing.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  committing.set_handed_over(true);
  *response.add_migrations() = committing;
  std::ostringstream out;
  RenderMigrationTable(response, out);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("ID   ROLE    OUTCOME      PHASE  DEVICES"));
  EXPECT_THAT(text, ContainsRegex("BYTES +DOWNTIME +STARTED +RUNS ON\n"));
  EXPECT_THAT(text,
              ContainsRegex("\nm-1  source  SUCCEEDED    DONE   gpu0,nic0 "
                            " +72.0 MiB  120 ms +20[0-9-]+ [0-9:]+  "
                            "destination\n"));
  EXPECT_THAT(text, ContainsRegex("\nm-2  source  FAILED +DONE   "
                                  "gpu0,nic0,gpu1>gpu7  72.0 MiB  - +- +"
                                  "source, recovered\n"));
  EXPECT_THAT(text, ContainsRegex("\nm-3 .* destination \\(committing\\)\n"));
  std::ostringstream empty;
  RenderMigrationTable(v1::ListMigrationsResponse(), empty);
  EXPECT_EQ(empty.str(), "No migrations.\n");
}

TEST(ProgressBarTest, FillsClampsAndHandlesUnknownTotals) {
  EXPECT_EQ(ProgressBar(0, 64, 12), "[............]");
  EXPECT_EQ(ProgressBar(48, 64, 12), "[#########...]");
  EXPECT_EQ(ProgressBar(64, 64, 12), "[############]");
  EXPECT_EQ(ProgressBar(80, 64, 12), "[############]");  // estimate overtaken
  EXPECT_EQ(ProgressBar(10, 0, 4), "[....]");
  EXPECT_EQ(ByteRatio(48 * kMiB, 64 * kMiB), "48.0/64.0 MiB");
  EXPECT_EQ(ByteRatio(512 * 1024, uint64_t{4} << 30), "0.0/4.0 GiB");
  EXPECT_EQ(ByteRatio(100, 200), "100/200 B");
  EXPECT_EQ(ByteRatio(3 * kMiB, 0), "3.0 MiB");
  EXPECT_EQ(HumanRate(412 * kMiB), "412.0 MiB/s");
  EXPECT_EQ(HumanRate(0), "0 B/s");
  EXPECT_EQ(HumanMillis(850), "850 ms");
  EXPECT_EQ(HumanMillis(12345), "12.3 s");
}

TEST(RateMeterTest, MeasuresOverTheWindow) {
  RateMeter meter(2.0);
  EXPECT_EQ(meter.BytesPerSecond(), 0);
  meter.Add(0.0, 0);
  meter.Add(0.05, 10);
  EXPECT_EQ(meter.BytesPerSecond(), 0);  // too short to mean anything
  meter.Add(1.0, 100 * kMiB);
  EXPECT_DOUBLE_EQ(meter.BytesPerSecond(), 100.0 * kMiB);
  meter.Add(4.0, 100 * kMiB);  // stalled: the old samples age out
  meter.Add(5.0, 100 * kMiB);
  EXPECT_EQ(meter.BytesPerSecond(), 0);
}

v1::MigrationEvent Event(v1::MigrationPhase phase, uint64_t gpu0_sent,
                         const char* message, int wave) {
  v1::MigrationEvent event;
  v1::Migration* migration = event.mutable_migration();
  migration->set_id("m-1");
  migration->set_role("source");
  migration->set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  migration->set_phase(phase);
  AddDevice(*migration, "gpu0", v1::DEVICE_STATE_PRE_COPY_P2P, gpu0_sent,
            64 * kMiB);
  AddDevice(*migration, "nic0", v1::DEVICE_STATE_RUNNING_P2P, 0, 8 * kMiB);
  migration->set_bytes_sent(gpu0_sent);
  migration->set_bytes_total(72 * kMiB);
  event.set_message(message);
  event.set_wave(wave);
  if (wave > 0) event.set_wave_phase("pre-copy");
  return event;
}

TEST(ProgressViewTest, PlainModePrintsEventsAndThrottledProgress) {
  std::ostringstream out;
  ProgressView view(out, {.tty = false, .progress_interval_s = 1.0});
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 0,
                     "wave 1 pre-copy "
                     "started",
                     1),
               0.1);
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 16 * kMiB), 0.5);
  // The daemon's own byte ticks are left to the progress lines.
  view.OnEvent(
      Event(v1::MIGRATION_PHASE_PRE_COPY, 20 * kMiB, "gpu0: 20.0 MiB sent"),
      0.9);
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 48 * kMiB), 1.6);
  v1::MigrationEvent late = Event(v1::MIGRATION_PHASE_QUIESCE, 48 * kMiB,
                                  "nic0 RUNNING>RUNNING_P2P late");
  late.set_warning(true);
  view.OnEvent(late, 1.7);
  v1::MigrationEvent done = Event(v1::MIGRATION_PHASE_DONE, 64 * kMiB);
  done.mutable_migration()->set_outcome(v1::MIGRATION_OUTCOME_SUCCEEDED);
  view.OnEvent(done, 2.0);
  view.Finish(2.1);
  EXPECT_EQ(out.str(),
            "[   0.1s] phase PRE_COPY\n"
            "[   0.1s] wave 1 pre-copy started\n"
            "[   0.5s] progress 16.0/72.0 MiB (22%) 40.0 MiB/s: gpu0 "
            "16.0/64.0 MiB PRE_COPY_P2P, nic0 0.0/8.0 MiB RUNNING_P2P\n"
            "[   1.6s] progress 48.0/72.0 MiB (67%) 32.0 MiB/s: gpu0 "
            "48.0/64.0 MiB PRE_COPY_P2P, nic0 0.0/8.0 MiB RUNNING_P2P\n"
            "[   1.7s] phase QUIESCE\n"
            "[   1.7s] WARNING: nic0 RUNNING>RUNNING_P2P late\n"
            "[   2.0s] progress 64.0/72.0 MiB (89%): gpu0 64.0/64.0 MiB "
            "PRE_COPY_P2P, nic0 0.0/8.0 MiB RUNNING_P2P\n"
            "[   2.0s] SUCCEEDED\n");
  EXPECT_THAT(out.str(), Not(HasSubstr("\033")));
}

TEST(ProgressViewTest, ByteTicksAreTheOnlyQuietEvents) {
  const v1::Migration before =
      Event(v1::MIGRATION_PHASE_PRE_COPY, kMiB).migration();
  EXPECT_TRUE(IsByteProgressOnly(
      Event(v1::MIGRATION_PHASE_PRE_COPY, 2 * kMiB, "gpu0: 2.0 MiB sent"),
      before));
  // Nothing moved: a message worth showing ("destination prepared").
  EXPECT_FALSE(IsByteProgressOnly(
      Event(v1::MIGRATION_PHASE_PRE_COPY, kMiB, "prepared"), before));
  EXPECT_FALSE(IsByteProgressOnly(
      Event(v1::MIGRATION_PHASE_QUIESCE, 2 * kMiB, "x"), before));
  EXPECT_FALSE(IsByteProgressOnly(
      Event(v1::MIGRATION_PHASE_PRE_COPY, 2 * kMiB, "round 1", 1), before));
  v1::MigrationEvent warning =
      Event(v1::MIGRATION_PHASE_PRE_COPY, 2 * kMiB, "late");
  warning.set_warning(true);
  EXPECT_FALSE(IsByteProgressOnly(warning, before));
  v1::MigrationEvent state =
      Event(v1::MIGRATION_PHASE_PRE_COPY, 2 * kMiB, "gpu0 stopped");
  state.mutable_migration()->mutable_devices(0)->set_state(
      v1::DEVICE_STATE_STOP);
  EXPECT_FALSE(IsByteProgressOnly(state, before));
}

TEST(ProgressViewTest, TerminalModeRedrawsTheBlockInPlace) {
  std::ostringstream out;
  ProgressView view(out, {.tty = true, .columns = 120, .bar_width = 12});
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 0, "", 1), 0.0);
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 48 * kMiB), 1.0);
  EXPECT_EQ(view.BlockLines(),
            (std::vector<std::string>{
                "PRE_COPY  wave 1 pre-copy  48.0/72.0 MiB  48.0 MiB/s",
                "  gpu0  [#########...]  48.0/64.0 MiB  PRE_COPY_P2P  48.0 "
                "MiB/s",
                "  nic0  [............]    0.0/8.0 MiB  RUNNING_P2P   0 B/s"}));
  const std::string text = out.str();
  // First draw: the phase line, the block; second: cursor up 3, clear.
  EXPECT_THAT(text, HasSubstr("[   0.0s] phase PRE_COPY\nPRE_COPY  wave 1"));
  EXPECT_THAT(text, HasSubstr("\r\033[3A\033[J"
                              "PRE_COPY  wave 1 pre-copy  48.0/72.0 MiB"));
  // Within the redraw interval and without news: no redraw.
  const size_t before = out.str().size();
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, 49 * kMiB), 1.05);
  EXPECT_EQ(out.str().size(), before);
  // A message scrolls above the block, which is drawn again below it.
  view.Note("interrupted: cancelling", 1.2);
  EXPECT_THAT(out.str().substr(before),
              HasSubstr("\r\033[3A\033[J[   1.2s] interrupted: cancelling\n"
                        "PRE_COPY  wave 1"));
}

TEST(ProgressViewTest, TerminalLinesAreCutToTheWidth) {
  std::ostringstream out;
  ProgressView view(out, {.tty = true, .columns = 30});
  view.OnEvent(Event(v1::MIGRATION_PHASE_PRE_COPY, kMiB), 0.0);
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 29u) << line;
  }
}

TEST(ParseDeviceMapTest, MapsAndRejectsWhatCannotWork) {
  const std::vector<std::string> devices = {"gpu0", "gpu1", "nic0"};
  absl::StatusOr<std::map<std::string, std::string>> map =
      ParseDeviceMap({"gpu0=gpu5, gpu1=gpu6", "nic0=nic0"}, devices);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(*map, (std::map<std::string, std::string>{
                      {"gpu0", "gpu5"}, {"gpu1", "gpu6"}, {"nic0", "nic0"}}));
  EXPECT_TRUE(ParseDeviceMap({}, devices)->empty());
  for (const char* bad :
       {"gpu0", "gpu0=", "=gpu1", "gpu0=a=b", "gpu9=x", "gpu0=x,gpu0=y"}) {
    EXPECT_FALSE(ParseDeviceMap({bad}, devices).ok()) << bad;
  }
  // gpu0 would land on gpu1, which gpu1 keeps for itself.
  absl::StatusOr<std::map<std::string, std::string>> clash =
      ParseDeviceMap({"gpu0=gpu1"}, devices);
  ASSERT_FALSE(clash.ok());
  EXPECT_THAT(std::string(clash.status().message()),
              HasSubstr("'gpu0' and 'gpu1' would both migrate to destination "
                        "device 'gpu1'"));
}

TEST(BuildStartRequestTest, FillsEveryField) {
  MigrateOptions options;
  options.devices = {"gpu0,gpu1"};
  options.to = "/tmp/dst.sock";
  options.map = {"gpu1=gpu3"};
  options.policy = "mandatory";
  options.drain_timeout_ms = 300;
  options.allow_no_p2p = true;
  absl::StatusOr<v1::StartMigrationRequest> request =
      BuildStartRequest(options);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_THAT(request->device_ids(), ::testing::ElementsAre("gpu0", "gpu1"));
  EXPECT_EQ(request->destination(), "unix:/tmp/dst.sock");
  EXPECT_EQ(request->device_map().at("gpu1"), "gpu3");
  EXPECT_FALSE(request->device_map().contains("gpu0"));
  EXPECT_EQ(request->policy(), v1::DEADLINE_POLICY_MANDATORY);
  EXPECT_EQ(request->drain_timeout_ms(), 300u);
  EXPECT_EQ(request->arc_timeout_ms(), 0u);
  EXPECT_TRUE(request->plan_options().allow_no_p2p());
  options.to = " ";
  EXPECT_FALSE(BuildStartRequest(options).ok());
}

}  // namespace
}  // namespace vfiomig::cli
