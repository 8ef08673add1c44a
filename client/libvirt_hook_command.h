// `vfio-migctl libvirt-hook DOMAIN OPERATION SUB-OPERATION EXTRA`: libvirt's
// qemu hook (deploy/libvirt/README.md), run by libvirtd with the domain XML
// on stdin. It never calls libvirt (libvirtd waits for it) and answers
// within --timeout.
//
//  - prepare begin (a domain is about to start here) and migrate begin (a
//    domain migrates in): every <hostdev> of type pci or mdev must be a
//    device this host's vfio-migd manages and can give to the domain
//    (AdmitDomain); otherwise exit non-zero with one line on stderr naming
//    each refused device and why. migrate begin is libvirt's XML filter:
//    when vfio-migd maps an incoming device to another local device (the
//    incoming migration's device map), the rewritten domain XML goes to
//    stdout; empty stdout keeps the XML unchanged.
//  - release end: the domain stopped; vfio-migd frees its devices
//    (ReleaseDomain). Always exits 0 (libvirt cannot undo a stop).
//  - anything else: exit 0 at once without reading stdin or output.
// A domain without pci/mdev hostdevs is admitted without asking the daemon.
// When vfio-migd is not running, prepare and migrate fail with a message
// saying so; release is a no-op.
#ifndef VFIOMIG_CLIENT_LIBVIRT_HOOK_COMMAND_H_
#define VFIOMIG_CLIENT_LIBVIRT_HOOK_COMMAND_H_

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>

#include "client/common.h"

namespace vfiomig::cli {

struct LibvirtHookOptions {
  std::string object;
  std::string operation;
  std::string sub_operation;
  std::string extra;
};

CLI::App* AddLibvirtHookCommand(CLI::App& app, LibvirtHookOptions* options);

// Exit status: 0 admitted / released / not our operation; 1 vfio-migd
// unreachable or failed; 2 the domain XML is unusable; 3 a device was
// refused.
int RunLibvirtHook(const LibvirtHookOptions& options,
                   const GlobalOptions& global, std::istream& in,
                   std::ostream& out);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_LIBVIRT_HOOK_COMMAND_H_
