#include "plugins/registry.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace vfiomig {
namespace {

struct Registry {
  absl::Mutex mu;
  std::map<std::string, BackendFactory, std::less<>> factories
      ABSL_GUARDED_BY(mu);
};

// Function-local so registration from static initialisers in any order is
// safe.
Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

std::vector<std::string> NamesLocked(const Registry& r)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(r.mu) {
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

}  // namespace

void BackendRegistry::Register(std::string name, BackendFactory factory) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  r.factories[std::move(name)] = std::move(factory);
}

absl::StatusOr<std::unique_ptr<DeviceBackend>> BackendRegistry::Create(
    std::string_view name, const BackendOptions& options) {
  BackendFactory factory;
  Registry& r = GetRegistry();
  {
    absl::MutexLock lock(&r.mu);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      return absl::NotFoundError(absl::StrCat(
          "unknown backend '", std::string(name),
          "' (available: ", absl::StrJoin(NamesLocked(r), ", "), ")"));
    }
    factory = it->second;
  }
  return factory(options);
}

std::vector<std::string> BackendRegistry::Names() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  return NamesLocked(r);
}

}  // namespace vfiomig
