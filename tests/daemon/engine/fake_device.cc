#include "tests/daemon/engine/fake_device.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/core/rollback.h"

namespace vfiomig::enginetest {
namespace {

absl::string_view Name(DeviceState s) {
  std::string_view n = DeviceStateName(s);
  return {n.data(), n.size()};
}

// A session that is only there to be handed back.
class FakeSession final : public DataSession {
 public:
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) override { return 0; }
  absl::Status Write(absl::Span<const uint8_t> data) override {
    return absl::OkStatus();
  }
  absl::StatusOr<PrecopyInfo> GetPrecopyInfo() override {
    return PrecopyInfo{};
  }
};

DeviceInfo MakeInfo(std::string id, uint32_t flags) {
  DeviceInfo info;
  info.id = std::move(id);
  info.backend = "fake";
  info.driver = "fake";
  info.features = MigrationFeatures(flags);
  return info;
}

}  // namespace

void DeviceGroup::Add(const std::string& id, MigrationFeatures features,
                      DeviceState state) {
  absl::MutexLock lock(&mu_);
  members_[id] = Member{features.p2p(), state, std::nullopt};
}

void DeviceGroup::ArcStarted(const std::string& id, DeviceState from,
                             DeviceState to) {
  absl::MutexLock lock(&mu_);
  members_[id].to = to;
  events_.push_back(absl::StrCat(id, " start ", ArcName(from, to)));
  CheckLocked(events_.back());
}

void DeviceGroup::ArcEnded(const std::string& id, DeviceState now) {
  absl::MutexLock lock(&mu_);
  // Judged before the arc ends: the device was entering its state until now.
  CheckLocked(absl::StrCat(id, " ending in ", Name(now)));
  members_[id].to.reset();
  members_[id].state = now;
  events_.push_back(absl::StrCat(id, " end ", Name(now)));
}

void DeviceGroup::WasReset(const std::string& id) {
  absl::MutexLock lock(&mu_);
  members_[id].state = DeviceState::RUNNING;
  events_.push_back(absl::StrCat(id, " reset"));
}

void DeviceGroup::CheckLocked(const std::string& when) {
  for (const auto& [id, m] : members_) {
    if (m.to != DeviceState::RUNNING) continue;
    for (const auto& [peer, p] : members_) {
      if (peer == id || !p.p2p) continue;
      bool accepts = AcceptsDma(p.state) && (!p.to || AcceptsDma(*p.to));
      if (!accepts) {
        violations_.push_back(absl::StrCat(when, ": ", id,
                                           " enters RUNNING while ", peer,
                                           " is in ", Name(p.state)));
      }
    }
  }
}

std::vector<std::string> DeviceGroup::events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

std::vector<std::string> DeviceGroup::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

int DeviceGroup::IndexOf(const std::string& event) const {
  absl::MutexLock lock(&mu_);
  auto it = std::find(events_.begin(), events_.end(), event);
  return it == events_.end() ? -1 : static_cast<int>(it - events_.begin());
}

FakeDevice::FakeDevice(std::string id, uint32_t flags, DeviceState initial,
                       DeviceGroup* group)
    : info_(MakeInfo(std::move(id), flags)), group_(group), state_(initial) {
  if (group_ != nullptr) group_->Add(info_.id, info_.features, initial);
}

void FakeDevice::Script(DeviceState from, DeviceState to, ArcScript script) {
  absl::MutexLock lock(&mu_);
  scripts_[{from, to}] = std::move(script);
}

void FakeDevice::FailReset(absl::Status status) {
  absl::MutexLock lock(&mu_);
  reset_status_ = std::move(status);
}

absl::StatusOr<DeviceState> FakeDevice::GetState() {
  absl::MutexLock lock(&mu_);
  ++gets_;
  return state_;
}

absl::StatusOr<std::unique_ptr<DataSession>> FakeDevice::SetState(
    DeviceState next) {
  DeviceState from;
  ArcScript script;
  {
    absl::MutexLock lock(&mu_);
    ++sets_;
    arcs_.push_back(ArcName(state_, next));
    if (in_arc_) {
      return absl::InternalError("fake: SET while another SET runs");
    }
    if (state_ == DeviceState::ERROR) {
      return absl::FailedPreconditionError("fake: device is in ERROR");
    }
    if (!IsSingleArc(info_.features, state_, next)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fake: ", ArcName(state_, next), " is not one arc"));
    }
    from = state_;
    auto it = scripts_.find({from, next});
    if (it != scripts_.end()) script = it->second;
    in_arc_ = true;
    if (group_ != nullptr) group_->ArcStarted(info_.id, from, next);
  }
  bool barrier_ok = true;
  if (script.barrier)
    barrier_ok = script.barrier->ArriveAndWait(absl::Seconds(20));
  if (script.gate) script.gate->Wait();
  if (script.delay > absl::ZeroDuration()) absl::SleepFor(script.delay);

  absl::MutexLock lock(&mu_);
  in_arc_ = false;
  if (!barrier_ok) {
    if (group_ != nullptr) group_->ArcEnded(info_.id, state_);
    return absl::DeadlineExceededError("fake: the other arcs never arrived");
  }
  if (!script.fail.ok()) {
    state_ = script.to_error ? DeviceState::ERROR : from;
    if (group_ != nullptr) group_->ArcEnded(info_.id, state_);
    return script.fail;
  }
  state_ = next;
  if (group_ != nullptr) group_->ArcEnded(info_.id, state_);
  if (ArcOpensDataSession(from, next) != DataSessionKind::kNone) {
    return std::make_unique<FakeSession>();
  }
  return nullptr;
}

absl::Status FakeDevice::Reset() {
  absl::MutexLock lock(&mu_);
  ++resets_;
  if (!reset_status_.ok()) return reset_status_;
  state_ = DeviceState::RUNNING;
  if (group_ != nullptr) group_->WasReset(info_.id);
  return absl::OkStatus();
}

DeviceState FakeDevice::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool FakeDevice::in_arc() const {
  absl::MutexLock lock(&mu_);
  return in_arc_;
}

int FakeDevice::sets() const {
  absl::MutexLock lock(&mu_);
  return sets_;
}

int FakeDevice::gets() const {
  absl::MutexLock lock(&mu_);
  return gets_;
}

int FakeDevice::resets() const {
  absl::MutexLock lock(&mu_);
  return resets_;
}

std::vector<std::string> FakeDevice::arcs() const {
  absl::MutexLock lock(&mu_);
  return arcs_;
}

}  // namespace vfiomig::enginetest
