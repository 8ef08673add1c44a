#!/bin/busybox sh
# PID 1 of the test VM (tests/vm/run.sh puts it in the initramfs as /init).
# Loads the 9p and VFIO modules and mtty, mounts the host's / (read-only)
# and the results share, creates the mtty mdevs, then runs tests/vm/guest.sh
# from the host root (chroot) and powers off. Parameters come on the kernel
# command line: vfiomig.repo=DIR vfiomig.build=DIR.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "init: $*"
  [ -d /out/ok ] || mkdir -p /out 2>/dev/null
  echo "init: $*" >> /out/guest.log 2>/dev/null
  poweroff -f
}

for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vfiomig.repo=*) repo="${arg#vfiomig.repo=}" ;;
    vfiomig.build=*) build="${arg#vfiomig.build=}" ;;
  esac
done

for m in netfs 9pnet 9pnet_virtio 9p vfio vfio_iommu_type1 mdev; do
  insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done
insmod /lib/modules/mtty.ko || fail "insmod mtty failed"

mkdir -p /host /out
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /host \
  || fail "cannot mount the host root"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out \
  || fail "cannot mount the results share"

# The chroot: the host's binaries and libraries, the guest's devices and
# kernel views, private tmpfs where programs write.
mount --bind /dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
# Not over the directory holding the repository or the build (a CI may
# clone under /tmp): the guest must see them.
for d in run tmp var/tmp; do
  case "$repo/" in "/$d/"*) continue ;; esac
  case "$build/" in "/$d/"*) continue ;; esac
  mount -t tmpfs tmpfs "/host/$d"
done
cp /bin/mtty_io /host/run/mtty_io
ip link set lo up

types=/sys/class/mdev_bus/mtty/mdev_supported_types
echo 11111111-0000-0000-0000-00000000000a > $types/mtty-2/create || fail "mdev A"
echo 11111111-0000-0000-0000-00000000000b > $types/mtty-2/create || fail "mdev B"
echo 11111111-0000-0000-0000-00000000000c > $types/mtty-1/create || fail "mdev C"
echo 11111111-0000-0000-0000-00000000000d > $types/mtty-2/create || fail "mdev D"

chroot /host /bin/bash "$repo/tests/vm/guest.sh" "$build" > /out/guest.log 2>&1
echo $? > /out/rc
sync
poweroff -f
