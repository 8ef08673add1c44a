// SourceMigration's data movement: pre-copy rounds, the switchover, the
// stop-copy stream, and the per-device threads they run on.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/crash_point.h"
#include "daemon/engine/thread_name.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/migration/source_internal.h"
#include "daemon/migration/source_migration.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Pre-copy resends dirtied data; without a bound a device that dirties
// faster than the link drains would stream forever. Twice the stop-copy
// estimate at Prepare keeps the whole stream (pre-copy plus the final
// stop-copy) within what the destination accepts (a small multiple of the
// target's capacity).
constexpr uint64_t kPrecopyCapFactor = 2;

// Devices that stream at the same time. A few concurrent streams keep the
// link and both hosts' cores busy while one device waits on its data_fd or
// on flow control; more only add memory (every active stream holds a frame
// and a flow-control window on each side) and context switches, so memory
// stays flat however many devices a group has.
constexpr size_t kMaxStreamingThreads = 4;

double Rate(uint64_t bytes, absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
}

}  // namespace

std::string FormatMiB(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / kMiB);
}

absl::Status SourceMigration::ForEachDevice(
    const std::vector<DeviceRun*>& devices,
    const std::function<absl::Status(DeviceRun&)>& fn) {
  if (devices.empty()) return absl::OkStatus();
  std::vector<absl::Status> results(devices.size());
  const size_t workers = std::min(devices.size(), kMaxStreamingThreads);
  // The next device a worker takes. Once the streams are stopped the rest
  // do not start; they report Aborted, like a pump that saw the stop.
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < devices.size(); i = next++) {
      if (stop_.load()) {
        results[i] = absl::AbortedError(
            absl::StrCat(devices[i]->id, ": stopped before it started"));
        continue;
      }
      NameThisThread(ThreadName("st:", devices[i]->id));
      results[i] = fn(*devices[i]);
      if (!results[i].ok()) StopStreams();
    }
  };
  // Pool threads (the stop-copy call is inside the downtime window, and a
  // pre-copy phase makes this call once a round). A Mutex, not a
  // BlockingCounter, counts them: ThreadSanitizer sees absl::Mutex's
  // ordering (tests/tsan), not the atomics inside Debian's libabsl.
  absl::Mutex mu;
  size_t running = 0;
  absl::Status spawn_error;
  for (size_t w = 0; w < workers; ++w) {
    {
      absl::MutexLock lock(&mu);
      ++running;
    }
    try {
      WorkerThreads().Run([&] {
        work();
        absl::MutexLock lock(&mu);
        --running;
      });
    } catch (const std::exception& e) {
      spawn_error = absl::ResourceExhaustedError(
          absl::StrCat("cannot start a streaming thread: ", e.what()));
      StopStreams();
      absl::MutexLock lock(&mu);
      --running;
      break;
    }
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](size_t* n) { return *n == 0; }, &running));
  }
  if (!spawn_error.ok()) return spawn_error;
  // The device that failed first reports its own error; the others only
  // saw the stop it caused (Aborted, Cancelled).
  return FirstCause(devices, results);
}

absl::Status SourceMigration::AwaitSummaries(
    const std::vector<DeviceRun*>& devices) {
  return FirstCause(devices, CollectSummaries(devices));
}

std::vector<absl::Status> SourceMigration::CollectSummaries(
    const std::vector<DeviceRun*>& devices) {
  std::vector<absl::Status> results(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    DeviceRun& d = *devices[i];
    absl::StatusOr<v1::StreamSummary> summary = d.stream->AwaitSummary();
    if (!summary.ok()) {
      results[i] = summary.status();
      StopStreams();  // the others then return at once
      continue;
    }
    spdlog::info(
        "migration {} device {}: stream to {} complete: {} frames, "
        "{} pre-copy + {} stop-copy bytes",
        spec_.id, d.id, d.target, summary->frames(), summary->pre_copy_bytes(),
        summary->stop_copy_bytes());
  }
  return results;
}

// The device that failed first reports its own error; the others only saw
// the stop it caused (Aborted, Cancelled).
absl::Status SourceMigration::FirstCause(
    const std::vector<DeviceRun*>& devices,
    const std::vector<absl::Status>& results) {
  const absl::Status* consequence = nullptr;
  for (size_t i = 0; i < results.size(); ++i) {
    const absl::Status& status = results[i];
    if (status.ok()) continue;
    if (status.code() != absl::StatusCode::kAborted &&
        status.code() != absl::StatusCode::kCancelled) {
      if (failed_device_.empty()) failed_device_ = devices[i]->id;
      return status;
    }
    if (consequence == nullptr) consequence = &status;
  }
  if (consequence == nullptr) return absl::OkStatus();
  if (cancelled_.load()) return CheckContinue();
  return *consequence;
}

