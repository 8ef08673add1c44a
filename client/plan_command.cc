#include "client/plan_command.h"

#include <algorithm>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/rpc.h"

namespace vfiomig::cli {
namespace {

using WaveList = google::protobuf::RepeatedPtrField<v1::Wave>;

std::vector<std::string> PathNames(
    const google::protobuf::RepeatedField<int>& path) {
  std::vector<std::string> names;
  names.reserve(path.size());
  for (int state : path) {
    names.push_back(StateName(static_cast<v1::DeviceState>(state)));
  }
  return names;
}

Json WavesToJson(const WaveList& waves) {
  Json out = Json::array();
  for (const v1::Wave& wave : waves) {
    Json arcs = Json::array();
    for (const v1::Arc& arc : wave.arcs()) {
      arcs.push_back({{"device", arc.device_id()},
                      {"from", StateName(arc.from())},
                      {"to", StateName(arc.to())}});
    }
    out.push_back(std::move(arcs));
  }
  return out;
}

Json PhasesToJson(const WaveList& waves) {
  Json out = Json::array();
  for (const v1::Wave& wave : waves) {
    out.push_back(
        {{"phase", wave.phase()}, {"description", wave.description()}});
  }
  return out;
}

void RenderWaves(std::string_view title, const WaveList& waves, bool migratable,
                 std::ostream& out) {
  out << title << ":\n";
  if (waves.empty()) {
    out << (migratable ? "  (none)\n" : "  (none: the group is blocked)\n");
    return;
  }
  // Pad ids to one width per side so the arrows line up across waves.
  size_t id_width = 0;
  for (const v1::Wave& wave : waves) {
    for (const v1::Arc& arc : wave.arcs()) {
      id_width = std::max(id_width, arc.device_id().size());
    }
  }
  for (int i = 0; i < waves.size(); ++i) {
    const v1::Wave& wave = waves[i];
    if (i > 0) out << "  --- barrier ---\n";
    out << "  " << i + 1 << ". " << (wave.phase().empty() ? "-" : wave.phase());
    if (!wave.description().empty()) out << ": " << wave.description();
    out << '\n';
    for (const v1::Arc& arc : wave.arcs()) {
      std::string id = arc.device_id();
      id.resize(id_width, ' ');
      out << "     " << id << "  " << StateName(arc.from()) << " -> "
          << StateName(arc.to());
      // Drains may wait unboundedly on the device; flag where a hang would
      // show up and where the per-arc deadline matters.
      if (arc.drain()) out << "  [drain]";
      out << '\n';
    }
  }
}

}  // namespace

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions* options) {
  CLI::App* plan = app.add_subcommand(
      "plan",
      "Show how a group of devices would migrate, or why it cannot (dry "
      "run; no device is touched)");
  plan->add_option("--devices", options->devices,
                   "Device ids of the group, comma-separated (the order is "
                   "kept in every wave)")
      ->required();
  plan->add_flag("--allow-no-p2p", options->allow_no_p2p,
                 "Accept a multi-device group in which some device lacks "
                 "P2P. Only safe when the devices cannot DMA to each other "
                 "(e.g. the VM has no P2P mappings); the plan carries a "
                 "warning");
  plan->add_flag("--json", options->json,
                 "Print {\"migratable\", \"blockers\": [{\"device\", "
                 "\"reason\"}], \"source\": [[{\"device\", \"from\", "
                 "\"to\"}, ...], ...], \"destination\": [...]} plus "
                 "source_phases, destination_phases, devices, warnings");
  plan->footer(
      "Waves run in order; the arcs of one wave run concurrently, and a "
      "barrier\nseparates consecutive waves. [drain] marks arcs that wait "
      "for the device to\ndrain in-flight DMA and page requests.\n\n"
      "Exit status: 0 migratable, 3 not migratable (blockers printed, in "
      "both\nhuman and --json mode), 2 unknown device or bad arguments, 1 "
      "daemon\nunreachable or failed.");
  return plan;
}

