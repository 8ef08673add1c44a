#!/usr/bin/env bash
# Makes a test CA and host certificates for vfio-migd's mutual TLS, with
# openssl. For tests and trials: a production CA keeps its key offline.
#
#   deploy/make-test-certs.sh [--days N] [--ca-name NAME] DIR HOST...
#
# Writes into DIR (created with mode 0700):
#   ca.pem, ca.key          the CA (made once; reused when DIR has one, so
#                           more hosts can be added later)
#   HOST.pem, HOST.key      per HOST: a certificate signed by the CA, for
#                           both TLS roles (a daemon serves and dials), whose
#                           subjectAltName holds HOST, localhost, 127.0.0.1
#                           and ::1 (gRPC checks that the server's
#                           certificate names the host the client dialled)
# Keys are EC P-256 with mode 0600. Each daemon then runs with
#   --tls-ca DIR/ca.pem --tls-cert DIR/HOST.pem --tls-key DIR/HOST.key
# and vfio-migctl takes the same three flags for a host:port --server.
set -euo pipefail

days=30
ca_name="vfio-migd test CA"
usage() {
  echo "usage: $0 [--days N] [--ca-name NAME] DIR HOST..." >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --days) days=${2:?}; shift 2 ;;
    --ca-name) ca_name=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "$0: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
(($# >= 2)) || usage
dir=$1
shift
command -v openssl >/dev/null || {
  echo "$0: openssl is missing (apt-get install openssl)" >&2
  exit 1
}

umask 077
mkdir -p "$dir"
chmod 700 "$dir"

if [[ ! -f "$dir/ca.pem" || ! -f "$dir/ca.key" ]]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=$ca_name" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for host in "$@"; do
  [[ "$host" =~ ^[A-Za-z0-9.-]+$ ]] || {
    echo "$0: '$host' is not a host name" >&2
    exit 2
  }
  ext=$(mktemp)
  trap 'rm -f "$ext" "$dir/$host.csr"' EXIT
  san="DNS:$host,DNS:localhost,IP:127.0.0.1,IP:::1"
  if [[ "$host" =~ ^[0-9.]+$ ]]; then
    san="IP:$host,DNS:localhost,IP:127.0.0.1,IP:::1"
  fi
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$dir/$host.key" -out "$dir/$host.csr" -subj "/CN=$host" \
    2>/dev/null
  openssl x509 -req -in "$dir/$host.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/$host.pem" \
    -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$dir/$host.csr"
  trap - EXIT
  chmod 600 "$dir/$host.key"
  chmod 644 "$dir/$host.pem"
done
chmod 644 "$dir/ca.pem"
echo "make-test-certs: CA $dir/ca.pem; hosts: $*"
