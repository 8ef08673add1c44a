// TransitionExecutor::Rollback: failed and broken arcs, resets, the P2P
// order on the way back, and deadlines that only warn.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "daemon/engine/transition_executor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/engine/fake_device.h"
#include "tests/daemon/engine/test_support.h"

namespace vfiomig::enginetest {
namespace {

using S = DeviceState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ExecutorRollbackTest = EngineTest;

TEST_F(ExecutorRollbackTest, SimFailedArcNamesItAndRollbackRestoresRunning) {
  auto gpu = Sim("gpu0", kSc | kP2p);
  auto nic = Sim("nic0", kSc | kP2p, absl::ZeroDuration(),
                 {sim::FailArc{S::RUNNING_P2P, S::STOP, false}});
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}}, Generous(),
                        DeadlinePolicy::kSla, nullptr, "m-fail");
  WaveResult quiesce = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  ASSERT_TRUE(quiesce.status.ok()) << quiesce.status;
  WaveResult stop = ex.RunWave(MakeWave(
      WavePhase::kStop,
      {{"gpu0", S::RUNNING_P2P, S::STOP}, {"nic0", S::RUNNING_P2P, S::STOP}}));
  EXPECT_FALSE(stop.status.ok());
  EXPECT_THAT(std::string(stop.status.message()),
              HasSubstr("nic0: RUNNING_P2P>STOP failed"));
  ASSERT_TRUE(stop.failed_arc.has_value());
  EXPECT_EQ(Arc(*stop.failed_arc), "nic0 RUNNING_P2P>STOP");

  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_EQ(*gpu->GetState(), S::RUNNING);
  EXPECT_EQ(*nic->GetState(), S::RUNNING);
  for (const DeviceRollback& d : report.devices) {
    EXPECT_FALSE(d.was_reset) << d.device;
  }
}

TEST_F(ExecutorRollbackTest, ArcIntoErrorIsResetByRollback) {
  auto gpu = Sim("gpu0", kSc | kP2p);
  auto nic = Sim("nic0", kSc | kP2p, absl::ZeroDuration(),
                 {sim::FailArc{S::RUNNING_P2P, S::STOP, true}});
  Recorder rec;
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}}, Generous(),
                        DeadlinePolicy::kSla, &rec, "m-err");
  ASSERT_TRUE(ex.RunWave(MakeWave(WavePhase::kP2pQuiesce,
                                  {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                   {"nic0", S::RUNNING, S::RUNNING_P2P}}))
                  .status.ok());
  WaveResult stop = ex.RunWave(MakeWave(
      WavePhase::kStop,
      {{"gpu0", S::RUNNING_P2P, S::STOP}, {"nic0", S::RUNNING_P2P, S::STOP}}));
  EXPECT_FALSE(stop.status.ok());
  EXPECT_THAT(std::string(stop.status.message()), HasSubstr("GET says ERROR"));

  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  const DeviceRollback* n = Find(report, "nic0");
  const DeviceRollback* g = Find(report, "gpu0");
  ASSERT_NE(n, nullptr);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(n->was_reset);
  EXPECT_EQ(n->final_state, S::RUNNING);
  EXPECT_THAT(n->error, HasSubstr("ERROR"));
  EXPECT_FALSE(g->was_reset);
  EXPECT_EQ(g->final_state, S::RUNNING);
  EXPECT_EQ(g->error, "");
  EXPECT_THAT(rec.resets, ElementsAre("nic0"));
  EXPECT_EQ(*nic->GetState(), S::RUNNING);
  EXPECT_EQ(*gpu->GetState(), S::RUNNING);
}

