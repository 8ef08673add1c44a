// TransitionExecutor waves: concurrency, deadlines under both policies,
// failures, busy devices, sessions, GetState and shutdown.
#include "daemon/engine/transition_executor.h"

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
using TransitionExecutorTest = EngineTest;

TEST_F(TransitionExecutorTest, WaveRunsItsArcsConcurrently) {
  // Each arc waits at a barrier until all three have started: sequential
  // execution could never pass it.
  auto barrier = std::make_shared<Barrier>(3);
  std::map<std::string, std::shared_ptr<Device>> devices;
  std::vector<std::shared_ptr<FakeDevice>> fakes;
  for (const char* id : {"gpu0", "gpu1", "nic0"}) {
    auto fake = std::make_shared<FakeDevice>(id, kSc | kP2p, S::RUNNING);
    fake->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::AtBarrier(barrier));
    fakes.push_back(fake);
    devices[id] = fake;
  }
  Recorder rec;
  TransitionExecutor ex(devices, Generous(), DeadlinePolicy::kSla, &rec, "m1");
  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"gpu1", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.arcs.size(), 3u);
  for (const ArcResult& a : r.arcs) {
    EXPECT_TRUE(a.status.ok()) << a.status;
    EXPECT_FALSE(a.still_running);
    EXPECT_FALSE(a.late);
    EXPECT_EQ(a.session, nullptr);
  }
  for (const auto& f : fakes) EXPECT_EQ(f->state(), S::RUNNING_P2P);
  EXPECT_EQ(rec.started.size(), 3u);
  EXPECT_EQ(rec.finished.size(), 3u);
  EXPECT_THAT(rec.late, IsEmpty());
}

TEST_F(TransitionExecutorTest, EmptyWaveSucceeds) {
  TransitionExecutor ex({}, Generous(), DeadlinePolicy::kSla, nullptr, "m");
  WaveResult r = ex.RunWave(MakeWave(WavePhase::kStop, {}));
  EXPECT_TRUE(r.status.ok());
  EXPECT_THAT(r.arcs, IsEmpty());
}

TEST_F(TransitionExecutorTest, SlaHungDrainEndsWaveAtDeadlineThenRollsBack) {
  auto gpu = Sim("gpu0", kSc | kP2p, absl::Milliseconds(3000));
  auto nic = Sim("nic0", kSc | kP2p);
  Recorder rec;
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}},
                        DrainWithin(absl::Milliseconds(300)),
                        DeadlinePolicy::kSla, &rec, "m-sla");
  const absl::Time start = absl::Now();
  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Milliseconds(3000));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded) << r.status;
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("gpu0: RUNNING>RUNNING_P2P did not finish within "
                        "300 ms (drain timeout)"));
  ASSERT_TRUE(r.failed_arc.has_value());
  EXPECT_EQ(Arc(*r.failed_arc), "gpu0 RUNNING>RUNNING_P2P");
  ASSERT_EQ(r.arcs.size(), 2u);
  EXPECT_TRUE(r.arcs[0].still_running);
  EXPECT_TRUE(r.arcs[0].late);
  EXPECT_EQ(r.arcs[0].status.code(), absl::StatusCode::kDeadlineExceeded);

  // Rollback waits for the drain to return, then brings both back.
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  ASSERT_EQ(report.devices.size(), 2u);
  for (const DeviceRollback& d : report.devices) {
    EXPECT_EQ(d.final_state, S::RUNNING) << d.device;
    EXPECT_FALSE(d.was_reset) << d.device;
    EXPECT_EQ(d.error, "") << d.device;
  }
  EXPECT_EQ(*gpu->GetState(), S::RUNNING);
  EXPECT_EQ(*nic->GetState(), S::RUNNING);
  EXPECT_THAT(rec.resets, IsEmpty());
}

TEST_F(TransitionExecutorTest, SlaReturnsWhileCallHangsAndRollbackWaitsForIt) {
  DeviceGroup group;
  auto gpu =
      std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING, &group);
  auto nic =
      std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::RUNNING, &group);
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}},
                        DrainWithin(absl::Milliseconds(100)),
                        DeadlinePolicy::kSla, nullptr, "m-gate");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));

  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  // RunWave came back while the device was still inside the arc.
  EXPECT_TRUE(gpu->in_arc());
  EXPECT_TRUE(r.arcs[0].still_running);

  std::thread opener([gate] {
    absl::SleepFor(absl::Milliseconds(200));
    gate->Open();
  });
  RollbackReport report = ex.Rollback();
  opener.join();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_EQ(gpu->state(), S::RUNNING);
  EXPECT_EQ(nic->state(), S::RUNNING);
  EXPECT_THAT(gpu->arcs(),
              ElementsAre("RUNNING>RUNNING_P2P", "RUNNING_P2P>RUNNING"));
  EXPECT_THAT(nic->arcs(),
              ElementsAre("RUNNING>RUNNING_P2P", "RUNNING_P2P>RUNNING"));
  // The arc back started only after the hung one returned.
  EXPECT_LT(group.IndexOf("gpu0 end RUNNING_P2P"),
            group.IndexOf("gpu0 start RUNNING_P2P>RUNNING"));
  EXPECT_THAT(group.violations(), IsEmpty());
}

