#include "daemon/core/planner.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/core/fsm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using S = DeviceState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr uint32_t kSc = VFIO_MIGRATION_STOP_COPY;
constexpr uint32_t kP2p = VFIO_MIGRATION_P2P;
constexpr uint32_t kPre = VFIO_MIGRATION_PRE_COPY;
constexpr uint32_t kFull = kSc | kP2p | kPre;

PlanDevice Dev(std::string id, uint32_t flags, S state = S::RUNNING) {
  PlanDevice d;
  d.id = std::move(id);
  d.features = MigrationFeatures(flags);
  d.state = state;
  return d;
}

// One line per wave: "phase: dev FROM>TO, dev FROM>TO".
std::string Render(const std::vector<Wave>& waves) {
  std::string out;
  for (const Wave& w : waves) {
    out += WavePhaseName(w.phase);
    out += ":";
    for (const PlannedArc& a : w.arcs) {
      absl::StrAppend(&out, " ", a.device, " ", ArcName(a.from, a.to));
    }
    out += "\n";
  }
  return out;
}

std::vector<S> Path(std::initializer_list<S> states) { return states; }

// --- An independent checker ------------------------------------------------
//
// Simulates a wave list device by device. Unlike CheckWaves, it judges the
// barriers on each device's history (which arcs it has completed) rather than
// on the state it is in, and it applies a stricter destination rule: no
// device runs before every device has loaded its state.
enum class Rules { kSource, kDestination, kRollback };

struct Simulation {
  std::string error;  // Empty when every rule held.
  std::vector<S> final_states;
  std::vector<std::vector<S>> visited;  // Per device, start state first.
};

Simulation Fail(std::string error) {
  Simulation sim;
  sim.error = std::move(error);
  return sim;
}

bool AcceptsDma(S s) {
  return s == S::RUNNING || s == S::RUNNING_P2P || s == S::PRE_COPY ||
         s == S::PRE_COPY_P2P;
}

Simulation Simulate(const std::vector<PlanDevice>& devices,
                    const std::vector<Wave>& waves, Rules rules) {
  Simulation sim;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < devices.size(); ++i) {
    index[devices[i].id] = i;
    sim.final_states.push_back(devices[i].state);
    sim.visited.push_back({devices[i].state});
  }
  const size_t n = devices.size();
  std::vector<bool> quiesced(n, false), loaded(n, false), restored(n, false);
  for (size_t w = 0; w < waves.size(); ++w) {
    const std::string where = absl::StrCat("wave ", w, ": ");
    if (waves[w].arcs.empty()) return Fail(where + "empty wave");
    std::vector<S> before = sim.final_states;
    std::set<size_t> touched;
    size_t prev_index = 0;
    for (const PlannedArc& arc : waves[w].arcs) {
      auto it = index.find(arc.device);
      if (it == index.end())
        return Fail(where + "unknown device " + arc.device);
      const size_t i = it->second;
      if (!touched.insert(i).second)
        return Fail(where + "two arcs of " + arc.device);
      if (touched.size() > 1 && i < prev_index) {
        return Fail(where + "input order not kept at " + arc.device);
      }
      prev_index = i;
      if (arc.from != before[i]) return Fail(where + "arc does not chain");
      absl::StatusOr<S> next = NextState(devices[i].features, arc.from, arc.to);
      if (arc.from == arc.to || !next.ok() || *next != arc.to) {
        return Fail(where +
                    "not one kernel step: " + ArcName(arc.from, arc.to));
      }
      switch (rules) {
        case Rules::kSource:
          if (arc.to == S::STOP || arc.to == S::STOP_COPY) {
            for (size_t j = 0; j < n; ++j) {
              if (devices[j].features.p2p() && !quiesced[j]) {
                return Fail(where + arc.device + " stops before P2P device " +
                            devices[j].id + " quiesced");
              }
            }
          }
          break;
        case Rules::kDestination:
          if (arc.to == S::RUNNING) {
            for (size_t j = 0; j < n; ++j) {
              if (!loaded[j] || (devices[j].features.p2p() && !restored[j])) {
                return Fail(where + arc.device + " runs before " +
                            devices[j].id + " is loaded and restored");
              }
            }
          }
          break;
        case Rules::kRollback:
          if (arc.to == S::RUNNING) {
            for (size_t j = 0; j < n; ++j) {
              if (devices[j].features.p2p() && !AcceptsDma(before[j])) {
                return Fail(where + arc.device + " runs while P2P device " +
                            devices[j].id + " is stopped");
              }
            }
          }
          break;
      }
    }
    // Completion takes effect at the barrier after the wave.
    for (const PlannedArc& arc : waves[w].arcs) {
      const size_t i = index[arc.device];
      if (arc.to == S::RUNNING_P2P || arc.to == S::PRE_COPY_P2P) {
        quiesced[i] = true;
      }
      if (arc.from == S::RESUMING) loaded[i] = true;
      if (loaded[i] && arc.from == S::STOP && arc.to == S::RUNNING_P2P) {
        restored[i] = true;
      }
      sim.final_states[i] = arc.to;
      sim.visited[i].push_back(arc.to);
    }
  }
  return sim;
}

bool Contains(const std::vector<S>& path, S s) {
  return std::find(path.begin(), path.end(), s) != path.end();
}

// --- Exact plans ---------------------------------------------------------

std::vector<PlanDevice> ThreeDeviceGroup() {
  return {Dev("gpu0", kFull), Dev("gpu1", kFull), Dev("nic0", kSc | kP2p)};
}

