#include "plugins/sim/sim_device.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugins/sim/sim_resume.h"
#include "plugins/sim/sim_save_queue.h"
#include "plugins/sim/sim_stream_format.h"
#include "plugins/sim/sim_stream_writer.h"
#include "spdlog/spdlog.h"

namespace vfiomig::sim {
namespace {

using S = DeviceState;
// The kind of session an arc opens (fsm.h); named through the function so
// that this file does not depend on the enum's spelling.
using SessionKind = decltype(ArcOpensDataSession(S::STOP, S::STOP));

// Debian's Abseil keeps absl::string_view distinct from std::string_view.
absl::string_view StateName(S s) {
  std::string_view name = DeviceStateName(s);
  return {name.data(), name.size()};
}

bool IsSaveState(S s) {
  return s == S::PRE_COPY || s == S::PRE_COPY_P2P || s == S::STOP_COPY;
}
bool IsPrecopyState(S s) { return s == S::PRE_COPY || s == S::PRE_COPY_P2P; }
// The device runs, and so writes to its state, only here.
bool Dirties(S s) { return s == S::RUNNING || s == S::PRE_COPY; }

std::string HumanBytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  double v = static_cast<double>(n);
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(n, " B");
  return absl::StrFormat("%.4g %s", v, kUnits[unit]);
}

DeviceInfo MakeInfo(const SimDeviceConfig& c) {
  DeviceInfo info;
  info.id = c.id;
  info.backend = "sim";
  info.driver = "sim";
  info.features = c.features;
  info.description =
      !c.description.empty()
          ? c.description
          : absl::StrCat("simulated device, ", HumanBytes(c.state_bytes),
                         " of state, migration '",
                         c.features.flags() ? c.features.ToString() : "none",
                         "'");
  info.state_capacity_bytes = c.state_bytes;
  if (!c.features.stop_copy()) {
    info.migratable = false;
    info.not_migratable_reason = "no STOP_COPY migration support";
  }
  return info;
}

uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// What a save session's writer is emitting; it decides whether the rest
// of the record counts as initial or dirty pre-copy data.
enum class RecordKind { kNone, kHeader, kInitial, kDirty, kStopCopy, kEnd };

struct SimDevice::SaveSession {
  SaveSession(uint64_t id, uint64_t size, uint64_t initial_blocks)
      : id(id), queue(size, initial_blocks) {}
  uint64_t id;
  SaveQueue queue;
  StreamWriter writer;
  RecordKind current = RecordKind::kNone;
  bool header_started = false;
  bool end_started = false;
  uint64_t block = 0;
  uint64_t version = 0;
  uint64_t block_records = 0;
};

struct SimDevice::ResumeSession {
  ResumeSession(uint64_t id, uint64_t capacity) : id(id), staging(capacity) {}
  uint64_t id;
  ResumeStaging staging;
};

class SimDevice::SaveHandle final : public DataSession {
 public:
  SaveHandle(std::shared_ptr<SimDevice> device, uint64_t id)
      : device_(std::move(device)), id_(id) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) override {
    return device_->SaveRead(id_, buf);
  }
  absl::Status Write(absl::Span<const uint8_t>) override {
    return absl::FailedPreconditionError(
        absl::StrCat(device_->config_.id, ": a save session is read-only"));
  }
  absl::StatusOr<PrecopyInfo> GetPrecopyInfo() override {
    return device_->SavePrecopyInfo(id_);
  }

 private:
  std::shared_ptr<SimDevice> device_;
  uint64_t id_;
};

class SimDevice::ResumeHandle final : public DataSession {
 public:
  ResumeHandle(std::shared_ptr<SimDevice> device, uint64_t id)
      : device_(std::move(device)), id_(id) {}
  absl::StatusOr<size_t> Read(absl::Span<uint8_t>) override {
    return absl::FailedPreconditionError(
        absl::StrCat(device_->config_.id, ": a resume session is write-only"));
  }
  absl::Status Write(absl::Span<const uint8_t> data) override {
    return device_->ResumeWrite(id_, data);
  }
  absl::StatusOr<PrecopyInfo> GetPrecopyInfo() override {
    return absl::FailedPreconditionError(absl::StrCat(
        device_->config_.id, ": no pre-copy info on a resume session"));
  }

 private:
  std::shared_ptr<SimDevice> device_;
  uint64_t id_;
};

SimClock SimClock::Real() {
  return SimClock{.now = [] { return absl::Now(); },
                  .sleep = [](absl::Duration d) { absl::SleepFor(d); }};
}