TEST_F(TransitionExecutorTest, MandatoryWarnsAboutLateArcAndWaits) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::RUNNING);
  Recorder rec;
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}},
                        DrainWithin(absl::Milliseconds(50)),
                        DeadlinePolicy::kMandatory, &rec, "m-mand");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));
  // The drain ends only after the executor said it is late.
  rec.on_late = [gate](const PlannedArc&) { gate->Open(); };

  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(rec.late, ElementsAre("gpu0 RUNNING>RUNNING_P2P"));
  EXPECT_TRUE(r.arcs[0].late);
  EXPECT_FALSE(r.arcs[0].still_running);
  EXPECT_TRUE(r.arcs[0].status.ok());
  EXPECT_EQ(gpu->state(), S::RUNNING_P2P);
  EXPECT_EQ(nic->state(), S::RUNNING_P2P);
}

TEST_F(TransitionExecutorTest, MandatoryWaitsForSlowSimDrain) {
  auto gpu = Sim("gpu0", kSc | kP2p, absl::Milliseconds(1000));
  Recorder rec;
  TransitionExecutor ex({{"gpu0", gpu}}, DrainWithin(absl::Milliseconds(100)),
                        DeadlinePolicy::kMandatory, &rec, "m-mand-sim");
  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P}}));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(rec.late, ElementsAre("gpu0 RUNNING>RUNNING_P2P"));
  EXPECT_TRUE(r.arcs[0].late);
  EXPECT_GE(r.arcs[0].elapsed, absl::Milliseconds(1000));
  EXPECT_EQ(*gpu->GetState(), S::RUNNING_P2P);
}

TEST_F(TransitionExecutorTest, MandatoryStillEndsWaveOnFailure) {
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::RUNNING);
  nic->Script(S::RUNNING, S::RUNNING_P2P,
              ArcScript::Failing(absl::InternalError("driver says no")));
  TransitionExecutor ex({{"nic0", nic}}, Generous(), DeadlinePolicy::kMandatory,
                        nullptr, "m");
  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"nic0", S::RUNNING, S::RUNNING_P2P}}));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("nic0: RUNNING>RUNNING_P2P failed: driver says no"));
}

TEST_F(TransitionExecutorTest, FailedArcEndsWaveWhileAnotherHangs) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::RUNNING);
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}}, Generous(),
                        DeadlinePolicy::kSla, nullptr, "m");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));
  nic->Script(S::RUNNING, S::RUNNING_P2P,
              ArcScript::Failing(absl::UnavailableError("link down")));
  WaveResult r = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"nic0", S::RUNNING, S::RUNNING_P2P}}));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status.message()),
              HasSubstr("nic0: RUNNING>RUNNING_P2P failed: link down"));
  ASSERT_TRUE(r.failed_arc.has_value());
  EXPECT_EQ(r.failed_arc->device, "nic0");
  EXPECT_TRUE(r.arcs[0].still_running);
  EXPECT_EQ(r.arcs[0].status.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(r.arcs[1].still_running);

  gate->Open();
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_EQ(gpu->state(), S::RUNNING);
  EXPECT_EQ(nic->state(), S::RUNNING);
}

TEST_F(TransitionExecutorTest, BusyDeviceRefusesNewWaveWithoutStartingAny) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  auto nic = std::make_shared<FakeDevice>("nic0", kSc | kP2p, S::RUNNING_P2P);
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}},
                        DrainWithin(absl::Milliseconds(50)),
                        DeadlinePolicy::kSla, nullptr, "m-busy");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));
  WaveResult first = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P}}));
  ASSERT_EQ(first.status.code(), absl::StatusCode::kDeadlineExceeded);

  WaveResult second = ex.RunWave(MakeWave(
      WavePhase::kStop,
      {{"nic0", S::RUNNING_P2P, S::STOP}, {"gpu0", S::RUNNING_P2P, S::STOP}}));
  EXPECT_EQ(second.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status.message()),
              HasSubstr("gpu0: RUNNING_P2P>STOP: not started"));
  EXPECT_THAT(std::string(second.status.message()),
              HasSubstr("RUNNING>RUNNING_P2P has not returned"));
  ASSERT_TRUE(second.failed_arc.has_value());
  EXPECT_EQ(second.failed_arc->device, "gpu0");
  ASSERT_EQ(second.arcs.size(), 2u);
  EXPECT_EQ(second.arcs[0].status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(nic->sets(), 0);  // the wave started none of its arcs
  EXPECT_EQ(gpu->sets(), 1);

  gate->Open();
  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
  EXPECT_EQ(gpu->state(), S::RUNNING);
  EXPECT_EQ(nic->state(), S::RUNNING);
}