TEST(PlannerTest, ThreeDeviceGroupSource) {
  GroupPlan plan = PlanMigration(ThreeDeviceGroup(), {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_THAT(plan.blockers, SizeIs(0));
  EXPECT_THAT(plan.warnings, SizeIs(0));
  EXPECT_EQ(Render(plan.source),
            "pre-copy: gpu0 RUNNING>PRE_COPY gpu1 RUNNING>PRE_COPY\n"
            "p2p-quiesce: gpu0 PRE_COPY>PRE_COPY_P2P gpu1 "
            "PRE_COPY>PRE_COPY_P2P nic0 RUNNING>RUNNING_P2P\n"
            "stop: nic0 RUNNING_P2P>STOP\n"
            "stop-copy: gpu0 PRE_COPY_P2P>STOP_COPY gpu1 "
            "PRE_COPY_P2P>STOP_COPY nic0 STOP>STOP_COPY\n"
            "stop-after-copy: gpu0 STOP_COPY>STOP gpu1 STOP_COPY>STOP nic0 "
            "STOP_COPY>STOP\n");
}

TEST(PlannerTest, ThreeDeviceGroupDestination) {
  GroupPlan plan = PlanMigration(ThreeDeviceGroup(), {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_EQ(Render(plan.destination),
            "prepare-quiesce: gpu0 RUNNING>RUNNING_P2P gpu1 "
            "RUNNING>RUNNING_P2P nic0 RUNNING>RUNNING_P2P\n"
            "prepare-stop: gpu0 RUNNING_P2P>STOP gpu1 RUNNING_P2P>STOP nic0 "
            "RUNNING_P2P>STOP\n"
            "resuming: gpu0 STOP>RESUMING gpu1 STOP>RESUMING nic0 "
            "STOP>RESUMING\n"
            "resume-stop: gpu0 RESUMING>STOP gpu1 RESUMING>STOP nic0 "
            "RESUMING>STOP\n"
            "p2p-restore: gpu0 STOP>RUNNING_P2P gpu1 STOP>RUNNING_P2P nic0 "
            "STOP>RUNNING_P2P\n"
            "running: gpu0 RUNNING_P2P>RUNNING gpu1 RUNNING_P2P>RUNNING nic0 "
            "RUNNING_P2P>RUNNING\n");
}

TEST(PlannerTest, ArcsCarryExactFields) {
  GroupPlan plan = PlanMigration({Dev("solo", kSc)}, {});
  ASSERT_TRUE(plan.migratable);
  ASSERT_THAT(plan.source, SizeIs(3));
  EXPECT_EQ(plan.source[0].phase, WavePhase::kStop);
  EXPECT_THAT(plan.source[0].arcs,
              ElementsAre(PlannedArc{"solo", S::RUNNING, S::STOP}));
  EXPECT_EQ(plan.source[1].phase, WavePhase::kStopCopy);
  EXPECT_EQ(plan.source[2].phase, WavePhase::kStopAfterCopy);
}

TEST(PlannerTest, SingleStopCopyOnlyDeviceNeedsNoP2p) {
  GroupPlan plan = PlanMigration({Dev("solo", kSc)}, {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_THAT(plan.warnings, SizeIs(0));
  EXPECT_EQ(Render(plan.source),
            "stop: solo RUNNING>STOP\n"
            "stop-copy: solo STOP>STOP_COPY\n"
            "stop-after-copy: solo STOP_COPY>STOP\n");
  EXPECT_EQ(Render(plan.destination),
            "prepare-stop: solo RUNNING>STOP\n"
            "resuming: solo STOP>RESUMING\n"
            "resume-stop: solo RESUMING>STOP\n"
            "running: solo STOP>RUNNING\n");
}

TEST(PlannerTest, RoutesFollowKernelPathsPerFeatureSet) {
  struct Case {
    uint32_t flags;
    std::vector<S> source;
    std::vector<S> destination;
  };
  const std::vector<Case> cases = {
      {kFull,
       Path({S::RUNNING, S::PRE_COPY, S::PRE_COPY_P2P, S::STOP_COPY, S::STOP}),
       Path({S::RUNNING, S::RUNNING_P2P, S::STOP, S::RESUMING, S::STOP,
             S::RUNNING_P2P, S::RUNNING})},
      {kSc | kP2p,
       Path({S::RUNNING, S::RUNNING_P2P, S::STOP, S::STOP_COPY, S::STOP}),
       Path({S::RUNNING, S::RUNNING_P2P, S::STOP, S::RESUMING, S::STOP,
             S::RUNNING_P2P, S::RUNNING})},
      {kSc, Path({S::RUNNING, S::STOP, S::STOP_COPY, S::STOP}),
       Path({S::RUNNING, S::STOP, S::RESUMING, S::STOP, S::RUNNING})},
      {kSc | kPre, Path({S::RUNNING, S::PRE_COPY, S::STOP_COPY, S::STOP}),
       Path({S::RUNNING, S::STOP, S::RESUMING, S::STOP, S::RUNNING})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(MigrationFeatures(c.flags).ToString());
    GroupPlan plan = PlanMigration({Dev("d", c.flags)}, {});
    ASSERT_TRUE(plan.migratable);
    ASSERT_THAT(plan.devices, SizeIs(1));
    EXPECT_EQ(plan.devices[0].device, "d");
    EXPECT_EQ(PathToString(plan.devices[0].source_path),
              PathToString(c.source));
    EXPECT_EQ(PathToString(plan.devices[0].destination_path),
              PathToString(c.destination));
  }
}

TEST(PlannerTest, KeepsInputOrderInEveryWave) {
  GroupPlan plan = PlanMigration(
      {Dev("zeta", kSc | kP2p), Dev("alpha", kFull), Dev("mid", kSc | kP2p)},
      {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_EQ(Render(plan.source),
            "pre-copy: alpha RUNNING>PRE_COPY\n"
            "p2p-quiesce: zeta RUNNING>RUNNING_P2P alpha "
            "PRE_COPY>PRE_COPY_P2P mid RUNNING>RUNNING_P2P\n"
            "stop: zeta RUNNING_P2P>STOP mid RUNNING_P2P>STOP\n"
            "stop-copy: zeta STOP>STOP_COPY alpha PRE_COPY_P2P>STOP_COPY mid "
            "STOP>STOP_COPY\n"
            "stop-after-copy: zeta STOP_COPY>STOP alpha STOP_COPY>STOP mid "
            "STOP_COPY>STOP\n");
}

TEST(PlannerTest, MixedGroupWithAcceptedRisk) {
  PlanOptions options;
  options.allow_no_p2p = true;
  GroupPlan plan = PlanMigration(
      {Dev("gpu0", kFull), Dev("nic0", kSc), Dev("fpga0", kSc | kPre)},
      options);
  ASSERT_TRUE(plan.migratable);
  EXPECT_EQ(Render(plan.source),
            "pre-copy: gpu0 RUNNING>PRE_COPY fpga0 RUNNING>PRE_COPY\n"
            "p2p-quiesce: gpu0 PRE_COPY>PRE_COPY_P2P\n"
            "stop: nic0 RUNNING>STOP\n"
            "stop-copy: gpu0 PRE_COPY_P2P>STOP_COPY nic0 STOP>STOP_COPY "
            "fpga0 PRE_COPY>STOP_COPY\n"
            "stop-after-copy: gpu0 STOP_COPY>STOP nic0 STOP_COPY>STOP fpga0 "
            "STOP_COPY>STOP\n");
  EXPECT_EQ(Render(plan.destination),
            "prepare-quiesce: gpu0 RUNNING>RUNNING_P2P\n"
            "prepare-stop: gpu0 RUNNING_P2P>STOP nic0 RUNNING>STOP fpga0 "
            "RUNNING>STOP\n"
            "resuming: gpu0 STOP>RESUMING nic0 STOP>RESUMING fpga0 "
            "STOP>RESUMING\n"
            "resume-stop: gpu0 RESUMING>STOP nic0 RESUMING>STOP fpga0 "
            "RESUMING>STOP\n"
            "p2p-restore: gpu0 STOP>RUNNING_P2P\n"
            "running: gpu0 RUNNING_P2P>RUNNING nic0 STOP>RUNNING fpga0 "
            "STOP>RUNNING\n");
  ASSERT_THAT(plan.warnings, SizeIs(2));
  EXPECT_THAT(plan.warnings[0], HasSubstr("nic0"));
  EXPECT_THAT(plan.warnings[0], HasSubstr("allow_no_p2p"));
  EXPECT_THAT(plan.warnings[1], HasSubstr("fpga0"));
}

TEST(PlannerTest, PlanDestinationPlansOnlyTheDestination) {
  GroupPlan plan = PlanDestination(ThreeDeviceGroup(), {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_THAT(plan.source, SizeIs(0));
  EXPECT_EQ(Render(plan.destination),
            Render(PlanMigration(ThreeDeviceGroup(), {}).destination));
  ASSERT_THAT(plan.devices, SizeIs(3));
  EXPECT_THAT(plan.devices[0].source_path, SizeIs(0));
  EXPECT_THAT(plan.devices[0].destination_path, SizeIs(7));
}

TEST(PlannerTest, PlanDestinationHasTheSameBlockers) {
  GroupPlan plan =
      PlanDestination({Dev("gpu0", kFull), Dev("nic0", kSc, S::STOP)}, {});
  EXPECT_FALSE(plan.migratable);
  EXPECT_THAT(plan.destination, SizeIs(0));
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "nic0");
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("is in STOP"));
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("P2P"));
}

TEST(PlannerTest, ReasonsExplainEachRoute) {
  GroupPlan plan = PlanMigration(ThreeDeviceGroup(), {});
  ASSERT_THAT(plan.devices, SizeIs(3));
  std::string gpu = absl::StrJoin(plan.devices[0].reasons, "\n");
  EXPECT_THAT(gpu, HasSubstr("PRE_COPY"));
  EXPECT_THAT(gpu, HasSubstr("PRE_COPY_P2P before any device"));
  std::string nic = absl::StrJoin(plan.devices[2].reasons, "\n");
  EXPECT_THAT(nic, Not(HasSubstr("pre-copies")));
  EXPECT_THAT(nic, HasSubstr("RUNNING_P2P before any device"));

  GroupPlan solo = PlanMigration({Dev("solo", kSc)}, {});
  EXPECT_THAT(absl::StrJoin(solo.devices[0].reasons, "\n"),
              HasSubstr("single device"));

  PlanOptions allow;
  allow.allow_no_p2p = true;
  GroupPlan risky =
      PlanMigration({Dev("gpu0", kFull), Dev("nic0", kSc)}, allow);
  EXPECT_THAT(absl::StrJoin(risky.devices[1].reasons, "\n"),
              HasSubstr("allow_no_p2p"));
}

// --- Blockers ------------------------------------------------------------

TEST(PlannerBlockerTest, EmptyGroup) {
  GroupPlan plan = PlanMigration({}, {});
  EXPECT_FALSE(plan.migratable);
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "");
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("no devices"));
  EXPECT_THAT(plan.source, SizeIs(0));
  EXPECT_THAT(plan.destination, SizeIs(0));
}

TEST(PlannerBlockerTest, DuplicateIdIsNamedOnce) {
  GroupPlan plan = PlanMigration({Dev("gpu0", kFull), Dev("gpu0", kFull),
                                  Dev("gpu1", kFull), Dev("gpu0", kFull)},
                                 {});
  EXPECT_FALSE(plan.migratable);
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "gpu0");
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("appears 3 times"));
  EXPECT_THAT(plan.source, SizeIs(0));
}

TEST(PlannerBlockerTest, NotMigratableCarriesTheBackendReason) {
  PlanDevice nic = Dev("nic0", kSc | kP2p);
  nic.migratable = false;
  nic.not_migratable_reason = "driver mlx5_vfio_pci has no migration support";
  GroupPlan plan = PlanMigration({Dev("gpu0", kFull), nic}, {});
  EXPECT_FALSE(plan.migratable);
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "nic0");
  EXPECT_THAT(plan.blockers[0].reason,
              HasSubstr("driver mlx5_vfio_pci has no migration support"));
  // Routes stay for every device; only plannable ones get paths.
  ASSERT_THAT(plan.devices, SizeIs(2));
  EXPECT_THAT(plan.devices[0].source_path, SizeIs(5));
  EXPECT_THAT(plan.devices[1].source_path, SizeIs(0));
  EXPECT_THAT(absl::StrJoin(plan.devices[1].reasons, "\n"),
              HasSubstr("mlx5_vfio_pci"));
}

TEST(PlannerBlockerTest, NotMigratableWithoutReasonStillSaysWhy) {
  PlanDevice d = Dev("d0", kSc);
  d.migratable = false;
  GroupPlan plan = PlanMigration({d}, {});
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("not migratable"));
}

TEST(PlannerBlockerTest, LackingStopCopy) {
  GroupPlan plan = PlanMigration({Dev("odd0", kP2p | kPre)}, {});
  EXPECT_FALSE(plan.migratable);
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "odd0");
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("STOP_COPY"));
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("has p2p,pre_copy"));
}

