#include "client/migration_format.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/common.h"

namespace vfiomig::cli {
namespace {

// "MIGRATION_PHASE_PRE_COPY" -> "PRE_COPY". Values this build does not know
// (a newer daemon) read "UNKNOWN(n)" instead of vanishing.
std::string StripEnumPrefix(const std::string& full, std::string_view prefix,
                            int value) {
  if (full.empty()) return absl::StrCat("UNKNOWN(", value, ")");
  if (full.compare(0, prefix.size(), prefix) == 0) {
    return full.substr(prefix.size());
  }
  return full;
}

std::string OrDash(const std::string& value) {
  return value.empty() ? "-" : value;
}

// The state of a device on each side, or "" when unknown.
struct SideStates {
  std::string source;
  std::string destination;
};

SideStates StatesOf(const v1::Migration& migration,
                    const v1::MigrationDevice& device, const PeerStates* peer) {
  SideStates states;
  const std::string own = MigrationDeviceState(device);
  if (migration.role() == "destination") {
    states.destination = own;
    return states;
  }
  states.source = own;
  if (peer != nullptr && peer->known) {
    auto it = peer->states.find(device.target_device_id());
    if (it != peer->states.end()) states.destination = it->second;
  }
  return states;
}

uint64_t DurationMs(const v1::Migration& migration) {
  if (migration.started_unix_ms() <= 0 ||
      migration.finished_unix_ms() < migration.started_unix_ms()) {
    return 0;
  }
  return static_cast<uint64_t>(migration.finished_unix_ms() -
                               migration.started_unix_ms());
}

std::string LocalTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (localtime_r(&seconds, &tm) == nullptr) return "-";
  char buffer[32];
  if (std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    return "-";
  }
  return buffer;
}

std::string DeviceNote(const v1::Migration& migration,
                       const v1::MigrationDevice& device) {
  std::vector<std::string> notes;
  if (!migration.failed_arc().empty() &&
      migration.failed_device_id() == device.source_device_id()) {
    notes.push_back(absl::StrCat("failed arc ", migration.failed_arc()));
  }
  // A reset discards device state; the operator must hear about it even
  // when the device ended up RUNNING.
  if (device.was_reset()) notes.push_back("was reset");
  if (!device.error().empty()) notes.push_back(device.error());
  return absl::StrJoin(notes, "; ");
}

}  // namespace

std::string PhaseName(v1::MigrationPhase phase) {
  return StripEnumPrefix(v1::MigrationPhase_Name(phase), "MIGRATION_PHASE_",
                         phase);
}

std::string OutcomeName(v1::MigrationOutcome outcome) {
  return StripEnumPrefix(v1::MigrationOutcome_Name(outcome),
                         "MIGRATION_OUTCOME_", outcome);
}

std::string PolicyName(v1::DeadlinePolicy policy) {
  switch (policy) {
    case v1::DEADLINE_POLICY_UNSPECIFIED:
    case v1::DEADLINE_POLICY_SLA:
      return "sla";
    case v1::DEADLINE_POLICY_MANDATORY:
      return "mandatory";
    default:
      return absl::StrCat("UNKNOWN(", static_cast<int>(policy), ")");
  }
}

bool IsFinal(const v1::Migration& migration) {
  return migration.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED ||
         migration.outcome() == v1::MIGRATION_OUTCOME_FAILED ||
         migration.outcome() == v1::MIGRATION_OUTCOME_CANCELLED;
}

bool FailureDecided(const v1::Migration& migration) {
  return !IsFinal(migration) &&
         (migration.phase() == v1::MIGRATION_PHASE_ROLLING_BACK ||
          !migration.error().empty());
}

std::string MigrationDeviceState(const v1::MigrationDevice& device) {
  if (device.state() == v1::DEVICE_STATE_UNSPECIFIED &&
      !device.state_name().empty()) {
    return device.state_name();
  }
  return StateName(device.state());
}