TEST_F(TransitionExecutorTest, WaveRefusesUnknownAndDuplicateDevices) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  TransitionExecutor ex({{"gpu0", gpu}}, Generous(), DeadlinePolicy::kSla,
                        nullptr, "m");
  WaveResult unknown = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"gpu9", S::RUNNING, S::RUNNING_P2P}}));
  EXPECT_EQ(unknown.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status.message()), HasSubstr("gpu9"));
  WaveResult twice = ex.RunWave(
      MakeWave(WavePhase::kP2pQuiesce, {{"gpu0", S::RUNNING, S::RUNNING_P2P},
                                        {"gpu0", S::RUNNING_P2P, S::STOP}}));
  EXPECT_EQ(twice.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.status.message()), HasSubstr("second arc"));
  EXPECT_EQ(gpu->sets(), 0);
}

TEST_F(TransitionExecutorTest, SessionsComeBackFromArcsThatOpenThem) {
  auto gpu = Sim("gpu0", kFull);
  auto nic = Sim("nic0", kSc | kP2p);
  TransitionExecutor ex({{"gpu0", gpu}, {"nic0", nic}}, Generous(),
                        DeadlinePolicy::kSla, nullptr, "m-sess");
  auto run = [&](const std::string& dev, S from, S to) {
    WaveResult r = ex.RunWave(MakeWave(WavePhase::kPreCopy, {{dev, from, to}}));
    EXPECT_TRUE(r.status.ok()) << r.status;
    return r.arcs.empty() ? nullptr : std::move(r.arcs[0].session);
  };
  std::unique_ptr<DataSession> pre = run("gpu0", S::RUNNING, S::PRE_COPY);
  ASSERT_NE(pre, nullptr);
  std::vector<uint8_t> buf(4096);
  absl::StatusOr<size_t> n = pre->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0u);
  EXPECT_EQ(run("gpu0", S::PRE_COPY, S::PRE_COPY_P2P), nullptr);
  EXPECT_EQ(run("gpu0", S::PRE_COPY_P2P, S::STOP_COPY), nullptr);

  EXPECT_EQ(run("nic0", S::RUNNING, S::RUNNING_P2P), nullptr);
  EXPECT_EQ(run("nic0", S::RUNNING_P2P, S::STOP), nullptr);
  std::unique_ptr<DataSession> stop_copy = run("nic0", S::STOP, S::STOP_COPY);
  ASSERT_NE(stop_copy, nullptr);
  n = stop_copy->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GT(*n, 0u);

  RollbackReport report = ex.Rollback();
  EXPECT_TRUE(report.status.ok()) << report.status;
}

TEST_F(TransitionExecutorTest, GetStateRunsBehindTheInFlightCall) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  TransitionExecutor ex({{"gpu0", gpu}}, DrainWithin(absl::Milliseconds(20)),
                        DeadlinePolicy::kSla, nullptr, "m-get");
  Gates gates;
  auto gate = gates.New();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));
  ASSERT_FALSE(ex.RunWave(MakeWave(WavePhase::kP2pQuiesce,
                                   {{"gpu0", S::RUNNING, S::RUNNING_P2P}}))
                   .status.ok());
  absl::StatusOr<DeviceState> got = absl::UnknownError("unset");
  std::thread reader([&] { got = ex.GetState("gpu0"); });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(gpu->gets(), 0);  // queued behind the hung SET
  gate->Open();
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, S::RUNNING_P2P);
  EXPECT_EQ(gpu->gets(), 1);
  EXPECT_EQ(ex.GetState("gpu9").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TransitionExecutorTest, DestructorWaitsForHungCall) {
  auto gpu = std::make_shared<FakeDevice>("gpu0", kSc | kP2p, S::RUNNING);
  auto gate = std::make_shared<Gate>();
  gpu->Script(S::RUNNING, S::RUNNING_P2P, ArcScript::Gated(gate));
  auto ex = std::make_unique<TransitionExecutor>(
      std::map<std::string, std::shared_ptr<Device>>{{"gpu0", gpu}},
      DrainWithin(absl::Milliseconds(20)), DeadlinePolicy::kSla, nullptr,
      "m-dtor");
  ASSERT_FALSE(ex->RunWave(MakeWave(WavePhase::kP2pQuiesce,
                                    {{"gpu0", S::RUNNING, S::RUNNING_P2P}}))
                   .status.ok());
  std::atomic<bool> destroyed{false};
  std::thread killer([&] {
    ex.reset();
    destroyed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(destroyed.load());
  EXPECT_TRUE(gpu->in_arc());
  gate->Open();
  killer.join();
  EXPECT_TRUE(destroyed.load());
  EXPECT_FALSE(gpu->in_arc());
  EXPECT_EQ(gpu->state(), S::RUNNING_P2P);
}

}  // namespace
}  // namespace vfiomig::enginetest
