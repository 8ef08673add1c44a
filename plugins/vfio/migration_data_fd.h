// MigrationDataFd: the data_fd of a migration data session, as a thin
// wrapper over read(2), write(2) and VFIO_MIG_GET_PRECOPY_INFO. Errors name
// the call, the session and errno.
//
// The uAPI's end-of-data signals are passed through as they are: Read
// returns 0 at end of stream (STOP_COPY) and at the temporary end of
// pre-copy data, for which it also maps ENOMSG to 0 (the uAPI recommends
// ENOMSG; mtty returns 0). Which one 0 means is the caller's to know from
// the device state.
#ifndef VFIOMIG_PLUGINS_VFIO_MIGRATION_DATA_FD_H_
#define VFIOMIG_PLUGINS_VFIO_MIGRATION_DATA_FD_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "plugins/vfio/scoped_fd.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {

class MigrationDataFd {
 public:
  // `what` names the session in errors ("data_fd of 0000:3b:00.1").
  MigrationDataFd(ScopedFd fd, std::string what)
      : fd_(std::move(fd)), what_(std::move(what)) {}

  // One read(2), retried on EINTR; ENOMSG -> 0.
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) const;
  // write(2) until all of `data` is written, retried on EINTR.
  absl::Status WriteAll(absl::Span<const uint8_t> data) const;
  // VFIO_MIG_GET_PRECOPY_INFO.
  absl::StatusOr<uapi::vfio_precopy_info> GetPrecopyInfo() const;

  int fd() const { return fd_.get(); }

 private:
  ScopedFd fd_;
  std::string what_;
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_MIGRATION_DATA_FD_H_
