// Daemon logging: spdlog to the systemd journal or to stderr (see
// log_target.h for which), with gRPC's own log routed into it.
//
// One line per event, so that journald and log shippers see whole events.
// gRPC otherwise writes its own differently formatted lines to stderr; those
// often carry the real reason a listen address failed, so they are kept
// and re-emitted through spdlog with a "grpc:" prefix.
#ifndef VFIOMIG_DAEMON_LOGGING_H_
#define VFIOMIG_DAEMON_LOGGING_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "daemon/log_target.h"
#include "spdlog/common.h"

namespace vfiomig {

// "trace", "debug", "info", "warn", "error".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

// Installs the default logger at `level`, writing to `target`, and routes
// gRPC's log into it. In the journal each line is one native entry
// (sd_journal_send) with the priority of its level and SYSLOG_IDENTIFIER
// vfio-migd, without a time stamp of its own (the journal keeps one). Call
// once, before any gRPC object is created.
void SetUpLogging(spdlog::level::level_enum level,
                  LogTarget target = LogTarget::kStderr);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_LOGGING_H_
