// Where the daemon's log goes: the systemd journal or stderr.
//
// Under systemd the journal is better than stderr: each line keeps its
// priority (journalctl -p warning), and the timestamp is the journal's.
// systemd.exec(5) says how a program tells that its stderr is the journal:
// JOURNAL_STREAM holds "DEVICE:INODE" of that stream, and it is the journal
// only when stderr's fstat() gives the same pair (a service whose stderr
// was redirected to a file still inherits the variable). INVOCATION_ID
// alone (set for every unit) is not enough for the same reason.
#ifndef VFIOMIG_DAEMON_LOG_TARGET_H_
#define VFIOMIG_DAEMON_LOG_TARGET_H_

#include <string_view>

#include "absl/status/statusor.h"

namespace vfiomig {

enum class LogTarget { kStderr, kJournal };

// "auto", "journal" or "stderr".
absl::StatusOr<LogTarget> ChooseLogTarget(std::string_view setting);

// Whether stderr is connected to the journal (JOURNAL_STREAM matches it).
bool StderrIsJournal();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_LOG_TARGET_H_
