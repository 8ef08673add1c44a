// `vfio-migctl fsm path`: the kernel's path between two migration states,
// computed offline with the same FSM the daemon uses.
#ifndef VFIOMIG_CLIENT_FSM_COMMAND_H_
#define VFIOMIG_CLIENT_FSM_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>

namespace vfiomig::cli {

struct FsmPathOptions {
  std::string features = "stop_copy";
  std::string from;
  std::string to;
};

// Adds `fsm` and its `path` subcommand to `app`; returns `path`.
CLI::App* AddFsmCommand(CLI::App& app, FsmPathOptions* options);

// Prints the path on `out` and returns kExitOk, or prints one reason line
// on stderr and returns kExitUsage.
int RunFsmPath(const FsmPathOptions& options, std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_FSM_COMMAND_H_
