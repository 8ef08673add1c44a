// Daemon logging: spdlog on stderr, with gRPC's own log routed into it.
//
// One line per event, so that journald and log shippers see whole events.
// gRPC otherwise writes its own differently formatted lines to stderr; those
// often carry the real reason a listen address failed, so they are kept
// and re-emitted through spdlog with a "grpc:" prefix.
#ifndef VFIOMIG_DAEMON_LOGGING_H_
#define VFIOMIG_DAEMON_LOGGING_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "spdlog/common.h"

namespace vfiomig {

// "trace", "debug", "info", "warn", "error".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

// Installs the default logger (stderr) at `level` and routes gRPC's log
// into it. Call once, before any gRPC object is created.
void SetUpLogging(spdlog::level::level_enum level);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_LOGGING_H_
