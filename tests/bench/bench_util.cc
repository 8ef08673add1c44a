#include "tests/bench/bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "daemon/core/fsm.h"

namespace vfiomig::bench {
namespace {

// Runs the kernel's path from the device's state to `to`, one arc at a
// time; returns the session the last arc that opened one returned.
std::unique_ptr<DataSession> Walk(Device& device, DeviceState to) {
  absl::StatusOr<DeviceState> from = device.GetState();
  if (!from.ok()) Die(device.info().id, from.status());
  absl::StatusOr<std::vector<DeviceState>> path =
      StatePath(device.info().features, *from, to);
  if (!path.ok()) Die(device.info().id, path.status());
  std::unique_ptr<DataSession> session;
  for (size_t i = 1; i < path->size(); ++i) {
    absl::StatusOr<std::unique_ptr<DataSession>> s =
        device.SetState((*path)[i]);
    if (!s.ok()) Die(device.info().id, s.status());
    if (*s != nullptr) session = *std::move(s);
  }
  return session;
}

}  // namespace

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    DieErrno("sched_setaffinity");
  }
}

void Die(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "vfiomig_bench: %s: %s\n", what.c_str(),
               status.ToString().c_str());
  std::exit(1);
}

void DieErrno(const std::string& what) {
  std::fprintf(stderr, "vfiomig_bench: %s: %s\n", what.c_str(),
               std::strerror(errno));
  std::exit(1);
}

std::vector<sim::SimDeviceConfig> LoadDevices(const std::string& path) {
  absl::StatusOr<sim::SimConfig> config = sim::LoadSimConfig(path);
  if (!config.ok()) Die(path, config.status());
  return config->devices;
}

std::unique_ptr<DataSession> OpenSave(Device& device) {
  std::unique_ptr<DataSession> session = Walk(device, DeviceState::STOP_COPY);
  if (session == nullptr) {
    Die(device.info().id, absl::InternalError("no save session"));
  }
  return session;
}

std::unique_ptr<DataSession> OpenResume(Device& device) {
  std::unique_ptr<DataSession> session = Walk(device, DeviceState::RESUMING);
  if (session == nullptr) {
    Die(device.info().id, absl::InternalError("no resume session"));
  }
  return session;
}

void FinishResume(Device& device) { Walk(device, DeviceState::RUNNING); }

int Listen(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) DieErrno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    DieErrno("bind 127.0.0.1:0");
  }
  if (listen(fd, 1) != 0) DieErrno("listen");
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    DieErrno("getsockname");
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

int Accept(int listen_fd) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) DieErrno("accept");
  return fd;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) DieErrno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    DieErrno("connect 127.0.0.1");
  }
  return fd;
}

bool WriteAll(int fd, absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadAll(int fd, absl::Span<uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = read(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace vfiomig::bench
