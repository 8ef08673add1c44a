// How a SourceMigration ends: committed, or rolled back on both sides.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/engine/thread_name.h"
#include "daemon/migration/source_internal.h"
#include "daemon/migration/source_migration.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

void SourceMigration::Succeed(const v1::CommitResponse& response) {
  // Every call returned (the waves did), so this does not block.
  executor_.reset();
  std::vector<std::string> resets;
  for (const v1::DeviceStatus& device : response.devices()) {
    if (device.was_reset()) {
      resets.push_back(absl::StrCat(
          "destination device ", device.device_id(),
          " needed VFIO_DEVICE_RESET after the commit point: it runs, but "
          "its migrated state is lost"));
    }
  }
  const absl::Duration downtime = downtime_start_ == absl::InfinitePast()
                                      ? absl::ZeroDuration()
                                      : commit_done_ - downtime_start_;
  const uint64_t bytes = bytes_sent_.load();
  const double seconds = absl::ToDoubleSeconds(streaming_time_);
  const double throughput =
      seconds > 0 ? static_cast<double>(bytes) / seconds / (1024.0 * 1024.0)
                  : 0;
  const std::string message = absl::StrFormat(
      "succeeded: %s sent at %.1f MiB/s, downtime %d ms", FormatMiB(bytes),
      throughput, absl::ToInt64Milliseconds(downtime));
  spdlog::info("migration {}: {}", spec_.id, message);
  spec_.lease.Release();
  for (const std::string& reset : resets) {
    spdlog::error("migration {}: {}", spec_.id, reset);
  }
  tracker_->Finish(
      [&](v1::Migration& m) {
        m.set_outcome(v1::MIGRATION_OUTCOME_SUCCEEDED);
        m.set_phase(v1::MIGRATION_PHASE_DONE);
        m.set_running_side("destination");
        for (const std::string& reset : resets) m.add_warnings(reset);
        m.set_downtime_ms(
            static_cast<uint64_t>(absl::ToInt64Milliseconds(downtime)));
        m.set_downtime_us(
            static_cast<uint64_t>(absl::ToInt64Microseconds(downtime)));
        m.set_throughput_mib_s(throughput);
        m.set_bytes_sent(bytes);
        m.set_bytes_total(bytes);
        m.set_finished_unix_ms(UnixMillis(absl::Now()));
        for (const auto& d : devices_) {
          SetState(m.mutable_devices(d->index), d->state);
        }
      },
      EventInfo(message));
}

void SourceMigration::FinishUnresumed(const absl::Status& cause,
                                      const v1::CommitResponse* response) {
  executor_.reset();
  // Lost: the destination answered that it holds nothing to commit. The
  // source devices keep the state (stopped), but after the commit point
  // they never run here again.
  const bool lost = response == nullptr;
  const std::string error = absl::StrCat(
      lost ? "the destination no longer holds the state after the commit "
             "point: "
           : "",
      cause.message(),
      lost ? "; the source devices stay stopped (never resumed after the "
             "hand-over): the group runs nowhere"
           : "");
  spdlog::error("migration {}: {}", spec_.id, error);
  spec_.lease.Release();
  tracker_->Finish(
      [&](v1::Migration& m) {
        m.set_outcome(v1::MIGRATION_OUTCOME_FAILED);
        m.set_phase(v1::MIGRATION_PHASE_DONE);
        m.set_error(error);
        m.set_running_side(lost ? "" : "destination");
        m.set_bytes_sent(bytes_sent_.load());
        m.set_finished_unix_ms(UnixMillis(absl::Now()));
        for (const auto& d : devices_) {
          SetState(m.mutable_devices(d->index), d->state);
        }
      },
      EventInfo(absl::StrCat("failed after the commit point: ", error), true));
}