void SourceMigration::StopStreams() {
  stop_.store(true);
  absl::MutexLock lock(&mu_);
  for (const auto& d : devices_) {
    if (d->stream != nullptr) d->stream->Cancel();
  }
}

void SourceMigration::DestroyStreams() {
  StopStreams();
  absl::MutexLock lock(&mu_);
  // Each destructor cancels its call and collects its status; the
  // destination sees the streams break.
  for (const auto& d : devices_) d->stream.reset();
}

void SourceMigration::OnFrame(DeviceRun& device, stream::Section section,
                              uint64_t bytes) {
  (section == stream::Section::kPreCopy ? device.pre_copy_sent
                                        : device.stop_copy_sent)
      .fetch_add(bytes);
  CrashPoint(section == stream::Section::kPreCopy ? "source:frame:pre-copy"
                                                  : "source:frame:stop-copy");
  bytes_sent_.fetch_add(bytes);
  tracker_->Progress(
      [&](v1::Migration& m) {
        v1::MigrationDevice* d = m.mutable_devices(device.index);
        const uint64_t pre = device.pre_copy_sent.load();
        const uint64_t stop = device.stop_copy_sent.load();
        d->set_pre_copy_bytes(pre);
        d->set_stop_copy_bytes(stop);
        d->set_bytes_sent(pre + stop);
        d->set_bytes_total(std::max(d->bytes_total(), pre + stop));
        uint64_t total = 0;
        for (const v1::MigrationDevice& each : m.devices()) {
          total += each.bytes_total();
        }
        // Loaded under the tracker's lock, so the figure never goes back.
        m.set_bytes_sent(bytes_sent_.load());
        m.set_bytes_total(std::max(total, m.bytes_sent()));
      },
      absl::StrCat(
          device.id, ": ",
          FormatMiB(device.pre_copy_sent.load() + device.stop_copy_sent.load()),
          " sent"));
}

void SourceMigration::PublishTotals() {
  // Device calls outside the tracker's lock.
  std::vector<uint64_t> totals;
  for (const auto& d : devices_) {
    const uint64_t sent = d->pre_copy_sent.load() + d->stop_copy_sent.load();
    absl::StatusOr<uint64_t> estimate = d->device->StopCopySize();
    totals.push_back(sent +
                     std::max(d->remaining, estimate.ok() ? *estimate : 0));
  }
  tracker_->Progress(
      [&](v1::Migration& m) {
        uint64_t total = 0;
        for (const auto& d : devices_) {
          v1::MigrationDevice* md = m.mutable_devices(d->index);
          md->set_bytes_total(totals[d->index]);
          md->set_pre_copy_rounds(d->rounds);
          total += totals[d->index];
        }
        m.set_bytes_total(total);
      },
      "estimates updated");
}