std::shared_ptr<SimDevice> SimDevice::Create(SimDeviceConfig config,
                                             SimClock clock,
                                             SimPersistence persistence) {
  return std::shared_ptr<SimDevice>(new SimDevice(
      std::move(config), std::move(clock), std::move(persistence)));
}

SimDevice::SimDevice(SimDeviceConfig config, SimClock clock,
                     SimPersistence persistence)
    : config_(std::move(config)),
      clock_(std::move(clock)),
      info_(MakeInfo(config_)),
      state_file_(std::move(persistence.file)),
      content_(config_.seed, config_.state_bytes),
      last_advance_(clock_.now()),
      rng_(config_.seed) {
  if (persistence.restored.has_value()) {
    const SimSavedState& saved = *persistence.restored;
    absl::MutexLock lock(&mu_);
    state_ = saved.state;
    content_ = SimContent(saved.origin_seed, saved.size);
    for (const auto& [index, version] : saved.versions) {
      content_.SetVersion(index, version);
    }
  }
}

void SimDevice::PersistLocked() {
  if (state_file_ == nullptr) return;
  SimSavedState saved;
  saved.state = state_;
  saved.size = content_.size();
  saved.origin_seed = content_.origin_seed();
  for (uint64_t i = 0; i < content_.block_count(); ++i) {
    if (content_.version(i) != 0)
      saved.versions.emplace_back(i, content_.version(i));
  }
  if (absl::Status s = state_file_->Save(saved); !s.ok()) {
    spdlog::error("sim {}: cannot save the device state: {}", config_.id,
                  std::string(s.message()));
  }
}

SimDevice::~SimDevice() = default;

absl::StatusOr<DeviceState> SimDevice::GetState() {
  absl::MutexLock lock(&mu_);
  return state_;
}

uint64_t SimDevice::content_size() {
  absl::MutexLock lock(&mu_);
  return content_.size();
}

void SimDevice::AdvanceLocked() {
  absl::Time now = clock_.now();
  absl::Duration elapsed = now - last_advance_;
  last_advance_ = now;
  if (!Dirties(state_) || config_.dirty_bytes_per_s == 0 ||
      content_.block_count() == 0 || elapsed <= absl::ZeroDuration()) {
    return;
  }
  dirty_credit_ += static_cast<double>(config_.dirty_bytes_per_s) *
                   absl::ToDoubleSeconds(elapsed);
  // One dirtying event writes one block's worth of bytes.
  const double cost =
      static_cast<double>(std::min(kBlockSize, content_.size()));
  // Past a few passes over every block more events change nothing that
  // matters; the cap bounds the work after a long idle spell.
  const uint64_t cap = 4 * content_.block_count();
  uint64_t events = static_cast<uint64_t>(dirty_credit_ / cost);
  if (events >= cap) {
    events = cap;
    dirty_credit_ = 0;
  } else {
    dirty_credit_ -= static_cast<double>(events) * cost;
  }
  for (uint64_t i = 0; i < events; ++i) {
    uint64_t index = NextRandom(rng_) % content_.block_count();
    content_.Bump(index);
    if (save_) save_->queue.Dirtied(index);
  }
}

absl::Status SimDevice::CheckArcLocked(DeviceState next) const {
  if (state_ == S::ERROR) {
    return absl::FailedPreconditionError(absl::StrCat(
        config_.id, ": device is in ERROR; only a reset leaves it"));
  }
  if (next == state_) {
    return absl::InvalidArgumentError(absl::StrCat(config_.id, ": already in ",
                                                   StateName(next),
                                                   "; SetState takes one arc"));
  }
  if (IsSingleArc(config_.features, state_, next)) return absl::OkStatus();
  absl::StatusOr<std::vector<DeviceState>> path =
      StatePath(config_.features, state_, next);
  return absl::InvalidArgumentError(absl::StrCat(
      config_.id, ": ", ArcName(state_, next),
      " is not a single kernel arc for features '", config_.features.ToString(),
      "' (",
      path.ok() ? absl::StrCat("kernel path: ", PathToString(*path))
                : path.status().message(),
      ")"));
}

absl::StatusOr<std::unique_ptr<DataSession>> SimDevice::SetState(
    DeviceState next) {
  absl::MutexLock arc_lock(&arc_mu_);
  DeviceState from;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckArcLocked(next); !s.ok()) return s;
    from = state_;
  }
  // The arc's work. Only arc_mu_ is held, so the device stays observable
  // (and its sessions readable) while a drain hangs.
  absl::Duration wait = config_.arc_latency;
  if (IsDrainArc(from, next)) wait += config_.drain;
  for (const SlowArc& slow : config_.slow_arcs) {
    if (slow.from == from && slow.to == next) wait += slow.extra;
  }
  if (wait > absl::ZeroDuration()) clock_.sleep(wait);

  absl::MutexLock lock(&mu_);
  AdvanceLocked();  // the wait was spent in `from`
  return FinishArcLocked(from, next);
}