TEST(PlannerBlockerTest, NotInRunning) {
  GroupPlan plan = PlanMigration({Dev("gpu0", kFull, S::STOP)}, {});
  EXPECT_FALSE(plan.migratable);
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "gpu0");
  EXPECT_EQ(plan.blockers[0].reason,
            "gpu0 is in STOP; a migration starts from RUNNING");
}

TEST(PlannerBlockerTest, OneBlockerPerDeviceLackingP2p) {
  GroupPlan plan = PlanMigration(
      {Dev("gpu0", kFull), Dev("nic0", kSc), Dev("nic1", kSc | kPre)}, {});
  EXPECT_FALSE(plan.migratable);
  EXPECT_THAT(plan.source, SizeIs(0));
  EXPECT_THAT(plan.destination, SizeIs(0));
  EXPECT_THAT(plan.warnings, SizeIs(0));
  ASSERT_THAT(plan.blockers, SizeIs(2));
  EXPECT_EQ(plan.blockers[0].device, "nic0");
  EXPECT_EQ(plan.blockers[0].reason,
            "nic0 lacks the P2P migration feature (has stop_copy): in a group "
            "of 3 devices it could be stopped while a peer still DMAs into its "
            "MMIO; set allow_no_p2p only if P2P DMA is impossible for this VM");
  EXPECT_EQ(plan.blockers[1].device, "nic1");
  EXPECT_THAT(plan.blockers[1].reason, HasSubstr("has stop_copy,pre_copy"));
}