absl::Status SourceMigration::RunPrecopy(int wave) {
  std::vector<DeviceRun*> precopy;
  uint64_t byte_budget = 0;
  for (const auto& d : devices_) {
    if (d->session == nullptr || d->state != DeviceState::PRE_COPY) continue;
    d->precopy_cap =
        kPrecopyCapFactor *
        std::max<uint64_t>(d->header.stop_copy_bytes, kFramePayload);
    byte_budget += d->precopy_cap;
    precopy.push_back(d.get());
  }
  if (precopy.empty()) return absl::OkStatus();
  const std::string phase(WavePhaseName(WavePhase::kPreCopy));
  std::vector<uint64_t> history;
  for (uint32_t round = 1;; ++round) {
    if (absl::Status s = CheckContinue(); !s.ok()) return s;
    // A round sends what each device had pending when it began, so that a
    // device dirtying faster than we send cannot keep a round going.
    for (DeviceRun* d : precopy) {
      absl::StatusOr<PrecopyInfo> info = d->session->GetPrecopyInfo();
      if (!info.ok()) {
        failed_device_ = d->id;
        return absl::Status(
            info.status().code(),
            absl::StrCat(d->id, ": pre-copy info: ", info.status().message()));
      }
      const uint64_t sent = d->pre_copy_sent.load();
      const uint64_t left = d->precopy_cap - std::min(sent, d->precopy_cap);
      d->round_budget = std::min(info->initial_bytes + info->dirty_bytes, left);
    }
    const uint64_t before = bytes_sent_.load();
    const absl::Time start = absl::Now();
    absl::Status status = ForEachDevice(precopy, [&](DeviceRun& d) {
      if (d.round_budget == 0) return absl::OkStatus();
      absl::StatusOr<PumpResult> result = d.stream->Pump(
          *d.session, stream::Section::kPreCopy, d.round_budget, stop_,
          [&](uint64_t n) { OnFrame(d, stream::Section::kPreCopy, n); });
      return result.status();
    });
    const absl::Duration elapsed = absl::Now() - start;
    const uint64_t round_bytes = bytes_sent_.load() - before;
    precopy_time_ += elapsed;
    streaming_time_ += elapsed;
    precopy_bytes_ += round_bytes;
    if (!status.ok()) return status;

    uint64_t remaining = 0;
    for (DeviceRun* d : precopy) {
      absl::StatusOr<PrecopyInfo> info = d->session->GetPrecopyInfo();
      if (!info.ok()) {
        failed_device_ = d->id;
        return absl::Status(
            info.status().code(),
            absl::StrCat(d->id, ": pre-copy info: ", info.status().message()));
      }
      d->remaining = info->initial_bytes + info->dirty_bytes;
      d->rounds = round;
      remaining += d->remaining;
    }
    history.push_back(remaining);
    const PrecopyVerdict verdict =
        DecidePrecopy(spec_.precopy, {.remaining_after_round = history,
                                      .bytes_sent = precopy_bytes_,
                                      .byte_budget = byte_budget});
    const std::string message = absl::StrFormat(
        "pre-copy round %d: %s in %d ms (%.0f MiB/s), %s left: %s", round,
        FormatMiB(round_bytes), absl::ToInt64Milliseconds(elapsed),
        Rate(round_bytes, elapsed) / kMiB, FormatMiB(remaining),
        PrecopyVerdictName(verdict));
    spdlog::info("migration {}: {}", spec_.id, message);
    PublishTotals();
    tracker_->Publish([](v1::Migration&) {}, EventInfo(message, wave, phase));
    if (verdict != PrecopyVerdict::kContinue) return absl::OkStatus();
  }
}

absl::Status SourceMigration::Switchover(int wave) {
  std::vector<DowntimeDevice> devices;
  for (const auto& d : devices_) {
    absl::StatusOr<uint64_t> estimate = d->device->StopCopySize();
    devices.push_back(DowntimeDevice{
        .precopy_remaining_bytes = d->remaining,
        .stop_copy_estimate_bytes = estimate.ok() ? *estimate : 0});
  }
  int downtime_waves = 0;
  for (const Wave& w : spec_.plan.source) {
    if (w.phase != WavePhase::kPreCopy) ++downtime_waves;
  }
  for (const Wave& w : spec_.plan.destination) {
    if (std::find(kCommitWaves.begin(), kCommitWaves.end(), w.phase) !=
        kCommitWaves.end()) {
      ++downtime_waves;
    }
  }
  const double rate = Rate(precopy_bytes_, precopy_time_);
  const std::optional<absl::Duration> predicted = PredictDowntime({
      .devices = devices,
      .bytes_per_second = rate,
      .measured_wave_time = measured_wave_time_,
      .measured_waves = measured_waves_,
      .downtime_waves = downtime_waves,
  });
  const uint64_t to_send = StopPhaseBytes(devices);
  const std::string prediction =
      predicted.has_value()
          ? absl::StrFormat(
                "predicted downtime %d ms (%s to send at %.0f "
                "MiB/s)",
                absl::ToInt64Milliseconds(*predicted), FormatMiB(to_send),
                rate / kMiB)
          : absl::StrCat("no downtime prediction (", FormatMiB(to_send),
                         " to send, no transfer rate measured)");
  const std::string message =
      absl::StrCat("switchover '", std::string(spec_.switchover->name()),
                   "': pausing the workload; ", prediction);
  spdlog::info("migration {}: {}", spec_.id, message);
  tracker_->Publish(
      [&](v1::Migration& m) {
        m.set_phase(v1::MIGRATION_PHASE_SWITCHOVER);
        if (predicted.has_value()) {
          m.set_predicted_downtime_ms(
              static_cast<uint64_t>(absl::ToInt64Milliseconds(*predicted)));
        }
      },
      EventInfo(message, wave, "switchover"));
  const SwitchoverContext context = MakeSwitchoverContext();
  // Recorded first: a daemon that dies from here on resumes the workload
  // when it recovers (resuming one the action did not pause is harmless).
  if (spec_.journal != nullptr) {
    if (absl::Status s = spec_.journal->Update(
            [](JournalEntry& e) { e.workload_paused = true; },
            Durability::kDurable);
        !s.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot record the switchover in the journal: ", s.message()));
    }
  }
  if (absl::Status s = spec_.switchover->Pause(context); !s.ok()) {
    return absl::Status(
        s.code(),
        absl::StrCat("switchover '", std::string(spec_.switchover->name()),
                     "' could not pause: ", s.message()));
  }
  paused_ = true;
  if (spec_.journal != nullptr && !spec_.switchover->PausedWorkload()) {
    // Nothing for a restarted source to resume either.
    (void)spec_.journal->Update(
        [](JournalEntry& e) { e.workload_paused = false; },
        Durability::kRelaxed);
  }
  CrashPoint("source:switchover");
  return absl::OkStatus();
}