absl::StatusOr<std::unique_ptr<DataSession>> SimDevice::FinishArcLocked(
    DeviceState from, DeviceState next) {
  const std::string arc = ArcName(from, next);
  for (const FailArc& f : config_.fail_arcs) {
    if (f.from != from || f.to != next) continue;
    if (f.to_error) {
      state_ = S::ERROR;
      save_.reset();
      resume_.reset();
      PersistLocked();
    }
    spdlog::warn("sim {}: injected failure of {}; device now {}", config_.id,
                 arc, DeviceStateName(state_));
    return absl::InternalError(
        absl::StrCat(config_.id, ": ", arc,
                     " failed (fail_arcs); device is in ", StateName(state_)));
  }
  if (from == S::RESUMING && next == S::STOP) {
    absl::Status s = resume_ ? resume_->staging.Complete()
                             : absl::InternalError("no resume session");
    if (!s.ok()) {
      spdlog::warn("sim {}: {} refused: {}", config_.id, arc,
                   std::string(s.message()));
      return absl::Status(s.code(),
                          absl::StrCat(config_.id, ": ", arc, ": ", s.message(),
                                       "; device stays in RESUMING"));
    }
    content_ = resume_->staging.TakeContent();
    ++content_generation_;
    spdlog::info("sim {}: resumed {} bytes of state", config_.id,
                 content_.size());
  }
  state_ = next;
  if (!IsSaveState(next)) save_.reset();
  if (next != S::RESUMING) resume_.reset();
  PersistLocked();

  switch (ArcOpensDataSession(from, next)) {
    case SessionKind::kSave: {
      uint64_t initial = 0;
      if (next != S::STOP_COPY) {
        initial = (config_.precopy_bytes + kBlockSize - 1) / kBlockSize;
      }
      save_ = std::make_unique<SaveSession>(next_session_id_++, content_.size(),
                                            initial);
      return std::make_unique<SaveHandle>(shared_from_this(), save_->id);
    }
    case SessionKind::kResume:
      resume_ = std::make_unique<ResumeSession>(next_session_id_++,
                                                config_.state_bytes);
      return std::make_unique<ResumeHandle>(shared_from_this(), resume_->id);
    case SessionKind::kNone:
      break;
  }
  return nullptr;
}

absl::Status SimDevice::Reset() {
  absl::MutexLock arc_lock(&arc_mu_);
  absl::MutexLock lock(&mu_);
  AdvanceLocked();
  if (state_ != S::RUNNING) {
    spdlog::info("sim {}: reset from {}", config_.id, DeviceStateName(state_));
  }
  state_ = S::RUNNING;
  save_.reset();
  resume_.reset();
  // Power-on content: a reset loses whatever state the device held.
  content_ = SimContent(config_.seed, config_.state_bytes);
  ++content_generation_;
  PersistLocked();
  return absl::OkStatus();
}

absl::Status SimDevice::ClosedLocked(absl::string_view what) const {
  return absl::FailedPreconditionError(
      absl::StrCat(config_.id, ": the ", what, " session is closed (device is ",
                   StateName(state_), ")"));
}

absl::StatusOr<size_t> SimDevice::SaveRead(uint64_t session,
                                           absl::Span<uint8_t> buf) {
  absl::MutexLock lock(&mu_);
  if (!save_ || save_->id != session) return ClosedLocked("save");
  AdvanceLocked();
  SaveSession& s = *save_;
  size_t total = 0;
  while (total < buf.size()) {
    if (s.current == RecordKind::kNone && !StartRecordLocked(s)) break;
    total += s.writer.Emit(buf.subspan(total));
    if (s.writer.idle()) FinishRecordLocked(s);
  }
  return total;
}

