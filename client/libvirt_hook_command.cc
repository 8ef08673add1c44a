#include "client/libvirt_hook_command.h"

#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/libvirt/domain_xml.h"
#include "client/rpc.h"

namespace vfiomig::cli {
namespace {

enum class HookAction { kNone, kPrepare, kMigrate, kRelease };

HookAction ActionOf(const LibvirtHookOptions& options) {
  if (options.operation == "prepare" && options.sub_operation == "begin") {
    return HookAction::kPrepare;
  }
  if (options.operation == "migrate" && options.sub_operation == "begin") {
    return HookAction::kMigrate;
  }
  if (options.operation == "release" && options.sub_operation == "end") {
    return HookAction::kRelease;
  }
  return HookAction::kNone;
}

// Reads stdin up to the XML bound (one byte more tells "too large").
std::string ReadAll(std::istream& in) {
  std::string data;
  char buffer[65536];
  while (data.size() <= libvirt::kMaxDomainXmlBytes &&
         in.read(buffer, sizeof(buffer)).gcount() > 0) {
    data.append(buffer, static_cast<size_t>(in.gcount()));
  }
  return data;
}

std::string Quoted(const std::string& domain) {
  return absl::StrCat("domain '", domain, "'");
}

int Admit(const LibvirtHookOptions& options, const GlobalOptions& global,
          bool migrate, const std::string& xml, std::ostream& out) {
  absl::StatusOr<libvirt::DomainXml> domain = libvirt::ParseDomainXml(xml);
  if (!domain.ok()) {
    PrintError(
        absl::StrCat(Quoted(options.object), ": ", domain.status().message()));
    return kExitUsage;
  }
  if (domain->hostdevs.empty()) return kExitOk;
  v1::AdmitDomainRequest request;
  request.set_domain_name(domain->name);
  request.set_domain_uuid(domain->uuid);
  request.set_stage(migrate ? v1::DOMAIN_STAGE_INCOMING_MIGRATION
                            : v1::DOMAIN_STAGE_PREPARE);
  for (const libvirt::Hostdev& hostdev : domain->hostdevs) {
    request.add_device_ids(hostdev.device_id);
  }
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  absl::StatusOr<v1::AdmitDomainResponse> response =
      client->AdmitDomain(request);
  if (!response.ok()) {
    PrintError(absl::StrCat(Quoted(domain->name),
                            " cannot start: its VFIO devices need vfio-migd: ",
                            response.status().message()));
    return kExitDaemon;
  }
  if (!response->admitted()) {
    std::vector<std::string> refusals;
    for (const v1::DeviceAdmission& device : response->devices()) {
      if (device.accepted()) continue;
      refusals.push_back(
          absl::StrCat("hostdev ", device.device_id(), ": ", device.reason()));
    }
    if (refusals.empty()) refusals.push_back("no reason given");
    PrintError(absl::StrCat("vfio-migd refuses ", Quoted(domain->name), ": ",
                            absl::StrJoin(refusals, "; ")));
    return kExitNotMigratable;
  }
  if (!migrate) return kExitOk;
  std::map<std::string, std::string> device_map;
  for (const v1::DeviceAdmission& device : response->devices()) {
    if (!device.local_device_id().empty() &&
        device.local_device_id() != device.device_id()) {
      device_map[device.device_id()] = device.local_device_id();
    }
  }
  if (device_map.empty()) return kExitOk;
  absl::StatusOr<std::string> rewritten =
      libvirt::RewriteHostdevs(xml, device_map);
  if (!rewritten.ok()) {
    PrintError(absl::StrCat(Quoted(domain->name), ": cannot map its hostdevs: ",
                            rewritten.status().message()));
    // The daemon holds the devices for a domain that will not come; give
    // them back (best effort, the domain never started).
    v1::ReleaseDomainRequest release;
    release.set_domain_name(domain->name);
    release.set_domain_uuid(domain->uuid);
    (void)client->ReleaseDomain(release);
    return kExitUsage;
  }
  out << *rewritten;
  out.flush();
  return out ? kExitOk : kExitDaemon;
}

int Release(const LibvirtHookOptions& options, const GlobalOptions& global,
            const std::string& xml) {
  v1::ReleaseDomainRequest request;
  request.set_domain_name(options.object);
  // The UUID makes the release exact; the name alone is enough.
  if (absl::StatusOr<libvirt::DomainXml> domain = libvirt::ParseDomainXml(xml);
      domain.ok()) {
    request.set_domain_name(domain->name);
    request.set_domain_uuid(domain->uuid);
  }
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) return kExitOk;
  // A daemon that is not running holds nothing; libvirt ignores what a
  // release hook says anyway.
  (void)client->ReleaseDomain(request);
  return kExitOk;
}

}  // namespace

CLI::App* AddLibvirtHookCommand(CLI::App& app, LibvirtHookOptions* options) {
  CLI::App* hook = app.add_subcommand(
      "libvirt-hook",
      "libvirt qemu hook (install deploy/libvirt/qemu as "
      "/etc/libvirt/hooks/qemu.d/vfio-migd): admits a domain's VFIO "
      "hostdevs through vfio-migd, maps them on incoming migration, frees "
      "them when the domain stops");
  hook->add_option("domain", options->object, "Domain name (libvirt's)")
      ->required();
  hook->add_option("operation", options->operation,
                   "prepare, migrate, release, ... (libvirt's)")
      ->required();
  hook->add_option("sub-operation", options->sub_operation,
                   "begin, end or - (libvirt's)")
      ->required();
  hook->add_option("extra", options->extra, "libvirt's extra argument");
  hook->footer(
      "Reads the domain XML on stdin for prepare/migrate/release. Exit "
      "status: 0 admitted,\nreleased or not our operation; 1 vfio-migd "
      "unreachable; 2 unusable domain XML;\n3 a device was refused (stderr "
      "names it and why).");
  return hook;
}

int RunLibvirtHook(const LibvirtHookOptions& options,
                   const GlobalOptions& global, std::istream& in,
                   std::ostream& out) {
  const HookAction action = ActionOf(options);
  if (action == HookAction::kNone) return kExitOk;
  const std::string xml = ReadAll(in);
  if (action == HookAction::kRelease) return Release(options, global, xml);
  return Admit(options, global, action == HookAction::kMigrate, xml, out);
}

}  // namespace vfiomig::cli
