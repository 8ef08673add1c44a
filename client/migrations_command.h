// `vfio-migctl migrations` (the daemon's migrations, as a table or JSON)
// and `vfio-migctl cancel ID` (stop one and wait for its rollback).
#ifndef VFIOMIG_CLIENT_MIGRATIONS_COMMAND_H_
#define VFIOMIG_CLIENT_MIGRATIONS_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>

#include "client/common.h"

namespace vfiomig::cli {

struct MigrationsOptions {
  bool json = false;
};

struct CancelOptions {
  std::string id;
  bool json = false;
};

struct SwitchoverOptions {
  std::string id;
  bool json = false;
};

CLI::App* AddMigrationsCommand(CLI::App& app, MigrationsOptions* options);
CLI::App* AddCancelCommand(CLI::App& app, CancelOptions* options);

CLI::App* AddSwitchoverCommand(CLI::App& app, SwitchoverOptions* options);

int RunMigrations(const MigrationsOptions& options, const GlobalOptions& global,
                  std::ostream& out);
// 0 when the migration was cancelled and rolled back; 7 when it had already
// ended (its final state is printed); 6 when a device needs attention
// afterwards; 2 unknown id; 1 daemon unreachable.
int RunCancel(const CancelOptions& options, const GlobalOptions& global,
              std::ostream& out);

// 0 when the migration took the go-ahead (it is printed); 3 when it does
// not wait for one (another switchover action, past its switchover point,
// or finished); 2 unknown id; 1 daemon unreachable.
int RunSwitchover(const SwitchoverOptions& options, const GlobalOptions& global,
                  std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_MIGRATIONS_COMMAND_H_
