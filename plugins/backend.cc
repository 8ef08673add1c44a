#include "plugins/backend.h"

#include "absl/strings/str_cat.h"

namespace vfiomig {

absl::StatusOr<std::shared_ptr<Device>> DeviceBackend::Find(
    std::string_view id) {
  for (std::shared_ptr<Device>& device : Devices()) {
    if (device->info().id == id) return device;
  }
  return absl::NotFoundError(absl::StrCat(
      "no device '", std::string(id), "' in backend ", std::string(name())));
}

}  // namespace vfiomig
