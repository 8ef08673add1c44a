#include "client/fsm_command.h"

#include <optional>
#include <ostream>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/common.h"
#include "daemon/core/fsm.h"

namespace vfiomig::cli {
namespace {

constexpr char kStateList[] =
    "STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P, "
    "ERROR";

}  // namespace

CLI::App* AddFsmCommand(CLI::App& app, FsmPathOptions* options) {
  CLI::App* fsm = app.add_subcommand(
      "fsm", "Explore the kernel's VFIO migration state machine (offline)");
  fsm->require_subcommand(1);

  CLI::App* path = fsm->add_subcommand(
      "path",
      "Print the states the kernel walks from FROM to TO, one arc at a time");
  path->add_option("--features", options->features,
                   "Device migration features, comma-separated: stop_copy, "
                   "p2p, pre_copy. stop_copy is mandatory for every "
                   "migratable device and is always implied")
      ->capture_default_str();
  path->add_option("FROM", options->from, "Current state")->required();
  path->add_option("TO", options->to, "Target state")->required();
  path->footer(absl::StrCat(
      "States (any letter case, optional VFIO_DEVICE_STATE_ prefix):\n  ",
      kStateList,
      "\n\nPrints FROM ... TO separated by single spaces (FROM alone when "
      "equal).\nExit 2 with one reason line on stderr when the kernel would "
      "refuse:\na state the features lack, target ERROR, from ERROR, or "
      "STOP_COPY -> PRE_COPY[_P2P]."));
  return path;
}

int RunFsmPath(const FsmPathOptions& options, std::ostream& out) {
  absl::StatusOr<MigrationFeatures> parsed =
      MigrationFeatures::Parse(options.features);
  if (!parsed.ok()) {
    PrintError(parsed.status().message());
    return kExitUsage;
  }
  // The kernel refuses to register a migration driver without STOP_COPY, so
  // a device without it does not exist; implying it keeps `--features p2p`
  // meaningful instead of making every state "unsupported".
  const MigrationFeatures features(parsed->flags() | VFIO_MIGRATION_STOP_COPY);

  std::optional<DeviceState> from = ParseDeviceState(options.from);
  std::optional<DeviceState> to = ParseDeviceState(options.to);
  for (const auto& [name, state] :
       {std::pair{&options.from, from}, std::pair{&options.to, to}}) {
    if (!state.has_value()) {
      PrintError(absl::StrCat("unknown state '", *name, "' (expected one of ",
                              kStateList, ")"));
      return kExitUsage;
    }
  }

  absl::StatusOr<std::vector<DeviceState>> path =
      StatePath(features, *from, *to);
  if (!path.ok()) {
    PrintError(absl::StrCat(
        "no kernel path ", std::string(DeviceStateName(*from)), " -> ",
        std::string(DeviceStateName(*to)), " with features '",
        features.ToString(), "': ", path.status().message()));
    return kExitUsage;
  }
  out << PathToString(*path) << '\n';
  return kExitOk;
}

}  // namespace vfiomig::cli
