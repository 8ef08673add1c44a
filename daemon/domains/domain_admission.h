// DomainAdmission: which libvirt domain holds which managed device, for the
// libvirt hook (vfio-migctl libvirt-hook, AdmitDomain/ReleaseDomain).
//
// Admit answers, per hostdev of a domain, whether this daemon manages the
// device and can give it to the domain, and if every device is accepted
// records them as held by the domain until Release. A device is refused
// when it is not managed here, is held by another domain, is in a migration
// that is not this domain's incoming one, or cannot be read or is in ERROR.
//
// Incoming migrations and the device map. A domain that migrates in names
// its source host's devices. The source daemon's StartMigration carries the
// domain (Workload.domain) to this daemon in Prepare, so each incoming
// migration record says which domain it is for and maps every source device
// to a local target. At `migrate begin` (DOMAIN_STAGE_INCOMING_MIGRATION)
// Admit looks for the newest incoming migration for the domain (by name or
// UUID) that is in progress or succeeded, and maps each hostdev through it
// (local_device_id); a hostdev the migration does not carry is refused. A
// target leased by that migration (RESUMING) is accepted. Without such a
// migration the hostdevs are taken as local ids. `prepare begin`
// (DOMAIN_STAGE_PREPARE) then sees the rewritten XML: local ids.
//
// Held devices live in memory: a daemon restart forgets them (the next
// prepare of each domain records them again).
//
// Thread-safe. `inventory` and `leases` must outlive this object.
#ifndef VFIOMIG_DAEMON_DOMAINS_DOMAIN_ADMISSION_H_
#define VFIOMIG_DAEMON_DOMAINS_DOMAIN_ADMISSION_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/inventory.h"
#include "daemon/migration/device_leases.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

// Incoming migrations as the control API shows them (role "destination"),
// in progress first, then finished ones newest first.
using IncomingMigrationList = std::function<std::vector<v1::Migration>()>;

class DomainAdmission {
 public:
  DomainAdmission(const Inventory* inventory, const DeviceLeases* leases,
                  IncomingMigrationList incoming);

  // InvalidArgument for a malformed request (no name, unknown stage, bad or
  // too many ids); otherwise the per-device verdicts.
  absl::StatusOr<v1::AdmitDomainResponse> Admit(
      const v1::AdmitDomainRequest& request);

  // Frees the devices held for the domain (by name; a UUID that names
  // another domain of that name frees nothing). Idempotent.
  v1::ReleaseDomainResponse Release(const v1::ReleaseDomainRequest& request);

  // The domain holding `device`, if any.
  std::optional<std::string> HolderOf(const std::string& device) const;

  // For incoming migrations (DestinationOptions::device_conflict): why
  // `device` must not receive a migration for `domain` (a name or UUID, may
  // be empty): it is held by another domain. nullopt when it may.
  std::optional<std::string> ConflictFor(const std::string& device,
                                         const std::string& domain) const;

 private:
  struct Held {
    std::string uuid;
    std::vector<std::string> devices;
  };

  const Inventory* inventory_;
  const DeviceLeases* leases_;
  IncomingMigrationList incoming_;

  mutable absl::Mutex mu_;
  // Domain name -> what it holds.
  std::map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_DOMAINS_DOMAIN_ADMISSION_H_