Json MigrationToJson(const v1::Migration& migration, const PeerStates* peer) {
  Json devices = Json::array();
  for (const v1::MigrationDevice& device : migration.devices()) {
    const SideStates states = StatesOf(migration, device, peer);
    Json entry = {{"device", device.source_device_id()},
                  {"target", device.target_device_id()}};
    // Unknown states are omitted, not null or "UNKNOWN": `"x" in d` then
    // means "the CLI knows".
    if (!states.source.empty()) entry["source_state"] = states.source;
    if (!states.destination.empty()) {
      entry["destination_state"] = states.destination;
    }
    entry["bytes_sent"] = device.bytes_sent();
    entry["bytes_total"] = device.bytes_total();
    entry["pre_copy_bytes"] = device.pre_copy_bytes();
    entry["stop_copy_bytes"] = device.stop_copy_bytes();
    entry["pre_copy_rounds"] = device.pre_copy_rounds();
    entry["was_reset"] = device.was_reset();
    entry["error"] = device.error();
    devices.push_back(std::move(entry));
  }
  Json json = {
      {"id", migration.id()},
      {"role", migration.role()},
      {"peer", migration.peer()},
      {"outcome", OutcomeName(migration.outcome())},
      {"phase", PhaseName(migration.phase())},
      {"policy", PolicyName(migration.policy())},
      {"domain", migration.domain()},
      {"switchover", migration.switchover()},
      {"drain_timeout_ms", migration.drain_timeout_ms()},
      {"arc_timeout_ms", migration.arc_timeout_ms()},
      {"devices", std::move(devices)},
      {"bytes_sent", migration.bytes_sent()},
      {"bytes_total", migration.bytes_total()},
      {"downtime_ms", migration.downtime_ms()},
      {"downtime_us", migration.downtime_us()},
      {"predicted_downtime_ms", migration.predicted_downtime_ms()},
      {"throughput_mib_s", migration.throughput_mib_s()},
      {"error", migration.error()},
      {"failed_device", migration.failed_device_id()},
      {"failed_arc", migration.failed_arc()},
      {"warnings", std::vector<std::string>(migration.warnings().begin(),
                                            migration.warnings().end())},
      {"started_unix_ms", migration.started_unix_ms()},
      {"finished_unix_ms", migration.finished_unix_ms()},
      {"handed_over", migration.handed_over()},
      {"running_side", migration.running_side()},
      {"recovered", migration.recovered()},
      {"duration_ms", DurationMs(migration)},
  };
  if (peer != nullptr && !peer->known && !peer->unknown_reason.empty()) {
    json["destination_unknown_reason"] = peer->unknown_reason;
  }
  return json;
}

std::string FailureLine(const v1::Migration& migration) {
  std::string line = absl::StrCat("migration ", migration.id(), " ",
                                  FailureDecided(migration)
                                      ? "FAILED, still rolling back"
                                      : OutcomeName(migration.outcome()));
  if (!migration.error().empty())
    absl::StrAppend(&line, ": ", migration.error());
  std::vector<std::string> where;
  if (!migration.failed_device_id().empty()) {
    where.push_back(absl::StrCat("device ", migration.failed_device_id()));
  }
  if (!migration.failed_arc().empty()) {
    where.push_back(absl::StrCat("arc ", migration.failed_arc()));
  }
  if (!where.empty())
    absl::StrAppend(&line, " (", absl::StrJoin(where, ", "), ")");
  if (migration.outcome() == v1::MIGRATION_OUTCOME_FAILED ||
      migration.outcome() == v1::MIGRATION_OUTCOME_CANCELLED) {
    absl::StrAppend(&line, "; rolled back");
  }
  return line;
}

