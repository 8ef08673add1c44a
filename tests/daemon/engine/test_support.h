// Helpers shared by the engine tests: deadlines, an observer that records,
// sim devices, a fixture that formats every log line.
#ifndef VFIOMIG_TESTS_DAEMON_ENGINE_TEST_SUPPORT_H_
#define VFIOMIG_TESTS_DAEMON_ENGINE_TEST_SUPPORT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "daemon/engine/transition_executor.h"
#include "gtest/gtest.h"
#include "plugins/sim/sim_device.h"
#include "spdlog/spdlog.h"

namespace vfiomig::enginetest {

inline constexpr uint32_t kSc = VFIO_MIGRATION_STOP_COPY;
inline constexpr uint32_t kP2p = VFIO_MIGRATION_P2P;
inline constexpr uint32_t kPre = VFIO_MIGRATION_PRE_COPY;
inline constexpr uint32_t kFull = kSc | kP2p | kPre;

// Deadlines no healthy arc in these tests comes near, even on a loaded
// machine; tests that want an arc late shorten one kind.
inline ArcDeadlines Generous() {
  ArcDeadlines d;
  d.drain = absl::Seconds(60);
  d.arc = absl::Seconds(60);
  return d;
}

inline ArcDeadlines DrainWithin(absl::Duration drain) {
  ArcDeadlines d = Generous();
  d.drain = drain;
  return d;
}

inline std::string Arc(const PlannedArc& a) {
  return absl::StrCat(a.device, " ", ArcName(a.from, a.to));
}

// Records what the executor reports; optional hooks let a test act at the
// moment an event happens (e.g. open a gate once an arc is late).
class Recorder : public ExecutorObserver {
 public:
  void OnArcStarted(const PlannedArc& arc) override {
    started.push_back(Arc(arc));
  }
  void OnArcFinished(const ArcResult& r) override {
    finished.push_back(Arc(r.arc));
  }
  void OnArcLate(const PlannedArc& arc, absl::Duration elapsed,
                 absl::Duration deadline) override {
    late.push_back(Arc(arc));
    EXPECT_GE(elapsed, deadline);
    if (on_late) on_late(arc);
  }
  void OnDeviceReset(const std::string& device,
                     const absl::Status& why) override {
    resets.push_back(device);
    EXPECT_FALSE(why.ok());
  }

  std::vector<std::string> started, finished, late, resets;
  std::function<void(const PlannedArc&)> on_late;
};

inline Wave MakeWave(WavePhase phase, std::vector<PlannedArc> arcs) {
  return Wave{phase, std::move(arcs)};
}

inline std::shared_ptr<sim::SimDevice> Sim(
    std::string id, uint32_t flags, absl::Duration drain = absl::ZeroDuration(),
    std::vector<sim::FailArc> fail = {}) {
  sim::SimDeviceConfig c;
  c.id = std::move(id);
  c.features = MigrationFeatures(flags);
  c.state_bytes = 256 * 1024;
  c.precopy_bytes = (flags & kPre) ? c.state_bytes : 0;
  c.drain = drain;
  c.fail_arcs = std::move(fail);
  c.seed = sim::DefaultSeed(c.id);
  return sim::SimDevice::Create(std::move(c));
}

inline const DeviceRollback* Find(const RollbackReport& report,
                                  const std::string& id) {
  for (const DeviceRollback& d : report.devices) {
    if (d.device == id) return &d;
  }
  return nullptr;
}

class EngineTest : public ::testing::Test {
 protected:
  // Every log line is formatted, so that logging mistakes fail here.
  void SetUp() override { spdlog::set_level(spdlog::level::debug); }
  void TearDown() override { spdlog::set_level(spdlog::level::info); }
};

}  // namespace vfiomig::enginetest

#endif  // VFIOMIG_TESTS_DAEMON_ENGINE_TEST_SUPPORT_H_
