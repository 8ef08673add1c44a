// Shared by the source and destination migration tests: an Inventory of
// sim devices built from a JSON config written into a temp dir.
#ifndef VFIOMIG_TESTS_DAEMON_MIGRATION_SIM_INVENTORY_H_
#define VFIOMIG_TESTS_DAEMON_MIGRATION_SIM_INVENTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/inventory.h"
#include "gtest/gtest.h"
#include "plugins/registry.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig::testing {

// Null (with a test failure) when the config or the backend is refused.
inline std::unique_ptr<Inventory> SimInventory(const TempDir& dir,
                                               const std::string& name,
                                               const std::string& json) {
  BackendOptions options;
  options.sim_config_path = dir.WriteFile(name, json);
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim", options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(*std::move(backend), {});
  EXPECT_TRUE(inventory.ok()) << inventory.status();
  return inventory.ok() ? *std::move(inventory) : nullptr;
}

}  // namespace vfiomig::testing

#endif  // VFIOMIG_TESTS_DAEMON_MIGRATION_SIM_INVENTORY_H_
