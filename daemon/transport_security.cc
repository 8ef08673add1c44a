#include "daemon/transport_security.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"

namespace vfiomig {
namespace {

// Most a PEM file may hold: a CA bundle of a few hundred certificates.
constexpr std::streamsize kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// OpenSSL's last error as text, and clears its queue.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(runtime/int)
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::string text(static_cast<size_t>(kMaxPemBytes) + 1, '\0');
  in.read(text.data(), kMaxPemBytes + 1);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxPemBytes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        flag, " ", path, ": larger than ", kMaxPemBytes, " bytes"));
  }
  return text;
}

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order; an error when there is none.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(
    const std::string& pem, absl::string_view flag, const std::string& path) {
  std::vector<X509Ptr> certs;
  auto bio = MemoryBio(pem);
  ERR_clear_error();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the end of the data reads as an error
  if (certs.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        flag, " ", path, ": no PEM certificate (\"BEGIN CERTIFICATE\")"));
  }
  return certs;
}

std::string SubjectOf(X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                     XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);  // NOLINT
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "";
}

// The key must not be readable by every user; group-readable is the
// Debian convention (group ssl-cert) and allowed.
absl::Status CheckKeyFileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-key ", path, ": cannot stat: ", std::strerror(errno)));
  }
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--tls-key %s: the private key is accessible to every user (mode "
        "%04o); chmod 600 or 640",
        path, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::string_view KindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kFileSocket:
      return "unix socket";
    case TargetKind::kAbstractSocket:
      return "abstract unix socket (no file permissions: any local user "
             "can connect)";
    case TargetKind::kNetwork:
      return "TCP";
  }
  return "?";
}

}  // namespace

TargetKind KindOfTarget(absl::string_view target) {
  if (absl::StartsWith(target, "unix-abstract:")) {
    return TargetKind::kAbstractSocket;
  }
  if (absl::StartsWith(target, "unix:")) return TargetKind::kFileSocket;
  return TargetKind::kNetwork;
}

absl::StatusOr<TransportSecurity> TransportSecurity::Create(
    const TlsFiles& files, bool insecure) {
  TransportSecurity security;
  security.insecure_ = insecure;
  if (!files.any()) return security;
  if (insecure) {
    return absl::InvalidArgumentError(
        "--insecure cannot be combined with --tls-ca/--tls-cert/--tls-key: "
        "choose mutual TLS or plaintext");
  }
  if (files.ca.empty() || files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs all of --tls-ca, --tls-cert and --tls-key");
  }
  auto identity = std::make_shared<Identity>();
  absl::StatusOr<std::string> ca = ReadPem(files.ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadPem(files.cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  if (absl::Status s = CheckKeyFileMode(files.key); !s.ok()) return s;
  absl::StatusOr<std::string> key = ReadPem(files.key, "--tls-key");
  if (!key.ok()) return key.status();

  absl::StatusOr<std::vector<X509Ptr>> ca_certs =
      ParseCertificates(*ca, "--tls-ca", files.ca);
  if (!ca_certs.ok()) return ca_certs.status();
  absl::StatusOr<std::vector<X509Ptr>> chain =
      ParseCertificates(*cert, "--tls-cert", files.cert);
  if (!chain.ok()) return chain.status();
  X509* leaf = chain->front().get();

  auto key_bio = MemoryBio(*key);
  ERR_clear_error();
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("--tls-key ", files.key,
                     ": no unencrypted PEM private key: ", OpenSslError()));
  }
  if (X509_check_private_key(leaf, pkey.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--tls-key ", files.key, " is not the key of --tls-cert ", files.cert));
  }

  // The same check every peer will make: is our certificate signed by the
  // CA, and valid now?
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& c : *ca_certs) X509_STORE_add_cert(store.get(), c.get());
  std::unique_ptr<STACK_OF(X509), StackFree> intermediates(sk_X509_new_null());
  for (size_t i = 1; i < chain->size(); ++i) {
    X509_up_ref((*chain)[i].get());
    sk_X509_push(intermediates.get(), (*chain)[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, intermediates.get()) !=
      1) {
    return absl::InternalError(absl::StrCat(
        "cannot set up certificate verification: ", OpenSslError()));
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat("--tls-cert ", files.cert, " (", SubjectOf(leaf),
                     ") does not verify against --tls-ca ", files.ca, ": ",
                     X509_verify_cert_error_string(err)));
  }

  identity->ca_pem = *std::move(ca);
  identity->cert_pem = *std::move(cert);
  identity->key_pem = *std::move(key);
  identity->subject = SubjectOf(leaf);
  security.identity_ = std::move(identity);
  return security;
}

TransportSecurity TransportSecurity::Plaintext() {
  TransportSecurity security;
  security.insecure_ = true;
  return security;
}

std::string TransportSecurity::subject() const {
  return identity_ == nullptr ? "" : identity_->subject;
}

absl::Status TransportSecurity::CheckAllowed(absl::string_view target,
                                             TargetKind kind,
                                             absl::string_view role) const {
  if (kind == TargetKind::kFileSocket || insecure_) return absl::OkStatus();
  if (kind == TargetKind::kNetwork && has_tls()) return absl::OkStatus();
  if (kind == TargetKind::kNetwork) {
    return absl::FailedPreconditionError(absl::StrCat(
        role, " '", target,
        "' is TCP and needs mutual TLS: give --tls-ca, "
        "--tls-cert and --tls-key (deploy/make-test-certs.sh makes a test "
        "CA), or --insecure to allow unauthenticated plaintext"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(role, " '", target, "' is an ", KindName(kind),
                   "; use a unix:/path socket, or --insecure to allow it"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
TransportSecurity::ServerCredentialsFor(absl::string_view target) const {
  const TargetKind kind = KindOfTarget(target);
  if (absl::Status s = CheckAllowed(target, kind, "listen target"); !s.ok()) {
    return s;
  }
  if (kind != TargetKind::kNetwork || !has_tls()) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = identity_->ca_pem;
  options.pem_key_cert_pairs.push_back(
      {identity_->key_pem, identity_->cert_pem});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
TransportSecurity::ChannelCredentialsFor(absl::string_view target) const {
  const TargetKind kind = KindOfTarget(target);
  if (absl::Status s = CheckAllowed(target, kind, "target"); !s.ok()) {
    return s;
  }
  if (kind != TargetKind::kNetwork || !has_tls()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = identity_->ca_pem;
  options.pem_private_key = identity_->key_pem;
  options.pem_cert_chain = identity_->cert_pem;
  return grpc::SslCredentials(options);
}

std::string DescribePeer(const grpc::ServerContext& context) {
  std::string peer = context.peer();
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return peer;
  std::vector<grpc::string_ref> names =
      auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (names.empty()) names = auth->GetPeerIdentity();
  if (names.empty()) return peer;
  return absl::StrCat(
      peer, " (cert ",
      absl::string_view(names.front().data(), names.front().size()), ")");
}

}  // namespace vfiomig
