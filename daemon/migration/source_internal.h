// Internals shared by the SourceMigration translation units
// (source_migration.cc, source_streaming.cc, source_outcome.cc). Not for
// other users.
#ifndef VFIOMIG_DAEMON_MIGRATION_SOURCE_INTERNAL_H_
#define VFIOMIG_DAEMON_MIGRATION_SOURCE_INTERNAL_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "daemon/migration/source_migration.h"
#include "daemon/migration/source_stream.h"
#include "daemon/proto_convert.h"
#include "daemon/stream/header.h"
#include "plugins/backend.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

// One device of the group as the migration drives it.
struct SourceMigration::DeviceRun {
  // Position in the group and in Migration.devices.
  int index = 0;
  std::shared_ptr<Device> device;
  std::string id;
  std::string target;
  // Sent in Prepare and as the stream's HEADER frame.
  stream::StreamHeader header;
  // Created and destroyed by the migration thread under mu_ (Cancel reaches
  // it from other threads).
  std::unique_ptr<DeviceStream> stream;
  // The save session: opened by RUNNING -> PRE_COPY and kept through
  // PRE_COPY_P2P -> STOP_COPY, or opened by STOP -> STOP_COPY.
  std::unique_ptr<DataSession> session;
  // Last state an arc reached (the migration thread's view).
  DeviceState state = DeviceState::RUNNING;
  // Written by the device's pumping thread, read by progress updates.
  std::atomic<uint64_t> pre_copy_sent{0};
  std::atomic<uint64_t> stop_copy_sent{0};
  uint32_t rounds = 0;
  // initial_bytes + dirty_bytes after the last pre-copy round.
  uint64_t remaining = 0;
  // Pre-copy may send at most this much (see RunPrecopy).
  uint64_t precopy_cap = 0;
  // This round's budget.
  uint64_t round_budget = 0;
};

// Destination waves run by Prepare and by Commit (their deadlines make up
// the calls' deadlines).
inline constexpr std::initializer_list<WavePhase> kPrepareWaves = {
    WavePhase::kPrepareQuiesce, WavePhase::kPrepareStop, WavePhase::kResuming};
inline constexpr std::initializer_list<WavePhase> kCommitWaves = {
    WavePhase::kResumeStop, WavePhase::kP2pRestore, WavePhase::kRunning};

inline void SetState(v1::MigrationDevice* device, DeviceState state) {
  device->set_state(DeviceStateToProto(state));
  device->set_state_name(std::string(DeviceStateName(state)));
}

// The Migration phase a source wave belongs to.
inline v1::MigrationPhase MigrationPhaseOf(WavePhase phase) {
  switch (phase) {
    case WavePhase::kPreCopy:
      return v1::MIGRATION_PHASE_PRE_COPY;
    case WavePhase::kP2pQuiesce:
    case WavePhase::kStop:
      return v1::MIGRATION_PHASE_QUIESCE;
    case WavePhase::kStopCopy:
    case WavePhase::kStopAfterCopy:
      return v1::MIGRATION_PHASE_STOP_COPY;
    default:
      return v1::MIGRATION_PHASE_ROLLING_BACK;
  }
}

// "12.5 MiB", for messages.
std::string FormatMiB(uint64_t bytes);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SOURCE_INTERNAL_H_