TEST(PlannerBlockerTest, ProblemsOfOneDeviceShareOneBlocker) {
  PlanDevice d = Dev("nic0", kSc, S::RUNNING_P2P);
  d.migratable = false;
  d.not_migratable_reason = "no driver";
  GroupPlan plan = PlanMigration({Dev("gpu0", kFull), d}, {});
  ASSERT_THAT(plan.blockers, SizeIs(1));
  EXPECT_EQ(plan.blockers[0].device, "nic0");
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("no driver"));
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("RUNNING_P2P"));
  EXPECT_THAT(plan.blockers[0].reason, HasSubstr("lacks the P2P"));
}

// --- Rollback ------------------------------------------------------------

std::vector<PlanDevice> WithStates(std::vector<PlanDevice> devices,
                                   std::vector<S> states) {
  for (size_t i = 0; i < devices.size(); ++i) devices[i].state = states[i];
  return devices;
}

TEST(PlannerRollbackTest, FromStopCopyMidSource) {
  auto waves = PlanRollback(
      WithStates(ThreeDeviceGroup(), {S::PRE_COPY_P2P, S::STOP_COPY, S::STOP}));
  ASSERT_TRUE(waves.ok()) << waves.status();
  EXPECT_EQ(Render(*waves),
            "rollback-stop: gpu1 STOP_COPY>STOP\n"
            "rollback-p2p: gpu0 PRE_COPY_P2P>RUNNING_P2P gpu1 "
            "STOP>RUNNING_P2P nic0 STOP>RUNNING_P2P\n"
            "rollback-running: gpu0 RUNNING_P2P>RUNNING gpu1 "
            "RUNNING_P2P>RUNNING nic0 RUNNING_P2P>RUNNING\n");
}

TEST(PlannerRollbackTest, PreCopyGoesStraightBack) {
  auto waves = PlanRollback(
      WithStates(ThreeDeviceGroup(), {S::PRE_COPY, S::PRE_COPY, S::RUNNING}));
  ASSERT_TRUE(waves.ok()) << waves.status();
  EXPECT_EQ(Render(*waves),
            "rollback-running: gpu0 PRE_COPY>RUNNING gpu1 PRE_COPY>RUNNING\n");
}

TEST(PlannerRollbackTest, FromResumingMidDestination) {
  auto waves = PlanRollback({Dev("gpu0", kFull, S::RESUMING),
                             Dev("nic0", kSc, S::RESUMING),
                             Dev("gpu1", kFull, S::STOP)});
  ASSERT_TRUE(waves.ok()) << waves.status();
  EXPECT_EQ(Render(*waves),
            "rollback-stop: gpu0 RESUMING>STOP nic0 RESUMING>STOP\n"
            "rollback-p2p: gpu0 STOP>RUNNING_P2P gpu1 STOP>RUNNING_P2P\n"
            "rollback-running: gpu0 RUNNING_P2P>RUNNING nic0 STOP>RUNNING "
            "gpu1 RUNNING_P2P>RUNNING\n");
}

TEST(PlannerRollbackTest, AllRunningNeedsNothing) {
  auto waves = PlanRollback(ThreeDeviceGroup());
  ASSERT_TRUE(waves.ok());
  EXPECT_THAT(*waves, SizeIs(0));
  auto none = PlanRollback({});
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, SizeIs(0));
}