TEST_F(ExecutorRollbackTest, RollbackKeepsP2pPeersOutOfRunningUntilAllAccept) {
  DeviceGroup group;
  auto gpu =
      std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::STOP_COPY, &group);
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::STOP, &group);
  auto fpga = std::make_shared<FakeDevice>("fpga0", kFull, S::PRE_COPY, &group);
  auto vf = std::make_shared<FakeDevice>("vf0", kSc, S::STOP, &group);
  // gpu0 is slow to leave STOP_COPY, so the others reach their barrier
  // states long before it and must wait there.
  gpu->Script(S::STOP_COPY, S::STOP,
              ArcScript::Delayed(absl::Milliseconds(150)));
  Recorder rec;
  TransitionExecutor ex(
      {{"gpu0", gpu}, {"nic0", nic}, {"fpga0", fpga}, {"vf0", vf}}, Generous(),
      DeadlinePolicy::kSla, &rec, "m-order");
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_THAT(group.violations(), IsEmpty());
  EXPECT_THAT(gpu->arcs(), ElementsAre("STOP_COPY>STOP", "STOP>RUNNING_P2P",
                                       "RUNNING_P2P>RUNNING"));
  EXPECT_THAT(nic->arcs(),
              ElementsAre("STOP>RUNNING_P2P", "RUNNING_P2P>RUNNING"));
  EXPECT_THAT(fpga->arcs(), ElementsAre("PRE_COPY>RUNNING"));
  EXPECT_THAT(vf->arcs(), ElementsAre("STOP>RUNNING"));
  // Nobody started into RUNNING before gpu0 was back in RUNNING_P2P.
  const int gpu_ready = group.IndexOf("gpu0 end RUNNING_P2P");
  ASSERT_GE(gpu_ready, 0);
  for (const char* e :
       {"nic0 start RUNNING_P2P>RUNNING", "fpga0 start PRE_COPY>RUNNING",
        "vf0 start STOP>RUNNING"}) {
    EXPECT_GT(group.IndexOf(e), gpu_ready) << e;
  }
  for (const DeviceRollback& d : report.devices) {
    EXPECT_EQ(d.final_state, S::RUNNING) << d.device;
  }
  EXPECT_EQ(rec.started.size(), 7u);
  EXPECT_EQ(rec.finished.size(), 7u);
}

TEST_F(ExecutorRollbackTest, ArcBackThatCannotProgressLeadsToReset) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING_P2P);
  gpu->Script(S::RUNNING_P2P, S::RUNNING,
              ArcScript::Failing(absl::InternalError("stuck")));
  Recorder rec;
  TransitionExecutor ex({{"gpu0", gpu}}, Generous(), DeadlinePolicy::kSla, &rec,
                        "m-stuck");
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  ASSERT_EQ(report.devices.size(), 1u);
  EXPECT_TRUE(report.devices[0].was_reset);
  EXPECT_EQ(report.devices[0].final_state, S::RUNNING);
  EXPECT_THAT(report.devices[0].error, HasSubstr("stayed in RUNNING_P2P"));
  EXPECT_EQ(gpu->resets(), 1);
  EXPECT_EQ(gpu->state(), S::RUNNING);
  EXPECT_THAT(rec.resets, ElementsAre("gpu0"));
}

TEST_F(ExecutorRollbackTest, FailedResetIsReportedAndPeersStillReturn) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::ERROR);
  gpu->FailReset(absl::InternalError("FLR timed out"));
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::STOP);
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}}, Generous(),
                        DeadlinePolicy::kSla, nullptr, "m-flr");
  RollbackReport report = ex.Rollback();
  EXPECT_EQ(report.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(report.status.message()), HasSubstr("gpu0 in ERROR"));
  EXPECT_THAT(std::string(report.status.message()), HasSubstr("FLR timed out"));
  const DeviceRollback* g = Find(report, "gpu0");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->was_reset);
  EXPECT_EQ(g->final_state, S::ERROR);
  EXPECT_EQ(gpu->resets(), 1);
  EXPECT_EQ(nic->state(), S::RUNNING);
  EXPECT_EQ(Find(report, "nic0")->final_state, S::RUNNING);
}

TEST_F(ExecutorRollbackTest, RollbackDeadlinesOnlyWarn) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING_P2P);
  Recorder rec;
  ArcDeadlines d = Generous();
  d.arc = absl::Milliseconds(30);
  TransitionExecutor ex({{"gpu0", gpu}}, d, DeadlinePolicy::kSla, &rec, "m");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING_P2P, S::RUNNING, ArcScript::Gated(gate));
  rec.on_late = [gate](const PlannedArc&) { gate->Open(); };
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_THAT(rec.late, ElementsAre("gpu0 RUNNING_P2P>RUNNING"));
  EXPECT_EQ(gpu->state(), S::RUNNING);
  EXPECT_FALSE(report.devices[0].was_reset);
}

}  // namespace
}  // namespace vfiomig::enginetest