void RenderMigrationSummary(const v1::Migration& migration,
                            const PeerStates* peer, std::ostream& out) {
  const bool succeeded = migration.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED;
  out << "Migration " << migration.id() << ' ';
  if (FailureDecided(migration)) {
    out << "FAILED, still rolling back";
  } else {
    out << OutcomeName(migration.outcome());
    if (migration.outcome() == v1::MIGRATION_OUTCOME_FAILED ||
        migration.outcome() == v1::MIGRATION_OUTCOME_CANCELLED) {
      out << " and rolled back";
    } else if (migration.outcome() == v1::MIGRATION_OUTCOME_IN_PROGRESS) {
      out << " (phase " << PhaseName(migration.phase()) << ')';
    }
  }
  if (!migration.peer().empty()) {
    out << (migration.role() == "destination" ? " (from " : " (to ")
        << migration.peer() << ')';
  }
  out << '\n';
  if (!migration.error().empty())
    out << "  error:     " << migration.error() << '\n';
  if (!migration.failed_device_id().empty() ||
      !migration.failed_arc().empty()) {
    out << "  failed:    device " << OrDash(migration.failed_device_id())
        << ", arc " << OrDash(migration.failed_arc()) << '\n';
  }
  out << "  moved:     "
      << ByteRatio(migration.bytes_sent(), migration.bytes_total());
  if (const uint64_t ms = DurationMs(migration); ms > 0) {
    out << " in " << HumanMillis(ms);
  }
  if (migration.throughput_mib_s() > 0) {
    out << absl::StrFormat(" at %.1f MiB/s", migration.throughput_mib_s());
  }
  out << '\n';
  if (succeeded || migration.downtime_ms() > 0) {
    out << "  downtime:  " << HumanMillis(migration.downtime_ms());
    if (migration.predicted_downtime_ms() > 0) {
      out << " (predicted " << HumanMillis(migration.predicted_downtime_ms())
          << ')';
    }
    out << '\n';
  }
  out << "  policy:    " << PolicyName(migration.policy()) << '\n';

  out << (succeeded ? "\nDevices:\n" : "\nDevices were left in:\n");
  Table table({"  DEVICE", "TARGET", "SOURCE", "DESTINATION", "SENT",
               "PRE-COPY", "STOP-COPY", "ROUNDS", "NOTE"});
  for (const v1::MigrationDevice& device : migration.devices()) {
    const SideStates states = StatesOf(migration, device, peer);
    table.AddRow({
        absl::StrCat("  ", device.source_device_id()),
        OrDash(device.target_device_id()),
        states.source.empty() ? "?" : states.source,
        states.destination.empty() ? "?" : states.destination,
        HumanBytes(device.bytes_sent()),
        HumanBytes(device.pre_copy_bytes()),
        HumanBytes(device.stop_copy_bytes()),
        absl::StrCat(device.pre_copy_rounds()),
        DeviceNote(migration, device),
    });
  }
  table.Render(out);
  if (peer != nullptr && !peer->known && !peer->unknown_reason.empty()) {
    out << "  (destination states unknown: " << peer->unknown_reason << ")\n";
  }
  if (DevicesNeedAttention(migration, peer)) {
    out << "\nATTENTION: some device is not in the state it should be in; "
           "check it before using it.\n";
  }
  if (!migration.warnings().empty()) {
    out << "\nWarnings:\n";
    for (const std::string& warning : migration.warnings()) {
      out << "  ! " << warning << '\n';
    }
  }
}

std::string RunsOn(const v1::Migration& migration) {
  std::string side = migration.running_side();
  if (side.empty()) {
    // Past the commit point the group belongs to the destination. A
    // finished migration without a side ran nowhere (its error says why)
    // or was recorded by an older daemon: "-" either way.
    side = migration.handed_over() && !IsFinal(migration)
               ? "destination (committing)"
               : "-";
  }
  if (migration.recovered()) absl::StrAppend(&side, ", recovered");
  return side;
}