TEST(PlannerRollbackTest, ErrorDeviceNeedsReset) {
  auto waves = PlanRollback(
      WithStates(ThreeDeviceGroup(), {S::STOP, S::ERROR, S::STOP}));
  ASSERT_FALSE(waves.ok());
  EXPECT_EQ(waves.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(waves.status().message(), HasSubstr("gpu1"));
  EXPECT_THAT(waves.status().message(), HasSubstr("RESET"));
}

TEST(PlannerRollbackTest, StateTheDeviceCannotBeInIsRefused) {
  auto waves = PlanRollback({Dev("nic0", kSc, S::RUNNING_P2P)});
  ASSERT_FALSE(waves.ok());
  EXPECT_THAT(waves.status().message(), HasSubstr("nic0"));
}

TEST(PlannerRollbackTest, DuplicateIdsAreRefused) {
  auto waves =
      PlanRollback({Dev("a", kSc, S::STOP), Dev("a", kSc, S::STOP_COPY)});
  EXPECT_FALSE(waves.ok());
}

// --- Phase names ---------------------------------------------------------

TEST(WavePhaseTest, StableNamesAndDescriptions) {
  const std::vector<std::pair<WavePhase, std::string>> expected = {
      {WavePhase::kPreCopy, "pre-copy"},
      {WavePhase::kP2pQuiesce, "p2p-quiesce"},
      {WavePhase::kStop, "stop"},
      {WavePhase::kStopCopy, "stop-copy"},
      {WavePhase::kStopAfterCopy, "stop-after-copy"},
      {WavePhase::kPrepareQuiesce, "prepare-quiesce"},
      {WavePhase::kPrepareStop, "prepare-stop"},
      {WavePhase::kResuming, "resuming"},
      {WavePhase::kResumeStop, "resume-stop"},
      {WavePhase::kP2pRestore, "p2p-restore"},
      {WavePhase::kRunning, "running"},
      {WavePhase::kRollbackStop, "rollback-stop"},
      {WavePhase::kRollbackP2p, "rollback-p2p"},
      {WavePhase::kRollbackRunning, "rollback-running"},
  };
  std::set<std::string> descriptions;
  for (const auto& [phase, name] : expected) {
    EXPECT_EQ(WavePhaseName(phase), name);
    std::string description(WavePhaseDescription(phase));
    EXPECT_FALSE(description.empty());
    EXPECT_EQ(description.back(), '.') << description;
    descriptions.insert(description);
  }
  EXPECT_THAT(descriptions, SizeIs(expected.size()));
}

// --- CheckWaves ----------------------------------------------------------

Wave W(WavePhase phase, std::vector<PlannedArc> arcs) {
  return Wave{phase, std::move(arcs)};
}

TEST(CheckWavesTest, AcceptsThePlannersPlans) {
  GroupPlan plan = PlanMigration(ThreeDeviceGroup(), {});
  EXPECT_TRUE(
      CheckWaves(ThreeDeviceGroup(), plan.source, PlanSide::kSource).ok());
  EXPECT_TRUE(
      CheckWaves(ThreeDeviceGroup(), plan.destination, PlanSide::kDestination)
          .ok());
}

TEST(CheckWavesTest, RefusesUnknownDevice) {
  absl::Status s =
      CheckWaves(ThreeDeviceGroup(),
                 {W(WavePhase::kPreCopy, {{"gpu9", S::RUNNING, S::PRE_COPY}})},
                 PlanSide::kSource);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("gpu9"));
  EXPECT_THAT(s.message(), HasSubstr("wave 0 (pre-copy)"));
}

TEST(CheckWavesTest, RefusesTwoArcsOfOneDeviceInAWave) {
  absl::Status s = CheckWaves(
      ThreeDeviceGroup(),
      {W(WavePhase::kPreCopy, {{"gpu0", S::RUNNING, S::PRE_COPY},
                               {"gpu0", S::PRE_COPY, S::PRE_COPY_P2P}})},
      PlanSide::kSource);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("more than one arc"));
}

TEST(CheckWavesTest, RefusesArcsThatDoNotChain) {
  absl::Status s = CheckWaves(
      ThreeDeviceGroup(),
      {W(WavePhase::kP2pQuiesce, {{"gpu0", S::PRE_COPY, S::PRE_COPY_P2P}})},
      PlanSide::kSource);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("does not chain"));
  EXPECT_THAT(s.message(), HasSubstr("gpu0"));
}

TEST(CheckWavesTest, RefusesMultiStepArcs) {
  // RUNNING -> STOP is two kernel arcs for a P2P device.
  absl::Status s =
      CheckWaves({Dev("nic0", kSc | kP2p)},
                 {W(WavePhase::kStop, {{"nic0", S::RUNNING, S::STOP}})},
                 PlanSide::kSource);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not a single kernel arc"));
}

TEST(CheckWavesTest, RefusesBlockedStopCopyToPreCopy) {
  absl::Status s = CheckWaves(
      {Dev("gpu0", kFull, S::STOP_COPY)},
      {W(WavePhase::kPreCopy, {{"gpu0", S::STOP_COPY, S::PRE_COPY}})},
      PlanSide::kSource);
  EXPECT_FALSE(s.ok());
}

TEST(CheckWavesTest, RefusesStopBeforeEveryP2pDeviceQuiesced) {
  // nic0 quiesces and stops while gpu0 is still in PRE_COPY.
  absl::Status s = CheckWaves(
      ThreeDeviceGroup(),
      {W(WavePhase::kPreCopy, {{"gpu0", S::RUNNING, S::PRE_COPY},
                               {"nic0", S::RUNNING, S::RUNNING_P2P}}),
       W(WavePhase::kStop, {{"nic0", S::RUNNING_P2P, S::STOP}})},
      PlanSide::kSource);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("wave 1 (stop)"));
  EXPECT_THAT(s.message(), HasSubstr("'nic0' enters STOP"));
  EXPECT_THAT(s.message(), HasSubstr("'gpu0' is in PRE_COPY"));
}

