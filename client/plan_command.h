// `vfio-migctl plan`: ask vfio-migd how a group of devices would migrate,
// or why it cannot, without touching any device.
#ifndef VFIOMIG_CLIENT_PLAN_COMMAND_H_
#define VFIOMIG_CLIENT_PLAN_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/common.h"
#include "client/output.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

struct PlanOptions {
  std::vector<std::string> devices;
  bool allow_no_p2p = false;
  bool json = false;
};

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions* options);

// Returns kExitOk for a migratable group, kExitNotMigratable for a blocked
// one, kExitUsage/kExitDaemon on errors.
int RunPlan(const PlanOptions& options, const GlobalOptions& global,
            std::ostream& out);

// Trims entries and rejects empty or repeated ids.
absl::StatusOr<std::vector<std::string>> CleanDeviceIds(
    const std::vector<std::string>& raw);

// The documented JSON shape: migratable, blockers, source, destination, plus
// source_phases, destination_phases, devices and warnings.
Json PlanToJson(const v1::MigrationPlan& plan);
void RenderPlan(const v1::MigrationPlan& plan, std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_PLAN_COMMAND_H_
