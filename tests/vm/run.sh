#!/usr/bin/env bash
# The VM test: migrates real kernel VFIO devices (the kernel's mtty sample
# driver, VFIO migration v2) between two vfio-migd daemons inside a VM.
#
#   bash tests/vm/run.sh [BUILD_DIR]     (default: build; needs root)
#
# Steps: fetch Debian's 6.12 kernel packages into a cache (apt-get
# download; reused between runs), build mtty.ko against their headers, pack
# an initramfs (busybox, modules, init.sh), boot the kernel under QEMU TCG
# with the host's / shared read-only, and run tests/vm/guest.sh there: it
# drives the host-built vfio-migd and vfio-migctl against mtty mdevs.
# Prints one line per scenario and `vm: N passed, M failed`; exits non-zero
# on any failure. Facts behind it: shared/design/kernel-vm.md.
#
# Cache: $VFIOMIG_VM_CACHE, default .cache/vm in the repository (ignored by
# git; a CI can keep it between runs). Cold it downloads ~125 MB and keeps
# ~400 MB; only samples/vfio-mdev/mtty.c is kept from linux-source.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
cache=${VFIOMIG_VM_CACHE:-$repo/.cache/vm}
mkdir -p "$cache/debs"

# The kernel kernel-vm.md was proven with; when the archive no longer has
# it, the newest 6.12 it has (same packaging). $VFIOMIG_VM_KERNEL overrides.
kpkg=${VFIOMIG_VM_KERNEL:-6.12.107-1~deb12u1}
if ! compgen -G "$cache/debs/linux-image-*_${kpkg}_amd64.deb" >/dev/null &&
   ! apt-cache show "linux-source-6.12=$kpkg" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  if ! apt-cache show "linux-source-6.12=$kpkg" >/dev/null 2>&1; then
    kpkg=$(apt-cache policy linux-source-6.12 | awk '/Candidate:/ {print $2}')
    [ -n "$kpkg" ] && [ "$kpkg" != "(none)" ] || {
      echo "vm: no linux-source-6.12 in the package lists"
      echo "vm: 0 passed, 1 failed"; exit 1; }
    echo "vm: kernel $kpkg (the pinned one is gone from the archive)" >&2
  fi
fi
kver=${kpkg%%-*}+deb12   # 6.12.107-1~deb12u1 -> 6.12.107+deb12
kflavour=$kver-amd64
packages=(
  "linux-image-$kflavour-unsigned"
  "linux-headers-$kflavour"
  "linux-headers-$kver-common"
  "linux-kbuild-$kver"
)
modules=(fs/netfs/netfs net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p
         drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/mdev/mdev)

say() { echo "vm: $*" >&2; }
die() { say "$*"; echo "vm: 0 passed, 1 failed"; exit 1; }

for tool in qemu-system-x86_64 busybox cpio xz dpkg-deb make gcc; do
  command -v "$tool" >/dev/null || die "missing $tool (bash deploy/install-deps.sh)"
done
[ -x "$build/daemon/vfio-migd" ] && [ -x "$build/client/vfio-migctl" ] \
  || die "no vfio-migd/vfio-migctl in $build (build first)"

# apt-get download, refreshing the package lists once if they are stale.
download() {
  (cd "$cache/debs" && apt-get download -q "$@" >/dev/null 2>&1) && return 0
  apt-get update -qq >/dev/null
  (cd "$cache/debs" && apt-get download -q "$@" >/dev/null) \
    || die "apt-get download $* failed"
}

