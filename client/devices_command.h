// `vfio-migctl devices`: what the daemon manages, as a table or JSON.
#ifndef VFIOMIG_CLIENT_DEVICES_COMMAND_H_
#define VFIOMIG_CLIENT_DEVICES_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iosfwd>

#include "client/common.h"
#include "client/output.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

struct DevicesOptions {
  bool json = false;
  // Skips the per-device GetDevice calls that fetch content digests.
  bool no_digest = false;
  // Also list host devices the daemon does not manage, with the reason.
  bool all = false;
};

CLI::App* AddDevicesCommand(CLI::App& app, DevicesOptions* options);

int RunDevices(const DevicesOptions& options, const GlobalOptions& global,
               std::ostream& out);

// Exposed for reuse and tests: one device as the documented JSON object.
Json DeviceToJson(const v1::Device& device);
void RenderDeviceTable(const v1::ListDevicesResponse& response,
                       std::ostream& out);
Json HostDeviceToJson(const v1::HostDevice& device);
// The host devices of `response` (devices --all); nothing when none.
void RenderHostDeviceTable(const v1::ListDevicesResponse& response,
                           std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_DEVICES_COMMAND_H_
