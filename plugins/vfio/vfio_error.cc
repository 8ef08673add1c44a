#include "plugins/vfio/vfio_error.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace vfiomig::vfio {

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return absl::StrCat(name != nullptr ? name : absl::StrCat("errno ", err),
                      " (", strerror(err), ")");
}

absl::Status SyscallError(absl::string_view call, absl::string_view what,
                          int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(call, " on ", what, ": ", ErrnoText(err)));
}

}  // namespace vfiomig::vfio