# 1. Packages and the kernel tree.
root=$cache/root
if [ ! -f "$root/.done-$kpkg" ]; then
  missing=()
  for p in "${packages[@]}"; do
    compgen -G "$cache/debs/${p}_${kpkg}_*.deb" >/dev/null || missing+=("$p=$kpkg")
  done
  if ((${#missing[@]})); then say "downloading ${missing[*]}"; download "${missing[@]}"; fi
  rm -rf "$root" && mkdir -p "$root"
  for p in "${packages[@]}"; do dpkg-deb -x "$cache/debs/${p}_${kpkg}_"*.deb "$root"; done
  # The flavour's Makefile includes the common headers by absolute path.
  sed -i "s|^include /usr/src/|include $root/usr/src/|" \
    "$root/usr/src/linux-headers-$kflavour/Makefile"
  touch "$root/.done-$kpkg"
fi
if [ ! -f "$cache/mtty-$kpkg.c" ]; then
  say "fetching samples/vfio-mdev/mtty.c from linux-source-6.12"
  download "linux-source-6.12=$kpkg"
  dpkg-deb --fsys-tarfile "$cache/debs/linux-source-6.12_"*.deb \
    | tar -xO ./usr/src/linux-source-6.12.tar.xz | xz -dc \
    | tar -xO linux-source-6.12/samples/vfio-mdev/mtty.c > "$cache/mtty.c.part"
  mv "$cache/mtty.c.part" "$cache/mtty-$kpkg.c"
  rm -f "$cache/debs/linux-source-6.12_"*.deb
fi

# 2. mtty.ko, built out of tree against the unpacked headers.
mtty=$cache/mtty-build-$kpkg
if [ ! -f "$mtty/mtty.ko" ]; then
  say "building mtty.ko"
  rm -rf "$mtty" && mkdir -p "$mtty"
  cp "$cache/mtty-$kpkg.c" "$mtty/mtty.c"
  echo "obj-m := mtty.o" > "$mtty/Makefile"
  make -s -C "$root/usr/src/linux-headers-$kflavour" M="$mtty" modules \
    >"$mtty/build.log" 2>&1 || { cat "$mtty/build.log" >&2; die "mtty.ko did not build"; }
fi

# 3. The initramfs: busybox, the modules, mtty.ko and init.sh.
work=$(mktemp -d "${TMPDIR:-/tmp}/vfiomig-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
initrd=$work/initrd
mkdir -p "$initrd"/{bin,dev,proc,sys,lib/modules} "$work/out"
cp "$(command -v busybox)" "$initrd/bin/busybox"
for m in "${modules[@]}"; do
  xz -dc "$root/lib/modules/$kflavour/kernel/$m.ko.xz" \
    > "$initrd/lib/modules/$(basename "$m").ko"
done
cp "$mtty/mtty.ko" "$initrd/lib/modules/mtty.ko"
gcc -O2 -static -Wall -Wextra -Werror -o "$initrd/bin/mtty_io" \
  "$repo/tests/vm/mtty_io.c"
cp "$repo/tests/vm/init.sh" "$initrd/init"
chmod +x "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# 4. Boot. TCG: this machine's /dev/kvm cannot run a stock Debian kernel.
say "booting Linux $kver under QEMU TCG"
start=$SECONDS
status=0
timeout 480 qemu-system-x86_64 -accel tcg -cpu max -M pc -smp 2 -m 1024 \
  -nodefaults -display none -no-reboot \
  -kernel "$root/boot/vmlinuz-$kflavour" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 vfiomig.repo=$repo vfiomig.build=$build" \
  -serial "file:$work/console.log" \
  -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$work/out,mount_tag=out,security_model=none" \
  || status=$?
say "VM ran $((SECONDS - start)) s (qemu exit $status)"

# 5. Results: the guest's scenario lines, then the count.
passed=0 failed=0
if [ -f "$work/out/guest.log" ]; then
  while IFS= read -r line; do
    case "$line" in
      "vm: ok "*) passed=$((passed + 1)); echo "$line" ;;
      "vm: FAIL "*) failed=$((failed + 1)); echo "$line" ;;
      "guest: scenarios took "*) say "${line#guest: }" ;;
    esac
  done < "$work/out/guest.log"
fi
if [ "$(cat "$work/out/rc" 2>/dev/null)" != 0 ] || ((failed > 0)) || ((passed == 0)); then
  ((failed > 0)) || failed=1
  say "guest log:"; sed 's/^/  /' "$work/out/guest.log" >&2 2>/dev/null || true
  say "console (tail):"; tail -30 "$work/console.log" | sed 's/^/  /' >&2
fi
echo "vm: $passed passed, $failed failed"
((failed == 0))
