// The device hand-off side channel: how a local process (a VMM, or
// `vfio-migctl open`) gets a file descriptor of a device vfio-migd holds.
//
// The kernel lets one process open a VFIO device, so a VMM cannot open a
// device the daemon manages; the daemon gives it a duplicate of its own fd
// instead and keeps driving migration arcs through its reference.
//
// Transport: a unix stream socket beside the control socket (by default
// the control socket's path with ".sock" replaced by "-handoff.sock"), mode
// 0600. One request per connection, text lines of at most
// kMaxHandoffLine bytes:
//   client: "OPEN <device-id>\n"
//   daemon: "OK <device-id>\n" with the fd attached (SCM_RIGHTS), or
//           "ERR <code> <message>\n" (code: absl::StatusCode) and no fd.
// The daemon checks the caller's credentials (SO_PEERCRED): only root and
// the daemon's own user may take devices.
#ifndef VFIOMIG_DAEMON_HANDOFF_PROTOCOL_H_
#define VFIOMIG_DAEMON_HANDOFF_PROTOCOL_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace vfiomig::handoff {

inline constexpr size_t kMaxHandoffLine = 1024;

// "/run/vfio-migd/vfio-migd.sock" -> "/run/vfio-migd/vfio-migd-handoff.sock";
// a path without ".sock" gets "-handoff" appended.
std::string HandoffPathFor(const std::string& control_socket_path);

// Sends `line` (which must end in '\n'), with `fd` attached when >= 0.
absl::Status SendLine(int socket, const std::string& line, int fd = -1);

// Reads one line (without its '\n') of at most kMaxHandoffLine bytes, and
// the fd attached to it, if any, into *fd (-1 otherwise; the caller owns
// it). The socket should have a receive timeout.
absl::StatusOr<std::string> ReceiveLine(int socket, int* fd = nullptr);

// Client side: connects to `path`, asks for `device_id`, and returns the
// received fd (the caller owns it). NotFound/PermissionDenied/... carry the
// daemon's message; Unavailable when nothing listens at `path`.
absl::StatusOr<int> RequestDeviceFd(const std::string& path,
                                    const std::string& device_id);

}  // namespace vfiomig::handoff

#endif  // VFIOMIG_DAEMON_HANDOFF_PROTOCOL_H_
