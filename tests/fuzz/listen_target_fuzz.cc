// libFuzzer target: --listen values and gRPC targets (flags, config files,
// StartMigration's destination) into ParseListenAddress and KindOfTarget.
//
// Traps when the two disagree about what a target is: a parsed file
// socket must be a file socket to the transport policy, a parsed TCP
// target a network one; and when a parse result is inconsistent (a TCP
// target without a host, a unix path that is empty).
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/listen_address.h"
#include "daemon/transport_security.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  const vfiomig::TargetKind kind = vfiomig::KindOfTarget(target);
  absl::StatusOr<vfiomig::ListenAddress> address =
      vfiomig::ParseListenAddress(target);
  if (!address.ok()) {
    Check(address.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Check(address->target == target);
  Check(!(address->unix_path.has_value() && address->tcp_host.has_value()));
  if (address->unix_path.has_value()) {
    Check(!address->unix_path->empty());
    Check(kind == vfiomig::TargetKind::kFileSocket);
  } else if (address->tcp_host.has_value()) {
    Check(!address->tcp_host->empty());
    Check(kind == vfiomig::TargetKind::kNetwork);
  } else {
    Check(kind == vfiomig::TargetKind::kAbstractSocket);
  }
  return 0;
}
