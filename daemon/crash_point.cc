#include "daemon/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

struct Armed {
  bool armed = false;
  std::string point;
  int64_t nth = 1;
  std::atomic<int64_t> passes{0};
};

Armed& Get() {
  static Armed* armed = [] {
    auto* a = new Armed;
    const char* env = std::getenv(kCrashAtEnv);
    if (env == nullptr || *env == '\0') return a;
    std::string_view spec(env);
    a->armed = true;
    if (size_t hash = spec.rfind('#'); hash != std::string_view::npos) {
      const std::string_view count = spec.substr(hash + 1);
      if (!absl::SimpleAtoi(absl::string_view(count.data(), count.size()),
                            &a->nth) ||
          a->nth < 1) {
        a->nth = 1;
      }
      spec = spec.substr(0, hash);
    }
    a->point = std::string(spec);
    return a;
  }();
  return *armed;
}

}  // namespace

void CrashPoint(std::string_view point) {
  Armed& a = Get();
  if (!a.armed) return;
  spdlog::debug("crash point {}", point);
  if (point != a.point) return;
  if (a.passes.fetch_add(1) + 1 != a.nth) return;
  spdlog::warn("crash point {} reached: SIGKILL", point);
  spdlog::default_logger()->flush();
  kill(getpid(), SIGKILL);
  pause();
}

std::optional<std::string> ArmedCrashPoint() {
  const Armed& a = Get();
  if (!a.armed) return std::nullopt;
  return absl::StrCat(a.point, "#", a.nth);
}

}  // namespace vfiomig
