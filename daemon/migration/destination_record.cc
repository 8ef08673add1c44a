// DestinationMigration, continued: what it reports. Executor events become
// log lines, warnings and per-device records; ToProto and StatusesTo render
// the records for the control API and the peer responses.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/migration/destination_migration.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

std::string StateName(DeviceState state) {
  return std::string(DeviceStateName(state));
}

std::string Msg(const absl::Status& status) {
  return std::string(status.message());
}

v1::DeadlinePolicy PolicyToProto(DeadlinePolicy policy) {
  return policy == DeadlinePolicy::kMandatory ? v1::DEADLINE_POLICY_MANDATORY
                                              : v1::DEADLINE_POLICY_SLA;
}

}  // namespace

void DestinationMigration::OnArcFinished(const ArcResult& result) {
  if (!result.status.ok()) {
    spdlog::error("destination {}: device {}: {} failed after {}: {}",
                  settings_.id, result.arc.device,
                  ArcName(result.arc.from, result.arc.to),
                  absl::FormatDuration(result.elapsed), Msg(result.status));
  }
}

void DestinationMigration::OnArcLate(const PlannedArc& arc,
                                     absl::Duration elapsed,
                                     absl::Duration deadline) {
  std::string warning = absl::StrCat(arc.device, " ", ArcName(arc.from, arc.to),
                                     " late: ", absl::FormatDuration(elapsed),
                                     " > ", absl::FormatDuration(deadline));
  spdlog::warn("destination {}: {}", settings_.id, warning);
  absl::MutexLock lock(&mu_);
  warnings_.push_back(std::move(warning));
}

void DestinationMigration::OnDeviceReset(const std::string& device,
                                         const absl::Status& why) {
  spdlog::error("destination {}: device {}: reset: {}", settings_.id, device,
                Msg(why));
  absl::MutexLock lock(&mu_);
  if (DeviceRecord* d = FindDevice(device)) d->was_reset = true;
}

DestinationMigration::DeviceRecord* DestinationMigration::FindDevice(
    const std::string& id) {
  for (DeviceRecord& d : devices_) {
    if (d.target.target_device_id == id) return &d;
  }
  return nullptr;
}

void DestinationMigration::StatusesTo(
    google::protobuf::RepeatedPtrField<v1::DeviceStatus>* out) const {
  for (const DeviceRecord& d : devices_) {
    v1::DeviceStatus& status = *out->Add();
    status.set_device_id(d.target.target_device_id);
    status.set_state(DeviceStateToProto(d.state));
    status.set_state_name(std::string(StateName(d.state)));
    status.set_was_reset(d.was_reset);
    status.set_error(d.error);
  }
}

v1::MigrationPhase DestinationMigration::PhaseLocked() const {
  switch (stage_) {
    case Stage::kRecovering:
      return v1::MIGRATION_PHASE_ROLLING_BACK;
    case Stage::kPreparing:
      return v1::MIGRATION_PHASE_PREPARING;
    case Stage::kLoading:
    case Stage::kLoaded:
      return v1::MIGRATION_PHASE_COMMITTING;
    case Stage::kReceiving:
      for (const DeviceRecord& d : devices_) {
        if (d.received.stop_copy_bytes > 0) {
          return v1::MIGRATION_PHASE_STOP_COPY;
        }
      }
      return v1::MIGRATION_PHASE_PRE_COPY;
    case Stage::kCommitting:
      return v1::MIGRATION_PHASE_COMMITTING;
    case Stage::kRollingBack:
      return v1::MIGRATION_PHASE_ROLLING_BACK;
    case Stage::kDone:
      return v1::MIGRATION_PHASE_DONE;
  }
  return v1::MIGRATION_PHASE_UNSPECIFIED;
}

v1::Migration DestinationMigration::ToProto() const {
  absl::MutexLock lock(&mu_);
  return ToProtoLocked();
}

v1::Migration DestinationMigration::ToProtoLocked() const {
  v1::Migration m;
  m.set_id(settings_.id);
  m.set_role("destination");
  m.set_peer(settings_.source_host);
  m.set_domain(settings_.domain);
  if (settings_.switchover != nullptr) {
    m.set_switchover(std::string(settings_.switchover->name()));
  }
  m.set_policy(PolicyToProto(settings_.policy));
  m.set_drain_timeout_ms(static_cast<uint32_t>(
      absl::ToInt64Milliseconds(settings_.deadlines.drain)));
  m.set_arc_timeout_ms(static_cast<uint32_t>(
      absl::ToInt64Milliseconds(settings_.deadlines.arc)));
  m.set_started_unix_ms(started_unix_ms_);
  // outcome_ is decided when the rollback or the resume begins; a reader
  // that takes any final outcome for "over" (vfio-migctl, the source's
  // Abort retries, a control plane) must not see it while devices are
  // still moving.
  m.set_outcome(stage_ == Stage::kDone ? outcome_
                                       : v1::MIGRATION_OUTCOME_IN_PROGRESS);
  m.set_phase(PhaseLocked());
  m.set_error(error_);
  m.set_failed_device_id(failed_device_);
  m.set_failed_arc(failed_arc_);
  for (const std::string& w : warnings_) m.add_warnings(w);
  m.set_finished_unix_ms(finished_unix_ms_);
  m.set_handed_over(committed_);
  m.set_recovered(recovered_);
  if (stage_ == Stage::kDone) {
    // After the commit the devices are ours whatever happened; before it
    // they were given back (reset or walked back) and the group runs on
    // the source.
    m.set_running_side(committed_ ? "destination" : "source");
  }
  uint64_t received = 0;
  uint64_t total = 0;
  for (const DeviceRecord& d : devices_) {
    v1::MigrationDevice& md = *m.add_devices();
    md.set_source_device_id(d.target.source_device_id);
    md.set_target_device_id(d.target.target_device_id);
    md.set_state(DeviceStateToProto(d.state));
    md.set_state_name(std::string(StateName(d.state)));
    const uint64_t bytes =
        d.received.pre_copy_bytes + d.received.stop_copy_bytes;
    // Until END, the source's stop-copy estimate is the best guess.
    const uint64_t estimate =
        d.stream == StreamState::kEnded
            ? bytes
            : std::max(bytes, d.received.pre_copy_bytes +
                                  d.target.header.stop_copy_bytes);
    md.set_bytes_sent(bytes);
    md.set_bytes_total(estimate);
    md.set_pre_copy_bytes(d.received.pre_copy_bytes);
    md.set_stop_copy_bytes(d.received.stop_copy_bytes);
    md.set_was_reset(d.was_reset);
    md.set_error(d.error);
    received += bytes;
    total += estimate;
  }
  m.set_bytes_sent(received);
  m.set_bytes_total(total);
  return m;
}

}  // namespace vfiomig
