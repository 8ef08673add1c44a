#include "daemon/migration/switchover.h"

#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace vfiomig {
namespace {

// The workload is paused by whoever started the migration (or there is
// nothing to pause, as with sim devices).
class NoneSwitchover final : public SwitchoverAction {
 public:
  std::string_view name() const override { return "none"; }
  absl::Status Pause(const SwitchoverContext&) override {
    return absl::OkStatus();
  }
  absl::Status Resume(const SwitchoverContext&) override {
    return absl::OkStatus();
  }
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, SwitchoverFactory, std::less<>> factories
      ABSL_GUARDED_BY(mu);
};

// Built on first use, so registrations from other translation units'
// static initialisers never race its construction; "none" is built in
// because a static registrar in a static library may be dropped by the
// linker.
Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    absl::MutexLock lock(&r->mu);
    r->factories["none"] =
        []() -> absl::StatusOr<std::unique_ptr<SwitchoverAction>> {
      return std::make_unique<NoneSwitchover>();
    };
    return r;
  }();
  return *registry;
}

}  // namespace

void SwitchoverRegistry::Register(std::string name, SwitchoverFactory factory) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  registry.factories[std::move(name)] = std::move(factory);
}

absl::StatusOr<std::unique_ptr<SwitchoverAction>> SwitchoverRegistry::Create(
    std::string_view name) {
  SwitchoverFactory factory;
  {
    Registry& registry = GetRegistry();
    absl::MutexLock lock(&registry.mu);
    auto it = registry.factories.find(name);
    if (it == registry.factories.end()) {
      std::vector<std::string> names;
      for (const auto& [known, unused] : registry.factories) {
        names.push_back(known);
      }
      return absl::NotFoundError(
          absl::StrCat("unknown switchover action '", std::string(name),
                       "' (known: ", absl::StrJoin(names, ", "), ")"));
    }
    factory = it->second;
  }
  // Outside the lock: a factory may take its time (connect to a VMM).
  return factory();
}

std::vector<std::string> SwitchoverRegistry::Names() {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  std::vector<std::string> names;
  for (const auto& [name, unused] : registry.factories) names.push_back(name);
  return names;
}

}  // namespace vfiomig
