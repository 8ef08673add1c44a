#include "client/open_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/handoff/protocol.h"

namespace vfiomig::cli {
namespace {

// The fd number a VMM-like child finds the device at.
constexpr int kDeviceFd = 3;

}  // namespace

CLI::App* AddOpenCommand(CLI::App& app, OpenOptions* options) {
  CLI::App* open = app.add_subcommand(
      "open",
      "Take a device from vfio-migd (which keeps driving its migration) and "
      "run a command with its VFIO device fd as fd 3 and VFIO_DEVICE_FD=3");
  open->add_option("device", options->device, "Device id")->required();
  open->add_option("command", options->command,
                   "The command and its arguments, after --")
      ->required();
  open->add_option("--handoff-socket", options->handoff_socket,
                   "vfio-migd's hand-off socket (default: beside the unix "
                   "control socket of --server, '.sock' replaced by "
                   "'-handoff.sock')");
  open->footer(
      "Example: vfio-migctl open 0000:3b:00.1 -- my-vmm --vfio-fd 3\n"
      "Exit status: the command's; 1 when vfio-migd is unreachable or "
      "refuses (not root or its user), 2 for an unknown device.");
  return open;
}

absl::StatusOr<std::string> HandoffSocketFor(const OpenOptions& options,
                                             const std::string& server) {
  if (!options.handoff_socket.empty()) return options.handoff_socket;
  absl::string_view path = server;
  if (!absl::ConsumePrefix(&path, "unix://")) {
    absl::ConsumePrefix(&path, "unix:");
  }
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server ", server,
                     " is not a unix socket: the hand-off is local only; give "
                     "--handoff-socket PATH"));
  }
  return handoff::HandoffPathFor(std::string(path));
}

int RunOpen(const OpenOptions& options, const GlobalOptions& global) {
  absl::StatusOr<std::string> socket = HandoffSocketFor(options, global.server);
  if (!socket.ok()) {
    PrintError(socket.status().message());
    return kExitUsage;
  }
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(*socket, options.device);
  if (!fd.ok()) {
    PrintError(
        absl::StrCat("open ", options.device, ": ", fd.status().message()));
    return absl::IsNotFound(fd.status()) || absl::IsInvalidArgument(fd.status())
               ? kExitUsage
               : kExitDaemon;
  }
  if (*fd != kDeviceFd) {
    if (::dup2(*fd, kDeviceFd) < 0) {
      PrintError(absl::StrCat("dup2: ", std::strerror(errno)));
      return kExitDaemon;
    }
    ::close(*fd);
  }
  // dup2 clears FD_CLOEXEC on the new descriptor, so the command gets it.
  ::setenv("VFIO_DEVICE_FD", "3", 1);
  std::vector<char*> argv;
  for (const std::string& arg : options.command) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int err = errno;
  PrintError(absl::StrCat("cannot run ", options.command[0], ": ",
                          std::strerror(err)));
  return err == ENOENT ? 127 : 126;
}

}  // namespace vfiomig::cli
