#include "client/migrations_command.h"

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/follow.h"
#include "client/migration_format.h"
#include "client/output.h"
#include "client/rpc.h"

namespace vfiomig::cli {
namespace {

void PrintMigration(const v1::Migration& migration, const PeerStates& peer,
                    bool json, std::ostream& out) {
  if (json) {
    PrintJson(out, MigrationToJson(migration, &peer));
  } else {
    RenderMigrationSummary(migration, &peer, out);
  }
  out.flush();
}

}  // namespace

CLI::App* AddMigrationsCommand(CLI::App& app, MigrationsOptions* options) {
  CLI::App* migrations = app.add_subcommand(
      "migrations", "List the migrations vfio-migd knows (running and ended)");
  migrations->add_flag("--json", options->json,
                       "Print a JSON array of migration objects (the shape "
                       "`migrate --json` prints)");
  migrations->footer(
      "The table shows ID, ROLE (source or destination), OUTCOME, PHASE, "
      "DEVICES\n(src>dst where renamed), BYTES sent, DOWNTIME and STARTED "
      "(local time).");
  return migrations;
}

CLI::App* AddCancelCommand(CLI::App& app, CancelOptions* options) {
  CLI::App* cancel = app.add_subcommand(
      "cancel",
      "Cancel a running migration: roll it back on both sides and print its "
      "final state");
  cancel->add_option("id", options->id, "Migration id")->required();
  cancel->add_flag("--json", options->json,
                   "Print the final migration as JSON");
  cancel->footer(
      "Waits for the rollback (connecting is bounded by --timeout).\n\n"
      "Exit status: 0 cancelled and rolled back; 7 it had already ended "
      "(its final\nstate is printed); 6 some device needs attention; 2 "
      "unknown id; 1 vfio-migd\nunreachable.");
  return cancel;
}

CLI::App* AddSwitchoverCommand(CLI::App& app, SwitchoverOptions* options) {
  CLI::App* switchover = app.add_subcommand(
      "switchover",
      "Tell a migration with the external switchover that the VM is "
      "paused: its devices may stop now");
  switchover->add_option("id", options->id, "Migration id")->required();
  switchover->add_flag("--json", options->json, "Print the migration as JSON");
  switchover->footer(
      "Exit status: 0 the migration proceeds; 3 it does not wait for a "
      "switchover\n(another action, already past it, or ended); 2 unknown "
      "id; 1 vfio-migd\nunreachable.");
  return switchover;
}

int RunSwitchover(const SwitchoverOptions& options, const GlobalOptions& global,
                  std::ostream& out) {
  const std::string id(absl::StripAsciiWhitespace(options.id));
  if (id.empty()) {
    PrintError("the migration id is empty");
    return kExitUsage;
  }
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  absl::StatusOr<v1::Migration> migration = client->Switchover(id);
  if (!migration.ok()) {
    if (absl::IsFailedPrecondition(migration.status())) {
      PrintError(migration.status().message());
      return kExitNotMigratable;
    }
    return ReportRpcError(migration.status());
  }
  if (options.json) {
    PrintJson(out, MigrationToJson(*migration));
  } else {
    out << "migration " << id << ": switchover given; phase "
        << PhaseName(migration->phase()) << "\n";
  }
  return kExitOk;
}

int RunMigrations(const MigrationsOptions& options, const GlobalOptions& global,
                  std::ostream& out) {
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  absl::StatusOr<v1::ListMigrationsResponse> response =
      client->ListMigrations();
  if (!response.ok()) return ReportRpcError(response.status());
  if (options.json) {
    Json array = Json::array();
    for (const v1::Migration& migration : response->migrations()) {
      array.push_back(MigrationToJson(migration));
    }
    PrintJson(out, array);
  } else {
    RenderMigrationTable(*response, out);
  }
  return kExitOk;
}

int RunCancel(const CancelOptions& options, const GlobalOptions& global,
              std::ostream& out) {
  const std::string id(absl::StripAsciiWhitespace(options.id));
  if (id.empty()) {
    PrintError("the migration id is empty");
    return kExitUsage;
  }
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  absl::StatusOr<v1::Migration> migration = client->CancelMigration(id);
  bool already_ended = false;
  if (!migration.ok()) {
    // The daemon refuses to cancel what has ended; show what it ended as.
    if (!absl::IsFailedPrecondition(migration.status())) {
      return ReportRpcError(migration.status());
    }
    absl::StatusOr<v1::Migration> current = client->GetMigration(id);
    if (!current.ok() || !IsFinal(*current)) {
      return ReportRpcError(migration.status());
    }
    migration = std::move(current);
    already_ended = true;
  } else if (migration->outcome() != v1::MIGRATION_OUTCOME_CANCELLED) {
    // A daemon may also answer with the unchanged, ended migration.
    already_ended = IsFinal(*migration);
  }
  const PeerStates peer =
      QueryPeerStates(*migration, migration->peer(), global);
  PrintMigration(*migration, peer, options.json, out);
  if (already_ended) {
    PrintError(absl::StrCat("migration ", id, " had already ended (",
                            OutcomeName(migration->outcome()),
                            "); nothing was cancelled"));
    return kExitAlreadyFinished;
  }
  if (DevicesNeedAttention(*migration, &peer)) {
    PrintError(absl::StrCat("migration ", id,
                            " was cancelled, but some device needs "
                            "attention (see above)"));
    return kExitDevicesNeedAttention;
  }
  if (!IsFinal(*migration)) {
    PrintError(absl::StrCat(
        "migration ", id, " is still ", PhaseName(migration->phase()),
        " after the cancel; `vfio-migctl watch ", id, "` follows it"));
    return kExitDaemon;
  }
  return kExitOk;
}

}  // namespace vfiomig::cli