TEST(CheckWavesTest, RefusesStopInTheWaveThatQuiescesAPeer) {
  // Arcs of one wave run concurrently: a peer quiescing in the same wave is
  // not yet quiesced when the stop starts.
  GroupPlan plan =
      PlanMigration({Dev("a", kSc | kP2p), Dev("b", kSc | kP2p)}, {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_TRUE(CheckWaves({Dev("a", kSc | kP2p), Dev("b", kSc | kP2p)},
                         plan.source, PlanSide::kSource)
                  .ok());
  std::vector<Wave> staggered = {
      W(WavePhase::kP2pQuiesce,
        {{"a", S::RUNNING, S::RUNNING_P2P}, {"b", S::RUNNING, S::RUNNING_P2P}}),
      W(WavePhase::kStop, {{"a", S::RUNNING_P2P, S::STOP}}),
  };
  EXPECT_TRUE(CheckWaves({Dev("a", kSc | kP2p), Dev("b", kSc | kP2p)},
                         staggered, PlanSide::kSource)
                  .ok());
  std::vector<Wave> bad = {
      W(WavePhase::kP2pQuiesce, {{"a", S::RUNNING, S::RUNNING_P2P}}),
      W(WavePhase::kStop,
        {{"a", S::RUNNING_P2P, S::STOP}, {"b", S::RUNNING, S::RUNNING_P2P}}),
  };
  EXPECT_FALSE(CheckWaves({Dev("a", kSc | kP2p), Dev("b", kSc | kP2p)}, bad,
                          PlanSide::kSource)
                   .ok());
}

TEST(CheckWavesTest, NonP2pDevicesDoNotHoldTheSourceBarrier) {
  std::vector<Wave> waves = {
      W(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P}}),
      W(WavePhase::kStop, {{"gpu0", S::RUNNING_P2P, S::STOP}})};
  EXPECT_TRUE(CheckWaves({Dev("gpu0", kSc | kP2p), Dev("nic0", kSc)}, waves,
                         PlanSide::kSource)
                  .ok());
  // The same waves with a P2P nic0 that never quiesces.
  EXPECT_FALSE(CheckWaves({Dev("gpu0", kSc | kP2p), Dev("nic0", kSc | kP2p)},
                          waves, PlanSide::kSource)
                   .ok());
}

TEST(CheckWavesTest, RefusesRunningBeforeEveryP2pDeviceRestored) {
  std::vector<PlanDevice> devices = {Dev("gpu0", kFull, S::STOP),
                                     Dev("gpu1", kFull, S::RESUMING)};
  absl::Status s = CheckWaves(
      devices,
      {W(WavePhase::kResumeStop, {{"gpu1", S::RESUMING, S::STOP}}),
       W(WavePhase::kP2pRestore, {{"gpu0", S::STOP, S::RUNNING_P2P}}),
       W(WavePhase::kRunning, {{"gpu0", S::RUNNING_P2P, S::RUNNING},
                               {"gpu1", S::STOP, S::RUNNING_P2P}})},
      PlanSide::kDestination);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("wave 2 (running)"));
  EXPECT_THAT(s.message(), HasSubstr("'gpu1' is in STOP"));
}

TEST(CheckWavesTest, DeviceWaitingForItsDataHoldsTheDestinationBarrier) {
  // gpu1 sits in RUNNING, but it has not loaded its state yet: gpu0 must not
  // run before it has.
  std::vector<PlanDevice> devices = {Dev("gpu0", kSc | kP2p),
                                     Dev("gpu1", kSc | kP2p)};
  std::vector<Wave> waves = {
      W(WavePhase::kPrepareQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P}}),
      W(WavePhase::kPrepareStop, {{"gpu0", S::RUNNING_P2P, S::STOP}}),
      W(WavePhase::kResuming, {{"gpu0", S::STOP, S::RESUMING}}),
      W(WavePhase::kResumeStop, {{"gpu0", S::RESUMING, S::STOP}}),
      W(WavePhase::kP2pRestore, {{"gpu0", S::STOP, S::RUNNING_P2P}}),
      W(WavePhase::kRunning, {{"gpu0", S::RUNNING_P2P, S::RUNNING},
                              {"gpu1", S::RUNNING, S::RUNNING_P2P}}),
      W(WavePhase::kPrepareStop, {{"gpu1", S::RUNNING_P2P, S::STOP}}),
      W(WavePhase::kResuming, {{"gpu1", S::STOP, S::RESUMING}}),
  };
  absl::Status s = CheckWaves(devices, waves, PlanSide::kDestination);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("must load its state"));
}

TEST(CheckWavesTest, RefusesDuplicateDeviceIds) {
  EXPECT_FALSE(
      CheckWaves({Dev("a", kSc), Dev("a", kSc)}, {}, PlanSide::kSource).ok());
}

TEST(IndependentCheckerTest, RejectsWhatItShould) {
  // The property tests lean on Simulate; make sure it can say no.
  std::vector<PlanDevice> devices = ThreeDeviceGroup();
  GroupPlan plan = PlanMigration(devices, {});
  ASSERT_TRUE(plan.migratable);
  EXPECT_EQ(Simulate(devices, plan.source, Rules::kSource).error, "");
  EXPECT_EQ(Simulate(devices, plan.destination, Rules::kDestination).error, "");

  std::vector<Wave> early_stop = plan.source;
  // Pull nic0's stop into the quiesce wave's predecessor (pre-copy).
  early_stop[0].arcs.push_back({"nic0", S::RUNNING, S::RUNNING_P2P});
  early_stop[1].arcs.erase(early_stop[1].arcs.begin() + 2);
  early_stop[1].arcs.push_back({"nic0", S::RUNNING_P2P, S::STOP});
  early_stop[2].arcs.clear();
  early_stop.erase(early_stop.begin() + 2);
  EXPECT_THAT(Simulate(devices, early_stop, Rules::kSource).error,
              HasSubstr("stops before P2P device gpu0"));

  // gpu0 runs while gpu1 and nic0 are still in STOP.
  std::vector<Wave> early_run(plan.destination.begin(),
                              plan.destination.begin() + 4);
  early_run.push_back(
      W(WavePhase::kP2pRestore, {{"gpu0", S::STOP, S::RUNNING_P2P}}));
  early_run.push_back(
      W(WavePhase::kRunning, {{"gpu0", S::RUNNING_P2P, S::RUNNING},
                              {"gpu1", S::STOP, S::RUNNING_P2P},
                              {"nic0", S::STOP, S::RUNNING_P2P}}));
  EXPECT_EQ(Simulate(devices, early_run, Rules::kDestination).error,
            "wave 5: gpu0 runs before gpu1 is loaded and restored");
  EXPECT_FALSE(CheckWaves(devices, early_run, PlanSide::kDestination).ok());

  std::vector<Wave> skip = plan.source;
  skip[1].arcs[2].to = S::STOP;  // nic0 RUNNING -> STOP: two kernel arcs.
  EXPECT_THAT(Simulate(devices, skip, Rules::kSource).error,
              HasSubstr("not one kernel step"));

  std::vector<Wave> reordered = plan.source;
  std::swap(reordered[1].arcs[0], reordered[1].arcs[2]);
  EXPECT_THAT(Simulate(devices, reordered, Rules::kSource).error,
              HasSubstr("input order"));
}

