#include "daemon/thread_stacks.h"

#include <pthread.h>

#include <cstdlib>  // defines __GLIBC__ on glibc

#include "spdlog/spdlog.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VFIOMIG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VFIOMIG_SANITIZED 1
#endif
#endif

namespace vfiomig {

void UseSmallThreadStacks() {
#if defined(__GLIBC__) && !defined(VFIOMIG_SANITIZED)
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  // Threads that ask for a size (pthread_attr_setstacksize) keep theirs;
  // this only changes the default.
  if (pthread_attr_setstacksize(&attr, kThreadStackBytes) != 0 ||
      pthread_setattr_default_np(&attr) != 0) {
    spdlog::warn("cannot set the default thread stack size; keeping glibc's");
  }
  pthread_attr_destroy(&attr);
#endif
}

}  // namespace vfiomig
