#include "client/devices_command.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/rpc.h"

namespace vfiomig::cli {
namespace {

std::string OrDash(const std::string& value) {
  return value.empty() ? "-" : value;
}

// ListDevices leaves digests out on purpose: computing one reads the whole
// device content, which the daemon does only for single-device requests
// (GetDevice). The table promises digests, so ask for each device that did
// not come with one. A digest is an extra: only losing the daemon fails the
// listing; any other per-device failure just leaves that digest out.
absl::Status FetchDigests(const ControlClient& client,
                          v1::ListDevicesResponse* response) {
  for (v1::Device& device : *response->mutable_devices()) {
    if (device.has_digest()) continue;
    absl::StatusOr<v1::Device> detail = client.GetDevice(device.id());
    if (absl::IsUnavailable(detail.status())) return detail.status();
    if (absl::IsUnimplemented(detail.status())) break;  // an older daemon
    if (detail.ok() && detail->has_digest()) {
      device.set_digest(detail->digest());
    }
  }
  return absl::OkStatus();
}

}  // namespace

CLI::App* AddDevicesCommand(CLI::App& app, DevicesOptions* options) {
  CLI::App* devices =
      app.add_subcommand("devices", "List the devices vfio-migd manages");
  devices->add_flag("--json", options->json,
                    "Print a JSON array of objects: id, backend, driver, "
                    "description, features (lower-case names), "
                    "migration_flags, state (kernel name), migratable, and "
                    "when known not_migratable_reason, stop_copy_bytes, "
                    "digest");
  devices->add_flag("--all", options->all,
                    "Also list the host devices vfio-migd found but does "
                    "not manage (not bound to VFIO, IOMMU group not "
                    "viable, not in its --devices), each with the reason; "
                    "with --json the output is then an object "
                    "{\"devices\": [...], \"host_devices\": [...]}");
  devices->add_flag("--no-digest", options->no_digest,
                    "Do not fetch content digests (each one reads the whole "
                    "device state inside vfio-migd)");
  devices->footer(
      "The table shows ID, BACKEND, DRIVER, STATE, FEATURES, STOP-COPY "
      "(estimated\nstop-copy size), DIGEST (sim devices) and MIGRATABLE "
      "(with the reason when not). Kernel devices also show their IOMMU\n"
      "group, access path and capabilities under the table.");
  return devices;
}

Json DeviceToJson(const v1::Device& device) {
  Json json = {
      {"id", device.id()},
      {"backend", device.backend()},
      {"driver", device.driver()},
      {"description", device.description()},
      {"features", FeatureNames(device)},
      {"migration_flags", device.migration_flags()},
      {"state", DeviceStateLabel(device)},
      {"migratable", device.migratable()},
  };
  // Optional keys are omitted, not null, so `"digest" in d` means "this
  // device has a digest".
  if (!device.not_migratable_reason().empty()) {
    json["not_migratable_reason"] = device.not_migratable_reason();
  }
  if (device.has_stop_copy_bytes()) {
    json["stop_copy_bytes"] = device.stop_copy_bytes();
  }
  if (device.has_digest()) json["digest"] = device.digest();
  if (device.backend() == "vfio") {
    json["pci_vendor_id"] = device.pci_vendor_id();
    json["pci_device_id"] = device.pci_device_id();
    json["mdev_type"] = device.mdev_type();
    json["mdev_parent"] = device.mdev_parent();
    json["iommu_group"] = device.iommu_group();
    json["access"] = device.access();
    json["mig_data_size"] = device.mig_data_size();
    json["dma_logging"] = device.dma_logging();
  }
  return json;
}

Json HostDeviceToJson(const v1::HostDevice& device) {
  return Json{
      {"id", device.id()},
      {"driver", device.driver()},
      {"description", device.description()},
      {"reason", device.reason()},
      {"pci_vendor_id", device.pci_vendor_id()},
      {"pci_device_id", device.pci_device_id()},
      {"iommu_group", device.iommu_group()},
  };
}

void RenderHostDeviceTable(const v1::ListDevicesResponse& response,
                           std::ostream& out) {
  if (response.host_devices().empty()) return;
  out << "\nHost devices vfio-migd does not manage:\n";
  Table table({"ID", "DRIVER", "DESCRIPTION", "IOMMU-GROUP", "REASON"});
  for (const v1::HostDevice& device : response.host_devices()) {
    table.AddRow({device.id(), OrDash(device.driver()),
                  OrDash(device.description()), OrDash(device.iommu_group()),
                  device.reason()});
  }
  table.Render(out);
}

// Kernel devices: where each one sits and what it can do, one line each
// under the table (the table itself stays the same for every backend).
void RenderKernelDetails(const v1::ListDevicesResponse& response,
                         std::ostream& out) {
  bool header = false;
  for (const v1::Device& device : response.devices()) {
    if (device.backend() != "vfio") continue;
    if (!header) {
      out << "\n";
      header = true;
    }
    std::vector<std::string> caps;
    caps.push_back(device.mig_data_size() ? "mig_data_size"
                                          : "no mig_data_size");
    caps.push_back(device.dma_logging() ? "dma_logging" : "no dma_logging");
    out << device.id() << ": " << device.description()
        << (device.mdev_type().empty()
                ? ""
                : absl::StrCat(", type ", device.mdev_type()))
        << ", IOMMU group " << OrDash(device.iommu_group()) << ", via "
        << OrDash(device.access()) << ", " << absl::StrJoin(caps, ", ") << "\n";
  }
}

void RenderDeviceTable(const v1::ListDevicesResponse& response,
                       std::ostream& out) {
  if (response.devices().empty()) {
    out << "No devices.";
    if (response.host_devices().empty()) {
      out << " `vfio-migctl devices --all` also lists the host devices "
             "vfio-migd found but cannot use, with the reason.";
    }
    out << "\n";
    return;
  }
  Table table({"ID", "BACKEND", "DRIVER", "STATE", "FEATURES", "STOP-COPY",
               "DIGEST", "MIGRATABLE"});
  for (const v1::Device& device : response.devices()) {
    std::vector<std::string> features = FeatureNames(device);
    // The reason goes last: it is free text of any length and would push
    // every later column out of line.
    std::string migratable = "yes";
    if (!device.migratable()) {
      migratable = device.not_migratable_reason().empty()
                       ? "no"
                       : absl::StrCat("no: ", device.not_migratable_reason());
    }
    table.AddRow({
        device.id(),
        OrDash(device.backend()),
        OrDash(device.driver()),
        DeviceStateLabel(device),
        features.empty() ? "-" : absl::StrJoin(features, ","),
        device.has_stop_copy_bytes() ? HumanBytes(device.stop_copy_bytes())
                                     : "-",
        device.has_digest() ? OrDash(device.digest()) : "-",
        migratable,
    });
  }
  table.Render(out);
  RenderKernelDetails(response, out);
}

int RunDevices(const DevicesOptions& options, const GlobalOptions& global,
               std::ostream& out) {
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  absl::StatusOr<v1::ListDevicesResponse> response =
      client->ListDevices(options.all);
  if (!response.ok()) return ReportRpcError(response.status());
  if (!options.no_digest) {
    if (absl::Status status = FetchDigests(*client, &*response); !status.ok()) {
      return ReportRpcError(status);
    }
  }

  if (options.json) {
    Json array = Json::array();
    for (const v1::Device& device : response->devices()) {
      array.push_back(DeviceToJson(device));
    }
    if (options.all) {
      Json hosts = Json::array();
      for (const v1::HostDevice& device : response->host_devices()) {
        hosts.push_back(HostDeviceToJson(device));
      }
      PrintJson(out, Json{{"devices", array}, {"host_devices", hosts}});
    } else {
      PrintJson(out, array);
    }
  } else {
    RenderDeviceTable(*response, out);
    RenderHostDeviceTable(*response, out);
  }
  return kExitOk;
}

}  // namespace vfiomig::cli