// --- Properties ----------------------------------------------------------

struct RandomGroup {
  std::vector<PlanDevice> devices;
  PlanOptions options;
};

RandomGroup MakeRandomGroup(std::mt19937& rng) {
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  RandomGroup g;
  const int n = std::uniform_int_distribution<int>(1, 8)(rng);
  g.options.allow_no_p2p = chance(0.5);
  for (int i = 0; i < n; ++i) {
    uint32_t flags = std::uniform_int_distribution<uint32_t>(0, 7)(rng);
    // Mostly well-formed devices, so that many groups are migratable.
    if (chance(0.85)) flags |= kSc;
    if (chance(0.5)) flags |= kP2p;
    PlanDevice d = Dev(absl::StrCat("dev", i), flags);
    if (i > 0 && chance(0.04)) {
      d.id = g.devices[std::uniform_int_distribution<int>(0, i - 1)(rng)].id;
    }
    if (chance(0.04)) {
      d.state = kAllDeviceStates[std::uniform_int_distribution<int>(
          0, kNumDeviceStates - 1)(rng)];
    }
    if (chance(0.03)) {
      d.migratable = false;
      d.not_migratable_reason = absl::StrCat("backend says no to ", d.id);
    }
    g.devices.push_back(std::move(d));
  }
  return g;
}

// What the rules say, written out independently of the planner.
std::map<std::string, std::vector<std::string>> ExpectedCulprits(
    const RandomGroup& g) {
  std::map<std::string, std::vector<std::string>> culprits;
  std::map<std::string, int> count;
  for (const PlanDevice& d : g.devices) ++count[d.id];
  const bool p2p_rule = g.devices.size() >= 2 && !g.options.allow_no_p2p;
  for (const PlanDevice& d : g.devices) {
    std::vector<std::string> must_mention;
    if (count[d.id] > 1) must_mention.push_back("unique");
    if (!d.migratable) must_mention.push_back(d.not_migratable_reason);
    if (!d.features.stop_copy()) must_mention.push_back("STOP_COPY");
    if (d.state != S::RUNNING) {
      must_mention.push_back(std::string(DeviceStateName(d.state)));
    }
    if (p2p_rule && !d.features.p2p()) must_mention.push_back("allow_no_p2p");
    if (!must_mention.empty() || culprits.count(d.id)) {
      auto& all = culprits[d.id];
      all.insert(all.end(), must_mention.begin(), must_mention.end());
    }
  }
  return culprits;
}

TEST(PlannerPropertyTest, RandomGroups) {
  std::mt19937 rng(20240611);
  int migratable = 0, blocked = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    RandomGroup g = MakeRandomGroup(rng);
    SCOPED_TRACE(absl::StrCat("iteration ", iter));
    GroupPlan plan = PlanMigration(g.devices, g.options);
    std::map<std::string, std::vector<std::string>> culprits =
        ExpectedCulprits(g);

    ASSERT_EQ(plan.migratable, culprits.empty());
    std::map<std::string, int> named;
    for (const Blocker& b : plan.blockers) {
      ++named[b.device];
      ASSERT_TRUE(culprits.count(b.device)) << "blames " << b.device;
      EXPECT_THAT(b.reason, HasSubstr(b.device));
      for (const std::string& word : culprits[b.device]) {
        EXPECT_THAT(b.reason, HasSubstr(word));
      }
    }
    for (const auto& [id, words] : culprits) EXPECT_EQ(named[id], 1) << id;

    size_t lacking_p2p = 0;
    for (const PlanDevice& d : g.devices) lacking_p2p += !d.features.p2p();
    const bool waived = g.options.allow_no_p2p && g.devices.size() >= 2;
    ASSERT_EQ(plan.warnings.size(), waived ? lacking_p2p : 0);

    ASSERT_EQ(plan.devices.size(), g.devices.size());
    for (size_t i = 0; i < g.devices.size(); ++i) {
      EXPECT_EQ(plan.devices[i].device, g.devices[i].id);
      EXPECT_FALSE(plan.devices[i].reasons.empty());
    }

    if (!plan.migratable) {
      ++blocked;
      EXPECT_THAT(plan.source, SizeIs(0));
      EXPECT_THAT(plan.destination, SizeIs(0));
      continue;
    }
    ++migratable;
    ASSERT_TRUE(CheckWaves(g.devices, plan.source, PlanSide::kSource).ok());
    ASSERT_TRUE(
        CheckWaves(g.devices, plan.destination, PlanSide::kDestination).ok());

    Simulation src = Simulate(g.devices, plan.source, Rules::kSource);
    ASSERT_EQ(src.error, "") << Render(plan.source);
    Simulation dst = Simulate(g.devices, plan.destination, Rules::kDestination);
    ASSERT_EQ(dst.error, "") << Render(plan.destination);
    for (size_t i = 0; i < g.devices.size(); ++i) {
      const PlanDevice& d = g.devices[i];
      EXPECT_EQ(src.final_states[i], S::STOP);
      EXPECT_TRUE(Contains(src.visited[i], S::STOP_COPY));
      EXPECT_EQ(Contains(src.visited[i], S::PRE_COPY), d.features.pre_copy());
      EXPECT_EQ(dst.final_states[i], S::RUNNING);
      EXPECT_TRUE(Contains(dst.visited[i], S::RESUMING));
      EXPECT_EQ(src.visited[i], plan.devices[i].source_path);
      EXPECT_EQ(dst.visited[i], plan.devices[i].destination_path);
    }
    for (const std::vector<Wave>* side : {&plan.source, &plan.destination}) {
      for (size_t w = 1; w < side->size(); ++w) {
        EXPECT_LT((*side)[w - 1].phase, (*side)[w].phase);
      }
    }
    // Data moves where the engine expects it.
    for (const Wave& w : plan.source) {
      for (const PlannedArc& a : w.arcs) {
        EXPECT_EQ(a.to == S::STOP_COPY, w.phase == WavePhase::kStopCopy);
        EXPECT_EQ(a.from == S::RUNNING && a.to == S::PRE_COPY,
                  w.phase == WavePhase::kPreCopy);
      }
    }
    for (const Wave& w : plan.destination) {
      for (const PlannedArc& a : w.arcs) {
        EXPECT_EQ(a.to == S::RESUMING, w.phase == WavePhase::kResuming);
      }
    }
  }
  // The generator must exercise both outcomes in earnest.
  EXPECT_GT(migratable, 1000);
  EXPECT_GT(blocked, 500);
}

