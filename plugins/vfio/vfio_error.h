// Errors of VFIO system calls, in one shape: what was called, on which
// path (and device), and the errno by name and text:
//   "VFIO_GROUP_GET_DEVICE_FD on /dev/vfio/12 (0000:3b:00.0): EBUSY (Device
//    or resource busy)"
// The status code follows the errno (absl::ErrnoToStatusCode), so EINVAL is
// InvalidArgument, ENOENT NotFound, EBUSY FailedPrecondition.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_ERROR_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vfiomig::vfio {

// "EBUSY (Device or resource busy)".
std::string ErrnoText(int err);

// `call` is the ioctl or system call ("VFIO_DEVICE_RESET", "open"); `what`
// the path, optionally followed by the device in parentheses.
absl::Status SyscallError(absl::string_view call, absl::string_view what,
                          int err);

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_ERROR_H_
