// ScopedFd: owns one file descriptor and closes it once.
#ifndef VFIOMIG_PLUGINS_VFIO_SCOPED_FD_H_
#define VFIOMIG_PLUGINS_VFIO_SCOPED_FD_H_

#include <unistd.h>

#include <utility>

namespace vfiomig::vfio {

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_SCOPED_FD_H_