void RenderMigrationTable(const v1::ListMigrationsResponse& response,
                          std::ostream& out) {
  if (response.migrations().empty()) {
    out << "No migrations.\n";
    return;
  }
  Table table({"ID", "ROLE", "OUTCOME", "PHASE", "DEVICES", "BYTES", "DOWNTIME",
               "STARTED", "RUNS ON"});
  for (const v1::Migration& migration : response.migrations()) {
    std::vector<std::string> devices;
    for (const v1::MigrationDevice& device : migration.devices()) {
      // The mapping is shown only where it renames, to keep the column
      // short: "gpu0,gpu1>gpu3".
      std::string entry = device.source_device_id();
      if (!device.target_device_id().empty() &&
          device.target_device_id() != device.source_device_id()) {
        absl::StrAppend(&entry, ">", device.target_device_id());
      }
      devices.push_back(std::move(entry));
    }
    // Only the source measures downtime; a destination's 0 means "not
    // measured here", not "none".
    const bool measured =
        migration.downtime_ms() > 0 ||
        (migration.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED &&
         migration.role() != "destination");
    table.AddRow({
        migration.id(),
        OrDash(migration.role()),
        OutcomeName(migration.outcome()),
        PhaseName(migration.phase()),
        devices.empty() ? "-" : absl::StrJoin(devices, ","),
        HumanBytes(migration.bytes_sent()),
        measured ? HumanMillis(migration.downtime_ms()) : "-",
        LocalTime(migration.started_unix_ms()),
        RunsOn(migration),
    });
  }
  table.Render(out);
}

std::string ProgressBar(uint64_t done, uint64_t total, int width) {
  width = std::max(width, 1);
  double fraction = 0;
  if (total > 0) {
    fraction = std::clamp(static_cast<double>(done) / total, 0.0, 1.0);
  }
  const int filled = static_cast<int>(std::floor(fraction * width));
  return absl::StrCat("[", std::string(filled, '#'),
                      std::string(width - filled, '.'), "]");
}

std::string ByteRatio(uint64_t done, uint64_t total) {
  if (total == 0) return HumanBytes(done);
  // The unit follows the total so both numbers read on one scale.
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  size_t unit = 0;
  double scale = 1;
  while (static_cast<double>(total) / scale >= 1024 && unit + 1 < 7) {
    scale *= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(done, "/", total, " B");
  return absl::StrFormat("%.1f/%.1f %s", done / scale, total / scale,
                         kUnits[unit]);
}

std::string HumanRate(double bytes_per_second) {
  if (!(bytes_per_second > 0)) return "0 B/s";
  return absl::StrCat(HumanBytes(static_cast<uint64_t>(bytes_per_second)),
                      "/s");
}

std::string HumanMillis(uint64_t ms) {
  if (ms < 10000) return absl::StrCat(ms, " ms");
  return absl::StrFormat("%.1f s", ms / 1000.0);
}

bool DevicesNeedAttention(const v1::Migration& migration,
                          const PeerStates* peer) {
  if (!IsFinal(migration)) return false;
  const bool succeeded = migration.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED;
  for (const v1::MigrationDevice& device : migration.devices()) {
    const SideStates states = StatesOf(migration, device, peer);
    const char* want_source = succeeded ? "STOP" : "RUNNING";
    if (!states.source.empty() && states.source != want_source) return true;
    if (!states.destination.empty() && states.destination != "RUNNING") {
      return true;
    }
  }
  return false;
}

int ExitCodeFor(const v1::Migration& migration, const PeerStates* peer) {
  if (!IsFinal(migration)) return kExitDaemon;
  if (DevicesNeedAttention(migration, peer)) return kExitDevicesNeedAttention;
  switch (migration.outcome()) {
    case v1::MIGRATION_OUTCOME_SUCCEEDED:
      return kExitOk;
    case v1::MIGRATION_OUTCOME_CANCELLED:
      return kExitMigrationCancelled;
    default:
      return kExitMigrationFailed;
  }
}

}  // namespace vfiomig::cli
