// `vfio-migctl open DEVICE -- CMD ARGS...`: takes a device vfio-migd holds
// through its hand-off side channel (daemon/handoff/protocol.h) and runs
// CMD with the device fd as fd 3 and VFIO_DEVICE_FD=3 in its environment.
// For operators and tests: what a VMM would do with the fd.
#ifndef VFIOMIG_CLIENT_OPEN_COMMAND_H_
#define VFIOMIG_CLIENT_OPEN_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/common.h"

namespace vfiomig::cli {

struct OpenOptions {
  std::string device;
  std::vector<std::string> command;
  // Empty: derived from --server (a unix socket path).
  std::string handoff_socket;
};

CLI::App* AddOpenCommand(CLI::App& app, OpenOptions* options);

// Returns only on failure (otherwise it becomes CMD): the exit code.
int RunOpen(const OpenOptions& options, const GlobalOptions& global);

// The hand-off socket for `options`: --handoff-socket, else the one beside
// the unix control socket in `server` ("unix:/path" or "/path").
// InvalidArgument when the server is not a unix socket.
absl::StatusOr<std::string> HandoffSocketFor(const OpenOptions& options,
                                             const std::string& server);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_OPEN_COMMAND_H_
