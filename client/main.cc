// vfio-migctl: the operator's command line for vfio-migd.
//
// Wiring only: each command lives in its own file and returns an exit code
// (see common.h); this file parses flags, dispatches, and makes sure no
// exception ever escapes to the shell as an abort.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/common.h"
#include "client/devices_command.h"
#include "client/fsm_command.h"
#include "client/libvirt_hook_command.h"
#include "client/migrate_command.h"
#include "client/migrations_command.h"
#include "client/open_command.h"
#include "client/plan_command.h"

namespace vfiomig::cli {
namespace {

constexpr char kExitCodesHelp[] =
    "Exit status:\n"
    "  0  success (plan: the group is migratable; migrate/watch: the\n"
    "     migration succeeded; cancel: it was cancelled and rolled back)\n"
    "  1  vfio-migd unreachable, too slow (--timeout), failed, or lost\n"
    "  2  invalid request: bad arguments, unknown state, feature, device or\n"
    "     migration id, or a state transition the kernel refuses\n"
    "  3  the group is not migratable (blockers are printed), or a device\n"
    "     is busy\n"
    "  4  the migration failed and was rolled back\n"
    "  5  the migration was cancelled and rolled back\n"
    "  6  the migration ended but some device is not where it should be\n"
    "  7  cancel: the migration had already ended\n"
    "  130  interrupted: stopped waiting (the migration goes on)";

int Main(int argc, char** argv) {
  CLI::App app(
      "Inspect and drive vfio-migd, the VFIO device-group live-migration "
      "daemon.",
      "vfio-migctl");
  // Global flags may follow the subcommand too (`vfio-migctl devices
  // --server ...`), which is how people add them after the fact.
  app.fallthrough();
  app.require_subcommand(1);

  GlobalOptions global;
  app.add_option("--server", global.server,
                 "vfio-migd control endpoint: unix:/path, /path or "
                 "host:port. Overrides $VFIO_MIGCTL_SERVER")
      ->envname(std::string(kServerEnv))
      ->capture_default_str();
  app.add_option("--timeout", global.timeout_seconds,
                 "Seconds to wait for vfio-migd to connect and answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--tls-ca", global.tls_ca,
                 "For a host:port server: PEM CA that signed the daemon's "
                 "certificate (mutual TLS). Overrides $VFIO_MIGCTL_TLS_CA")
      ->envname(std::string(kTlsCaEnv));
  app.add_option("--tls-cert", global.tls_cert,
                 "For a host:port server: this client's PEM certificate, "
                 "signed by the daemon's CA. Overrides $VFIO_MIGCTL_TLS_CERT")
      ->envname(std::string(kTlsCertEnv));
  app.add_option("--tls-key", global.tls_key,
                 "The PEM private key of --tls-cert. Overrides "
                 "$VFIO_MIGCTL_TLS_KEY")
      ->envname(std::string(kTlsKeyEnv));
  app.add_flag("--insecure", global.insecure,
               "Talk plaintext to a host:port server started with "
               "--insecure (no authentication either way)");
  app.footer(kExitCodesHelp);

  FsmPathOptions fsm_options;
  CLI::App* fsm_path = AddFsmCommand(app, &fsm_options);
  DevicesOptions devices_options;
  CLI::App* devices = AddDevicesCommand(app, &devices_options);
  PlanOptions plan_options;
  CLI::App* plan = AddPlanCommand(app, &plan_options);
  MigrateOptions migrate_options;
  CLI::App* migrate = AddMigrateCommand(app, &migrate_options);
  MigrationsOptions migrations_options;
  CLI::App* migrations = AddMigrationsCommand(app, &migrations_options);
  WatchOptions watch_options;
  CLI::App* watch = AddWatchCommand(app, &watch_options);
  CancelOptions cancel_options;
  CLI::App* cancel = AddCancelCommand(app, &cancel_options);
  OpenOptions open_options;
  CLI::App* open = AddOpenCommand(app, &open_options);
  SwitchoverOptions switchover_options;
  CLI::App* switchover = AddSwitchoverCommand(app, &switchover_options);
  LibvirtHookOptions hook_options;
  CLI::App* hook = AddLibvirtHookCommand(app, &hook_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints help (code 0) or the parse error; CLI11's own codes
    // (100+) would collide with nothing useful, so every parse error is a
    // usage error.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  if (fsm_path->parsed()) return RunFsmPath(fsm_options, std::cout);
  if (devices->parsed()) return RunDevices(devices_options, global, std::cout);
  if (plan->parsed()) return RunPlan(plan_options, global, std::cout);
  if (migrate->parsed()) {
    return RunMigrate(migrate_options, global, std::cout);
  }
  if (migrations->parsed()) {
    return RunMigrations(migrations_options, global, std::cout);
  }
  if (watch->parsed()) return RunWatch(watch_options, global, std::cout);
  if (cancel->parsed()) return RunCancel(cancel_options, global, std::cout);
  if (open->parsed()) return RunOpen(open_options, global);
  if (switchover->parsed()) {
    return RunSwitchover(switchover_options, global, std::cout);
  }
  if (hook->parsed()) {
    return RunLibvirtHook(hook_options, global, std::cin, std::cout);
  }
  PrintError("no command given (try --help)");
  return kExitUsage;
}

}  // namespace
}  // namespace vfiomig::cli

int main(int argc, char** argv) {
  try {
    return vfiomig::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    vfiomig::cli::PrintError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    vfiomig::cli::PrintError("internal error: unknown exception");
  }
  return vfiomig::cli::kExitDaemon;
}
