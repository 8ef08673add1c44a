#include "daemon/log_target.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace vfiomig {

bool StderrIsJournal() {
  const char* stream = getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  uintmax_t device = 0;
  uintmax_t inode = 0;
  if (sscanf(stream, "%" SCNuMAX ":%" SCNuMAX, &device, &inode) != 2) {
    return false;
  }
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == device &&
         static_cast<uintmax_t>(st.st_ino) == inode;
}

absl::StatusOr<LogTarget> ChooseLogTarget(std::string_view setting) {
  if (setting == "journal") return LogTarget::kJournal;
  if (setting == "stderr") return LogTarget::kStderr;
  if (setting == "auto") {
    return StderrIsJournal() ? LogTarget::kJournal : LogTarget::kStderr;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown log target '",
                                                 std::string(setting),
                                                 "' (auto, journal, stderr)"));
}

}  // namespace vfiomig
