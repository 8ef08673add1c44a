// Helpers shared by the sim backend tests: a fake clock, device
// construction, and walking a device along kernel paths.
#ifndef VFIOMIG_TESTS_PLUGINS_SIM_SIM_TEST_UTIL_H_
#define VFIOMIG_TESTS_PLUGINS_SIM_SIM_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"
#include "plugins/backend.h"
#include "plugins/sim/sim_config.h"
#include "plugins/sim/sim_device.h"

namespace vfiomig::sim::testing {

// A clock that moves only when told to; sleeping advances it, so arc
// latencies are observable without waiting. Must outlive the devices.
class FakeClock {
 public:
  SimClock clock() {
    return SimClock{.now = [this] { return Now(); },
                    .sleep = [this](absl::Duration d) { Advance(d); }};
  }
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000'000);
};

inline SimDeviceConfig DeviceConfig(std::string id, uint32_t flags,
                                    uint64_t state_bytes) {
  SimDeviceConfig c;
  c.id = std::move(id);
  c.features = MigrationFeatures(flags);
  c.state_bytes = state_bytes;
  c.precopy_bytes = c.features.pre_copy() ? state_bytes : 0;
  c.seed = DefaultSeed(c.id);
  return c;
}

inline constexpr uint32_t kAllFeatures =
    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;

// Takes the kernel path to `target` one arc at a time. Returns the last
// session an arc opened (nullptr if none did).
inline absl::StatusOr<std::unique_ptr<DataSession>> Walk(Device& device,
                                                         DeviceState target) {
  absl::StatusOr<DeviceState> cur = device.GetState();
  if (!cur.ok()) return cur.status();
  absl::StatusOr<std::vector<DeviceState>> path =
      StatePath(device.info().features, *cur, target);
  if (!path.ok()) return path.status();
  std::unique_ptr<DataSession> session;
  for (size_t i = 1; i < path->size(); ++i) {
    absl::StatusOr<std::unique_ptr<DataSession>> s =
        device.SetState((*path)[i]);
    if (!s.ok()) return s.status();
    if (*s) session = *std::move(s);
  }
  return session;
}

// Reads until Read returns 0, `buf_size` bytes at a time.
inline absl::StatusOr<std::vector<uint8_t>> ReadAvailable(DataSession& session,
                                                          size_t buf_size) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(buf_size);
  for (;;) {
    absl::StatusOr<size_t> n = session.Read(absl::MakeSpan(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.insert(out.end(), buf.begin(), buf.begin() + *n);
  }
}

inline absl::Status WriteChunked(DataSession& session,
                                 absl::Span<const uint8_t> data, size_t chunk) {
  for (size_t pos = 0; pos < data.size(); pos += chunk) {
    absl::Status s =
        session.Write(data.subspan(pos, std::min(chunk, data.size() - pos)));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Saves `source` (RUNNING) completely through STOP_COPY and returns the
// stream; leaves the source in STOP.
inline absl::StatusOr<std::vector<uint8_t>> SaveAll(Device& source,
                                                    size_t buf_size) {
  absl::StatusOr<std::unique_ptr<DataSession>> s =
      Walk(source, DeviceState::STOP);
  if (!s.ok()) return s.status();
  absl::StatusOr<std::unique_ptr<DataSession>> session =
      source.SetState(DeviceState::STOP_COPY);
  if (!session.ok()) return session.status();
  absl::StatusOr<std::vector<uint8_t>> bytes =
      ReadAvailable(**session, buf_size);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<DataSession>> stop =
      source.SetState(DeviceState::STOP);
  if (!stop.ok()) return stop.status();
  return bytes;
}

// Puts `dest` (RUNNING) into RESUMING and returns the resume session.
inline absl::StatusOr<std::unique_ptr<DataSession>> StartResume(Device& dest) {
  absl::StatusOr<std::unique_ptr<DataSession>> s =
      Walk(dest, DeviceState::STOP);
  if (!s.ok()) return s.status();
  return dest.SetState(DeviceState::RESUMING);
}

}  // namespace vfiomig::sim::testing

#endif  // VFIOMIG_TESTS_PLUGINS_SIM_SIM_TEST_UTIL_H_