// States a group can be in when a migration fails: some waves done, and the
// failing wave only partly done (its arcs run concurrently).
std::vector<PlanDevice> CutAt(const std::vector<PlanDevice>& devices,
                              const std::vector<Wave>& waves,
                              std::mt19937& rng) {
  std::vector<PlanDevice> out = devices;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < out.size(); ++i) index[out[i].id] = i;
  const size_t cut =
      std::uniform_int_distribution<size_t>(0, waves.size())(rng);
  for (size_t w = 0; w < cut && w < waves.size(); ++w) {
    const bool last = w + 1 == cut;
    for (const PlannedArc& a : waves[w].arcs) {
      if (last && std::bernoulli_distribution(0.5)(rng)) continue;
      out[index[a.device]].state = a.to;
    }
  }
  return out;
}

void ExpectRollbackHome(const std::vector<PlanDevice>& at) {
  absl::StatusOr<std::vector<Wave>> waves = PlanRollback(at);
  ASSERT_TRUE(waves.ok()) << waves.status();
  Simulation sim = Simulate(at, *waves, Rules::kRollback);
  ASSERT_EQ(sim.error, "") << Render(*waves);
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_EQ(sim.final_states[i], S::RUNNING) << at[i].id;
    if (at[i].state == S::RUNNING) {
      EXPECT_THAT(sim.visited[i], SizeIs(1)) << at[i].id;
    }
    if (at[i].state == S::PRE_COPY) {
      EXPECT_THAT(sim.visited[i], ElementsAre(S::PRE_COPY, S::RUNNING));
    }
  }
  for (size_t w = 1; w < waves->size(); ++w) {
    EXPECT_LT((*waves)[w - 1].phase, (*waves)[w].phase);
  }
}

TEST(PlannerPropertyTest, RollbackFromAnyPointOfAPlan) {
  std::mt19937 rng(7);
  int rolled = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    RandomGroup g = MakeRandomGroup(rng);
    GroupPlan plan = PlanMigration(g.devices, g.options);
    if (!plan.migratable) continue;
    SCOPED_TRACE(absl::StrCat("iteration ", iter));
    for (const std::vector<Wave>* side : {&plan.source, &plan.destination}) {
      std::vector<PlanDevice> at = CutAt(g.devices, *side, rng);
      ExpectRollbackHome(at);
      ++rolled;
    }
  }
  EXPECT_GT(rolled, 2000);
}

TEST(PlannerPropertyTest, RollbackFromArbitraryStates) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 3000; ++iter) {
    SCOPED_TRACE(absl::StrCat("iteration ", iter));
    const int n = std::uniform_int_distribution<int>(1, 8)(rng);
    std::vector<PlanDevice> devices;
    bool any_error = false;
    for (int i = 0; i < n; ++i) {
      MigrationFeatures f(kSc |
                          std::uniform_int_distribution<uint32_t>(0, 7)(rng));
      std::vector<S> supported;
      for (S s : kAllDeviceStates) {
        if (StateSupported(f, s)) supported.push_back(s);
      }
      S state = supported[std::uniform_int_distribution<size_t>(
          0, supported.size() - 1)(rng)];
      if (std::bernoulli_distribution(0.02)(rng)) state = S::ERROR;
      any_error |= state == S::ERROR;
      devices.push_back(Dev(absl::StrCat("d", i), f.flags(), state));
    }
    if (any_error) {
      EXPECT_EQ(PlanRollback(devices).status().code(),
                absl::StatusCode::kFailedPrecondition);
    } else {
      ExpectRollbackHome(devices);
    }
  }
}

TEST(PlannerPerformanceTest, TwoHundredFiftySixDevices) {
  std::vector<PlanDevice> devices;
  devices.reserve(256);
  const uint32_t kinds[] = {kFull, kSc | kP2p, kSc | kPre, kSc};
  for (int i = 0; i < 256; ++i) {
    devices.push_back(Dev(absl::StrCat("dev", i), kinds[i % 4]));
  }
  PlanOptions options;
  options.allow_no_p2p = true;
  auto best = std::chrono::nanoseconds::max();
  for (int run = 0; run < 20; ++run) {
    auto start = std::chrono::steady_clock::now();
    GroupPlan plan = PlanMigration(devices, options);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(plan.migratable);
    best = std::min(best,
                    std::chrono::duration_cast<std::chrono::nanoseconds>(took));
  }
  // The budget is for optimized builds; unoptimized and sanitizer builds are
  // several times slower, and only a gross regression should fail them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr auto kBudget = std::chrono::milliseconds(50);
#elif defined(NDEBUG)
  constexpr auto kBudget = std::chrono::milliseconds(1);
#else
  constexpr auto kBudget = std::chrono::milliseconds(10);
#endif
  EXPECT_LT(best, kBudget) << best.count() << " ns";
  GroupPlan plan = PlanMigration(devices, options);
  EXPECT_TRUE(CheckWaves(devices, plan.source, PlanSide::kSource).ok());
  EXPECT_TRUE(
      CheckWaves(devices, plan.destination, PlanSide::kDestination).ok());
}

}  // namespace
}  // namespace vfiomig
