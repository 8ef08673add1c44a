#include "plugins/vfio/migration_data_fd.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "plugins/vfio/vfio_error.h"

namespace vfiomig::vfio {

absl::StatusOr<size_t> MigrationDataFd::Read(absl::Span<uint8_t> buf) const {
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == ENOMSG) return 0;
    return SyscallError("read", what_, errno);
  }
}

absl::Status MigrationDataFd::WriteAll(absl::Span<const uint8_t> data) const {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SyscallError("write", what_, errno);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("write on ", what_, ": the device took no bytes"));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<uapi::vfio_precopy_info> MigrationDataFd::GetPrecopyInfo()
    const {
  uapi::vfio_precopy_info info = {};
  info.argsz = sizeof(info);
  if (::ioctl(fd_.get(), uapi::kVfioMigGetPrecopyInfo, &info) < 0) {
    return SyscallError("VFIO_MIG_GET_PRECOPY_INFO", what_, errno);
  }
  return info;
}

}  // namespace vfiomig::vfio
