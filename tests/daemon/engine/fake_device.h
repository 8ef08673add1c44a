// A Device that stands in for hardware in engine tests: per-arc delays,
// failures, a break into ERROR, gates the test holds closed to simulate a
// hung drain, barriers that prove arcs overlap, and counts of every call.
// A DeviceGroup records the arcs of several fakes in order and checks the
// P2P rule on every event.
#ifndef VFIOMIG_TESTS_DAEMON_ENGINE_FAKE_DEVICE_H_
#define VFIOMIG_TESTS_DAEMON_ENGINE_FAKE_DEVICE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"
#include "plugins/backend.h"

namespace vfiomig::enginetest {

// Closed until Open(); arcs scripted with it wait there.
class Gate {
 public:
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&open_));
  }

 private:
  absl::Mutex mu_;
  bool open_ = false;
};

// Opens every gate it made when it goes: declared after the executor in a
// test, it lets a failing test end instead of hanging in the executor's
// destructor.
class Gates {
 public:
  ~Gates() {
    for (auto& g : gates_) g->Open();
  }
  std::shared_ptr<Gate> New() {
    gates_.push_back(std::make_shared<Gate>());
    return gates_.back();
  }

 private:
  std::vector<std::shared_ptr<Gate>> gates_;
};

// Lets `count` arcs through only once all of them have arrived: proof that
// they run at the same time.
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  bool ArriveAndWait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    ++arrived_;
    auto all_here = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return arrived_ >= count_;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all_here), timeout);
  }

 private:
  absl::Mutex mu_;
  const int count_;
  int arrived_ = 0;
};

struct ArcScript {
  absl::Duration delay = absl::ZeroDuration();
  std::shared_ptr<Gate> gate;
  std::shared_ptr<Barrier> barrier;
  // Not OK: the arc fails with this, leaving the device in FROM or ERROR.
  absl::Status fail;
  bool to_error = false;

  static ArcScript Delayed(absl::Duration d) {
    ArcScript s;
    s.delay = d;
    return s;
  }
  static ArcScript Gated(std::shared_ptr<Gate> g) {
    ArcScript s;
    s.gate = std::move(g);
    return s;
  }
  static ArcScript AtBarrier(std::shared_ptr<Barrier> b) {
    ArcScript s;
    s.barrier = std::move(b);
    return s;
  }
  static ArcScript Failing(absl::Status status, bool to_error = false) {
    ArcScript s;
    s.fail = std::move(status);
    s.to_error = to_error;
    return s;
  }
};

// Event log and P2P checker shared by the fakes of one test.
class DeviceGroup {
 public:
  void Add(const std::string& id, MigrationFeatures features,
           DeviceState state);
  void ArcStarted(const std::string& id, DeviceState from, DeviceState to);
  void ArcEnded(const std::string& id, DeviceState now);
  void WasReset(const std::string& id);

  std::vector<std::string> events() const;
  // Every moment a device was inside an arc into RUNNING while another P2P
  // device did not accept DMA.
  std::vector<std::string> violations() const;
  // Position of `event` in events(), or -1.
  int IndexOf(const std::string& event) const;

 private:
  struct Member {
    bool p2p = false;
    DeviceState state = DeviceState::RUNNING;
    std::optional<DeviceState> to;
  };
  void CheckLocked(const std::string& when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Member> members_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
};

class FakeDevice final : public Device {
 public:
  FakeDevice(std::string id, uint32_t flags, DeviceState initial,
             DeviceGroup* group = nullptr);

  void Script(DeviceState from, DeviceState to, ArcScript script);
  void FailReset(absl::Status status);

  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<DeviceState> GetState() override;
  absl::StatusOr<std::unique_ptr<DataSession>> SetState(
      DeviceState next) override;
  absl::StatusOr<uint64_t> StopCopySize() override { return 0; }
  absl::Status Reset() override;

  DeviceState state() const;
  bool in_arc() const;
  int sets() const;
  int gets() const;
  int resets() const;
  // Every SET attempted, as "FROM>TO", in order.
  std::vector<std::string> arcs() const;

 private:
  const DeviceInfo info_;
  DeviceGroup* const group_;
  mutable absl::Mutex mu_;
  DeviceState state_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<DeviceState, DeviceState>, ArcScript> scripts_
      ABSL_GUARDED_BY(mu_);
  absl::Status reset_status_ ABSL_GUARDED_BY(mu_);
  bool in_arc_ ABSL_GUARDED_BY(mu_) = false;
  int sets_ ABSL_GUARDED_BY(mu_) = 0;
  int gets_ ABSL_GUARDED_BY(mu_) = 0;
  int resets_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> arcs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig::enginetest

#endif  // VFIOMIG_TESTS_DAEMON_ENGINE_FAKE_DEVICE_H_
