// `vfio-migctl migrate` (start a migration on the local daemon and follow it
// to its end) and `vfio-migctl watch` (follow one that exists).
#ifndef VFIOMIG_CLIENT_MIGRATE_COMMAND_H_
#define VFIOMIG_CLIENT_MIGRATE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/common.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

struct MigrateOptions {
  std::vector<std::string> devices;
  // The destination daemon, as the source daemon will dial it.
  std::string to;
  std::vector<std::string> map;
  // Empty: the daemon's default (its --policy, sla unless configured).
  std::string policy;
  // 0: the daemon's default.
  uint32_t drain_timeout_ms = 0;
  uint32_t arc_timeout_ms = 0;
  bool allow_no_p2p = false;
  bool json = false;
  // The workload (Workload in control.proto); empty = none / the daemon's.
  std::string domain;
  std::string switchover;
  std::string source_qmp;
  std::string destination_qmp;
  uint32_t switchover_timeout_ms = 0;
};

struct WatchOptions {
  std::string id;
  bool json = false;
};

CLI::App* AddMigrateCommand(CLI::App& app, MigrateOptions* options);
CLI::App* AddWatchCommand(CLI::App& app, WatchOptions* options);

// Exit codes: 0 succeeded; 4 failed and rolled back; 5 cancelled (Ctrl-C)
// and rolled back; 6 ended with some device needing attention; 3 the group
// cannot migrate (blockers printed) or a device is busy; 2 bad request;
// 1 daemon unreachable or lost; 130 stopped waiting (second Ctrl-C).
int RunMigrate(const MigrateOptions& options, const GlobalOptions& global,
               std::ostream& out);
// Same codes for the migration's outcome; Ctrl-C detaches (130).
int RunWatch(const WatchOptions& options, const GlobalOptions& global,
             std::ostream& out);

// "--map a=b,c=d" (repeatable) -> {a: b, c: d}. Every source must be one of
// `devices`, mapped once, and no two devices may end up on the same target
// (unmapped devices keep their id, so they count too).
absl::StatusOr<std::map<std::string, std::string>> ParseDeviceMap(
    const std::vector<std::string>& entries,
    const std::vector<std::string>& devices);

// Validates the flags into the request, without I/O.
absl::StatusOr<v1::StartMigrationRequest> BuildStartRequest(
    const MigrateOptions& options);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_MIGRATE_COMMAND_H_