void SourceMigration::Fail(const absl::Status& cause) {
  if (handed_over_) {
    // Never reached by design; rolling back now would run the group on
    // both sides.
    spdlog::critical(
        "migration {}: failure after the commit point must not roll back: "
        "{}",
        spec_.id, std::string(cause.message()));
    FinishUnresumed(cause, nullptr);
    return;
  }
  const bool cancelled =
      cancelled_.load() && cause.code() == absl::StatusCode::kCancelled;
  const std::string error(cause.message());
  if (cancelled) {
    spdlog::warn("migration {}: {}; rolling back", spec_.id, error);
  } else {
    spdlog::error(
        "migration {}: failed{}{}: {}; rolling back", spec_.id,
        failed_device_.empty() ? "" : " on device ",
        failed_device_.empty()
            ? ""
            : absl::StrCat(failed_device_,
                           failed_arc_.empty() ? "" : " arc " + failed_arc_),
        error);
  }
  EnterRollback();
  tracker_->Publish(
      [&](v1::Migration& m) {
        m.set_phase(v1::MIGRATION_PHASE_ROLLING_BACK);
        m.set_error(error);
        m.set_failed_device_id(failed_device_);
        m.set_failed_arc(failed_arc_);
      },
      EventInfo(
          absl::StrCat(cancelled ? "" : "failed: ", error, "; rolling back"),
          true));

  // Break the streams first: the destination sees them end, and no pump is
  // left reading a session the rollback is about to close.
  DestroyStreams();
  for (const auto& d : devices_) d->session.reset();

  // The destination rolls back its side while we roll back ours: the
  // source devices (and the workload) must not wait for the peer.
  absl::StatusOr<v1::AbortResponse> abort_result =
      absl::UnknownError("not sent");
  std::thread abort_thread;
  PeerClient* peer = nullptr;
  {
    absl::MutexLock lock(&mu_);
    peer = peer_.get();
  }
  if (prepare_sent_ && peer != nullptr) {
    abort_thread = std::thread([&] {
      NameThisThread("migd-abort");
      abort_result = peer->Abort(spec_.id, error, spec_.peer_timeout);
    });
  }

  std::vector<std::string> problems;
  if (executor_ != nullptr) {
    const RollbackReport report = executor_->Rollback();
    executor_.reset();
    for (const DeviceRollback& rolled : report.devices) {
      if (DeviceRun* d = Find(rolled.device)) {
        d->state = rolled.final_state;
        if (!rolled.error.empty()) {
          problems.push_back(absl::StrCat(rolled.device, ": ", rolled.error));
        }
      }
    }
    tracker_->Publish(
        [&](v1::Migration& m) {
          for (const DeviceRollback& rolled : report.devices) {
            DeviceRun* d = Find(rolled.device);
            if (d == nullptr) continue;
            v1::MigrationDevice* md = m.mutable_devices(d->index);
            SetState(md, rolled.final_state);
            if (rolled.was_reset) md->set_was_reset(true);
            if (!rolled.error.empty()) md->set_error(rolled.error);
          }
        },
        EventInfo(report.status.ok() ? "source devices back in RUNNING"
                                     : absl::StrCat("source rollback: ",
                                                    report.status.message()),
                  !report.status.ok()));
    if (!report.status.ok()) {
      spdlog::error("migration {}: source rollback incomplete: {}", spec_.id,
                    std::string(report.status.message()));
    }
  } else {
    // No arc ran: the devices are where they were. Read them anyway, so the
    // resource shows facts.
    tracker_->Publish(
        [&](v1::Migration& m) {
          for (const auto& d : devices_) {
            absl::StatusOr<DeviceState> state = d->device->GetState();
            if (state.ok()) SetState(m.mutable_devices(d->index), *state);
          }
        },
        EventInfo("no source device was touched"));
  }

  if (paused_) {
    const SwitchoverContext context = MakeSwitchoverContext();
    if (absl::Status s = spec_.switchover->Resume(context); !s.ok()) {
      problems.push_back(
          absl::StrCat("switchover '", std::string(spec_.switchover->name()),
                       "' could not resume the workload: ", s.message()));
    }
  }

  if (abort_thread.joinable()) abort_thread.join();
  std::string destination_message;
  // The destination may hold the state and wait for this verdict (after
  // Load it never gives up on its own): if the Abort did not get through,
  // it must be delivered later. Unreachable or timed out only; an answer
  // of any kind is a delivery.
  const bool undelivered =
      load_sent_ && !abort_result.ok() &&
      (abort_result.status().code() == absl::StatusCode::kUnavailable ||
       abort_result.status().code() == absl::StatusCode::kDeadlineExceeded ||
       abort_result.status().code() == absl::StatusCode::kCancelled ||
       abort_result.status().code() == absl::StatusCode::kUnknown ||
       abort_result.status().code() == absl::StatusCode::kInternal);
  if (undelivered && spec_.journal != nullptr) {
    (void)spec_.journal->Update(
        [](JournalEntry& e) { e.pending = PeerVerdict::kAbort; },
        Durability::kDurable);
  }
  if (!abort_result.ok()) {
    destination_message = absl::StrCat(
        "destination abort failed: ", abort_result.status().message(),
        undelivered ? " (retried until the destination answers)" : "");
    // A destination that never accepted the migration has nothing to undo.
    if (prepared_) problems.push_back(destination_message);
    spdlog::log(prepared_ ? spdlog::level::warn : spdlog::level::info,
                "migration {}: {}", spec_.id, destination_message);
  } else if (prepare_sent_) {
    std::vector<std::string> states;
    for (const v1::DeviceStatus& device : abort_result->devices()) {
      // The destination's own log and resource have the details; a reset
      // is normal there (a partial resume cannot leave RESUMING otherwise).
      states.push_back(absl::StrCat(device.device_id(), " ",
                                    device.state_name(),
                                    device.was_reset() ? " (reset)" : ""));
      if (device.state() != v1::DEVICE_STATE_RUNNING) {
        problems.push_back(absl::StrCat("destination device ",
                                        device.device_id(), " is ",
                                        device.state_name()));
      }
    }
    destination_message = absl::StrCat(
        "destination aborted: ",
        states.empty() ? "no devices" : absl::StrJoin(states, ", "));
    spdlog::info("migration {}: {}", spec_.id, destination_message);
  }

  spec_.lease.Release();
  const v1::MigrationOutcome outcome = cancelled
                                           ? v1::MIGRATION_OUTCOME_CANCELLED
                                           : v1::MIGRATION_OUTCOME_FAILED;
  const std::string final_message = absl::StrCat(
      cancelled ? "cancelled" : "failed", " and rolled back",
      destination_message.empty() ? "" : "; ", destination_message);
  tracker_->Finish(
      [&](v1::Migration& m) {
        m.set_outcome(outcome);
        m.set_phase(v1::MIGRATION_PHASE_DONE);
        m.set_running_side("source");
        for (const std::string& problem : problems) m.add_warnings(problem);
        m.set_bytes_sent(bytes_sent_.load());
        m.set_finished_unix_ms(UnixMillis(absl::Now()));
      },
      EventInfo(final_message, !problems.empty()));
  if (undelivered && spec_.abort_sender != nullptr &&
      spec_.journal != nullptr) {
    spec_.abort_sender->Add(spec_.journal, spec_.destination,
                            spec_.peer_credentials, error);
  }
}

}  // namespace vfiomig
