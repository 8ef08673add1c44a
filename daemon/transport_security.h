// TransportSecurity: how gRPC traffic is protected, per target kind.
//
// The daemon's control API moves devices between hosts and its peer API
// writes device state, so neither may be reachable by strangers:
//  - unix sockets on the file system: plaintext; file permissions decide
//    who connects (daemon/socket_permissions.h).
//  - TCP (and every other network target: dns:, ipv4:, ipv6:): mutual TLS
//    with the --tls-ca / --tls-cert / --tls-key files. Both ends present a
//    certificate signed by the CA; a peer without one, or with one the CA
//    did not sign, is refused during the handshake, before any call. The
//    client also checks that the server's certificate names the host it
//    dialled.
//  - abstract unix sockets have no file permissions at all: like TCP
//    without TLS they need the explicit --insecure.
//  - --insecure allows plaintext TCP and abstract sockets (logged as a
//    warning by the daemon). It cannot be combined with TLS files.
// Without TLS files and without --insecure a network target is refused
// with a message saying what to add: the daemon does not start on a TCP
// listen target, a migration to a TCP destination is refused before any
// device is touched, and vfio-migctl does not dial.
//
// The files are read and checked once, when the TransportSecurity is
// made: the CA and certificate parse, the key matches the certificate, the
// certificate is signed by the CA and valid now, and the key file is not
// readable by every user. A rotated certificate takes a restart.
//
// Immutable and cheap to copy once made; thread-safe.
#ifndef VFIOMIG_DAEMON_TRANSPORT_SECURITY_H_
#define VFIOMIG_DAEMON_TRANSPORT_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace vfiomig {

// The flags' file names; all three or none.
struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;

  bool any() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

enum class TargetKind {
  kFileSocket,      // unix:/path (and unix:///path)
  kAbstractSocket,  // unix-abstract:name
  kNetwork,         // host:port, dns:, ipv4:, ipv6:
};

// How a gRPC target (client or listen syntax) is reached.
TargetKind KindOfTarget(absl::string_view target);

class TransportSecurity {
 public:
  // No TLS, no --insecure: only file sockets are allowed (fails closed).
  TransportSecurity() = default;

  // From the flags. InvalidArgument when only some TLS files are given or
  // when --insecure is combined with them; FailedPrecondition naming the
  // file and the problem when a file cannot be read or the set is unsound.
  static absl::StatusOr<TransportSecurity> Create(const TlsFiles& files,
                                                  bool insecure);
  // Plaintext for every target; for tests that run on 127.0.0.1.
  static TransportSecurity Plaintext();

  bool has_tls() const { return identity_ != nullptr; }
  bool insecure() const { return insecure_; }
  // Subject of our certificate ("CN=host-a"), empty without TLS.
  std::string subject() const;

  // Credentials for a listen target, or FailedPrecondition saying which
  // flags it needs.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
      absl::string_view target) const;
  // Credentials to dial `target`, or FailedPrecondition saying which flags
  // it needs. With TLS our certificate is the client certificate.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
  ChannelCredentialsFor(absl::string_view target) const;

 private:
  struct Identity {
    std::string ca_pem;
    std::string cert_pem;
    std::string key_pem;
    std::string subject;
  };
  // The target's kind if allowed, or the error naming the flags.
  absl::Status CheckAllowed(absl::string_view target, TargetKind kind,
                            absl::string_view role) const;

  std::shared_ptr<const Identity> identity_;
  bool insecure_ = false;
};

// Who called, for log lines: the transport address and, over mutual TLS,
// the certificate's identity ("ipv4:10.0.0.2:51234 (cert host-b)").
std::string DescribePeer(const grpc::ServerContext& context);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_TRANSPORT_SECURITY_H_