bool SimDevice::StartRecordLocked(SaveSession& s) {
  if (!s.header_started) {
    s.writer.StartHeader(StreamHeader{.total_size = content_.size(),
                                      .origin_seed = content_.origin_seed()});
    s.header_started = true;
    s.current = RecordKind::kHeader;
    return true;
  }
  std::optional<uint64_t> block;
  if (state_ == S::STOP_COPY) {
    block = s.queue.TakeStopCopy();
    s.current = RecordKind::kStopCopy;
  } else {
    s.current =
        s.queue.initial_bytes() > 0 ? RecordKind::kInitial : RecordKind::kDirty;
    block = s.queue.TakePrecopy();
  }
  if (block) {
    s.block = *block;
    s.version = content_.version(*block);
    s.writer.StartBlock(*block, s.version, content_.key(*block),
                        static_cast<uint32_t>(content_.block_length(*block)));
    return true;
  }
  if (state_ == S::STOP_COPY && !s.end_started) {
    // Every block went out at its current version, so every hash is
    // cached and the digest costs no generation.
    s.writer.StartEnd(StreamEnd{.block_records = s.block_records,
                                .content_digest = ComputeDigest64(content_)});
    s.end_started = true;
    s.current = RecordKind::kEnd;
    return true;
  }
  s.current = RecordKind::kNone;
  return false;
}

void SimDevice::FinishRecordLocked(SaveSession& s) {
  if (s.current == RecordKind::kInitial || s.current == RecordKind::kDirty ||
      s.current == RecordKind::kStopCopy) {
    s.queue.Sent(s.block);
    content_.CacheHash(s.block, s.version, s.writer.payload_hash());
    ++s.block_records;
  }
  s.current = RecordKind::kNone;
}

absl::StatusOr<PrecopyInfo> SimDevice::SavePrecopyInfo(uint64_t session) {
  absl::MutexLock lock(&mu_);
  if (!save_ || save_->id != session) return ClosedLocked("save");
  if (!IsPrecopyState(state_)) {
    return absl::FailedPreconditionError(
        absl::StrCat(config_.id, ": no pre-copy info in ", StateName(state_)));
  }
  AdvanceLocked();
  const SaveSession& s = *save_;
  PrecopyInfo info;
  info.initial_bytes = s.queue.initial_bytes();
  info.dirty_bytes = s.queue.dirty_bytes();
  if (!s.header_started) info.initial_bytes += kStreamHeaderSize;
  if (s.current == RecordKind::kHeader || s.current == RecordKind::kInitial) {
    info.initial_bytes += s.writer.remaining();
  } else if (s.current == RecordKind::kDirty) {
    info.dirty_bytes += s.writer.remaining();
  }
  return info;
}

absl::StatusOr<uint64_t> SimDevice::StopCopySize() {
  absl::MutexLock lock(&mu_);
  AdvanceLocked();
  if (!save_) return FullStreamSize(content_.size());
  const SaveSession& s = *save_;
  return (s.header_started ? 0 : kStreamHeaderSize) + s.writer.remaining() +
         s.queue.pending_bytes() + (s.end_started ? 0 : kEndRecordSize);
}

absl::Status SimDevice::ResumeWrite(uint64_t session,
                                    absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  if (!resume_ || resume_->id != session) return ClosedLocked("resume");
  bool was_refused = !resume_->staging.status().ok();
  absl::Status s = resume_->staging.Write(data);
  if (s.ok()) return s;
  if (!was_refused) {
    spdlog::warn("sim {}: resume stream refused: {}", config_.id,
                 std::string(s.message()));
  }
  return absl::Status(s.code(), absl::StrCat(config_.id, ": ", s.message()));
}

absl::StatusOr<std::string> SimDevice::ContentDigest() {
  struct Missing {
    uint64_t index, version, key, length;
  };
  std::vector<uint64_t> hashes;
  std::vector<Missing> missing;
  uint64_t size, generation;
  {
    absl::MutexLock lock(&mu_);
    AdvanceLocked();
    size = content_.size();
    generation = content_generation_;
    hashes.resize(content_.block_count());
    for (uint64_t i = 0; i < content_.block_count(); ++i) {
      if (std::optional<uint64_t> h = content_.cached_hash(i)) {
        hashes[i] = *h;
      } else {
        missing.push_back({i, content_.version(i), content_.key(i),
                           content_.block_length(i)});
      }
    }
  }
  if (missing.empty()) return ContentDigestHex(size, hashes);
  // Hashing generates every missing block: seconds for many GiB, so it
  // runs unlocked on the snapshot taken above.
  std::vector<uint8_t> scratch;
  for (const Missing& m : missing) {
    hashes[m.index] = HashBlock(m.key, m.length, scratch);
  }
  absl::MutexLock lock(&mu_);
  if (content_generation_ == generation) {
    for (const Missing& m : missing) {
      content_.CacheHash(m.index, m.version, hashes[m.index]);
    }
  }
  return ContentDigestHex(size, hashes);
}

}  // namespace vfiomig::sim
