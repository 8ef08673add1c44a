// The kernel VFIO backend. Discovery, access and migration arcs through the
// real uAPI come with their own issue; until then the daemon refuses
// `--backend vfio` with this message rather than pretending to find devices.
#include "absl/status/status.h"
#include "plugins/registry.h"

namespace vfiomig {
namespace {

const BackendRegistration kRegistration(
    "vfio",
    [](const BackendOptions&)
        -> absl::StatusOr<std::unique_ptr<DeviceBackend>> {
      return absl::UnimplementedError(
          "the vfio backend is not implemented yet; use --backend sim");
    });

}  // namespace
}  // namespace vfiomig
