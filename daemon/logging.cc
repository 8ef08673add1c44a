#include "daemon/logging.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpc/support/log.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/systemd_sink.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

void LogFromGrpc(gpr_log_func_args* args) {
  // One level down: gRPC's info lines are internals, and its "errors" are
  // mostly conditions it recovers from; the daemon logs its own decisions
  // (such as a failed listen address) at error itself.
  spdlog::level::level_enum level = spdlog::level::debug;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      level = spdlog::level::trace;
      break;
    case GPR_LOG_SEVERITY_INFO:
      level = spdlog::level::debug;
      break;
    case GPR_LOG_SEVERITY_ERROR:
      level = spdlog::level::warn;
      break;
  }
  spdlog::log(level, "grpc: {} ({}:{})", args->message, args->file, args->line);
}

}  // namespace

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", std::string(name),
                   "' (trace, debug, info, warn, error)"));
}

void SetUpLogging(spdlog::level::level_enum level, LogTarget target) {
  std::shared_ptr<spdlog::logger> logger;
  if (target == LogTarget::kJournal) {
    // The message alone: the journal has the time, the priority (from the
    // level) and the identifier as fields of its own.
    logger = spdlog::systemd_logger_mt("vfio-migd", "vfio-migd");
  } else {
    logger = spdlog::stderr_color_mt("vfio-migd");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  }
  logger->set_level(level);
  // Warnings and errors reach the journal at once, even if the daemon dies
  // right after.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));

  gpr_set_log_function(LogFromGrpc);
  // gRPC's info lines are noise unless the operator asked for detail, and
  // its debug lines are for debugging gRPC itself.
  gpr_log_severity grpc_level = GPR_LOG_SEVERITY_ERROR;
  if (level <= spdlog::level::trace) {
    grpc_level = GPR_LOG_SEVERITY_DEBUG;
  } else if (level <= spdlog::level::debug) {
    grpc_level = GPR_LOG_SEVERITY_INFO;
  }
  gpr_set_log_verbosity(grpc_level);
}

}  // namespace vfiomig