absl::StatusOr<std::vector<std::string>> CleanDeviceIds(
    const std::vector<std::string>& raw) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  // Split here rather than with CLI11's delimiter, which silently drops
  // empty entries: "a,,b" is more likely a typo than a two-device group.
  for (const std::string& arg : raw) {
    for (absl::string_view part : absl::StrSplit(arg, ',')) {
      std::string id(absl::StripAsciiWhitespace(part));
      if (id.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--devices '", arg, "' has an empty entry (expected a,b,c)"));
      }
      // The daemon refuses duplicates too; saying so here needs no daemon.
      if (!seen.insert(id).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("device '", id, "' is listed twice in --devices"));
      }
      ids.push_back(std::move(id));
    }
  }
  if (ids.empty()) return absl::InvalidArgumentError("--devices is empty");
  return ids;
}

Json PlanToJson(const v1::MigrationPlan& plan) {
  Json blockers = Json::array();
  for (const v1::Blocker& blocker : plan.blockers()) {
    // Group-wide blockers keep a string "device" (empty) so consumers need
    // not special-case null.
    blockers.push_back(
        {{"device", blocker.device_id()}, {"reason", blocker.reason()}});
  }
  Json devices = Json::array();
  for (const v1::DevicePath& path : plan.devices()) {
    devices.push_back(
        {{"device", path.device_id()},
         {"source_path", PathNames(path.source_path())},
         {"destination_path", PathNames(path.destination_path())},
         {"reasons", std::vector<std::string>(path.reasons().begin(),
                                              path.reasons().end())}});
  }
  return Json{
      {"migratable", plan.migratable()},
      {"blockers", std::move(blockers)},
      {"source", WavesToJson(plan.source_waves())},
      {"destination", WavesToJson(plan.destination_waves())},
      {"source_phases", PhasesToJson(plan.source_waves())},
      {"destination_phases", PhasesToJson(plan.destination_waves())},
      {"devices", std::move(devices)},
      {"warnings", std::vector<std::string>(plan.warnings().begin(),
                                            plan.warnings().end())},
  };
}

void RenderPlan(const v1::MigrationPlan& plan, std::ostream& out) {
  out << "MIGRATABLE: " << (plan.migratable() ? "yes" : "no") << '\n';

  if (!plan.blockers().empty()) {
    out << "\nBlockers:\n";
    size_t width = 0;
    for (const v1::Blocker& blocker : plan.blockers()) {
      width = std::max(width, std::max<size_t>(blocker.device_id().size(),
                                               sizeof("(group)") - 1));
    }
    for (const v1::Blocker& blocker : plan.blockers()) {
      std::string who =
          blocker.device_id().empty() ? "(group)" : blocker.device_id();
      who.resize(width, ' ');
      out << "  " << who << "  " << blocker.reason() << '\n';
    }
  }

  out << '\n';
  RenderWaves("Source waves", plan.source_waves(), plan.migratable(), out);
  out << '\n';
  RenderWaves("Destination waves", plan.destination_waves(), plan.migratable(),
              out);

  if (!plan.devices().empty()) {
    out << "\nDevice paths:\n";
    for (const v1::DevicePath& path : plan.devices()) {
      out << "  " << path.device_id() << '\n';
      if (!path.source_path().empty()) {
        out << "    source:       "
            << absl::StrJoin(PathNames(path.source_path()), " ") << '\n';
      }
      if (!path.destination_path().empty()) {
        out << "    destination:  "
            << absl::StrJoin(PathNames(path.destination_path()), " ") << '\n';
      }
      for (const std::string& reason : path.reasons()) {
        out << "    - " << reason << '\n';
      }
    }
  }

  if (!plan.warnings().empty()) {
    out << "\nWarnings:\n";
    for (const std::string& warning : plan.warnings()) {
      out << "  ! " << warning << '\n';
    }
  }
}

int RunPlan(const PlanOptions& options, const GlobalOptions& global,
            std::ostream& out) {
  absl::StatusOr<std::vector<std::string>> ids =
      CleanDeviceIds(options.devices);
  if (!ids.ok()) {
    PrintError(ids.status().message());
    return kExitUsage;
  }
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }

  v1::PlanMigrationRequest request;
  for (const std::string& id : *ids) request.add_device_ids(id);
  request.mutable_options()->set_allow_no_p2p(options.allow_no_p2p);

  absl::StatusOr<v1::MigrationPlan> plan = client->PlanMigration(request);
  if (!plan.ok()) return ReportRpcError(plan.status());

  if (options.json) {
    PrintJson(out, PlanToJson(*plan));
  } else {
    RenderPlan(*plan, out);
  }
  return plan->migratable() ? kExitOk : kExitNotMigratable;
}

}  // namespace vfiomig::cli