absl::Status SourceMigration::StreamStopCopy(int wave) {
  absl::Status status = PumpStopCopy(wave);
  if (status.ok()) status = AwaitSummaries(AllDevices());
  const absl::Time end = absl::Now();
  streaming_time_ += end - stop_copy_start_;
  if (!status.ok()) return status;
  ReportStopCopy(wave, end);
  return absl::OkStatus();
}

std::vector<SourceMigration::DeviceRun*> SourceMigration::AllDevices() const {
  std::vector<DeviceRun*> all;
  all.reserve(devices_.size());
  for (const auto& d : devices_) all.push_back(d.get());
  return all;
}

absl::Status SourceMigration::PumpStopCopy(int wave) {
  const std::vector<DeviceRun*> all = AllDevices();
  for (DeviceRun* d : all) {
    if (d->session == nullptr) {
      failed_device_ = d->id;
      return absl::InternalError(
          absl::StrCat(d->id, ": no save session after the stop-copy wave"));
    }
  }
  PublishTotals();
  const std::string phase(WavePhaseName(WavePhase::kStopCopy));
  tracker_->Publish([](v1::Migration&) {},
                    EventInfo(absl::StrCat("streaming stop-copy data of ",
                                           all.size(), " devices"),
                              wave, phase));
  stop_copy_before_ = bytes_sent_.load();
  stop_copy_start_ = absl::Now();
  return ForEachDevice(all, [&](DeviceRun& d) -> absl::Status {
    absl::StatusOr<PumpResult> result = d.stream->Pump(
        *d.session, stream::Section::kStopCopy,
        std::numeric_limits<uint64_t>::max(), stop_,
        [&](uint64_t n) { OnFrame(d, stream::Section::kStopCopy, n); });
    if (!result.ok()) return result.status();
    return d.stream->SendEnd();
  });
}

void SourceMigration::ReportStopCopy(int wave, absl::Time end) {
  const std::string phase(WavePhaseName(WavePhase::kStopCopy));
  const uint64_t bytes = bytes_sent_.load() - stop_copy_before_;
  const absl::Duration elapsed = end - stop_copy_start_;
  const std::string message = absl::StrFormat(
      "stop-copy streamed: %s in %d ms (%.0f MiB/s)", FormatMiB(bytes),
      absl::ToInt64Milliseconds(elapsed), Rate(bytes, elapsed) / kMiB);
  spdlog::info("migration {}: {}", spec_.id, message);
  tracker_->Publish(
      [&](v1::Migration& m) {
        for (const auto& d : devices_) {
          v1::MigrationDevice* md = m.mutable_devices(d->index);
          const uint64_t sent =
              d->pre_copy_sent.load() + d->stop_copy_sent.load();
          md->set_pre_copy_bytes(d->pre_copy_sent.load());
          md->set_stop_copy_bytes(d->stop_copy_sent.load());
          md->set_bytes_sent(sent);
          md->set_bytes_total(sent);
        }
        m.set_bytes_sent(bytes_sent_.load());
        m.set_bytes_total(bytes_sent_.load());
      },
      EventInfo(message, wave, phase));
}

}  // namespace vfiomig
