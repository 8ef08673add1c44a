#!/usr/bin/python3
"""Writes the fake sysfs + /dev trees under tests/plugins/vfio/sysfs/.

The trees are committed; this script documents how they were made and
rebuilds them after a change (run it from anywhere, then commit). Only what
discovery reads is modelled: bus entries, driver / iommu_group / mdev_type
symlinks (their targets' names matter, not their contents), vendor/device/
class attributes, vfio-dev/vfioN directories, IOMMU group member lists, and
/dev nodes as empty files (discovery only checks that they exist).
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sysfs")


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def link(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


class Tree:
    def __init__(self, name):
        self.root = os.path.join(OUT, name)
        self.sys = os.path.join(self.root, "sys")
        self.dev = os.path.join(self.root, "dev")
        os.makedirs(self.sys)
        os.makedirs(self.dev)

    def group(self, number, member):
        link(os.path.join(self.sys, "kernel/iommu_groups", str(number),
                          "devices", member),
             "../../../../devices/" + member)

    def pci(self, address, vendor, device, cls, driver=None, group=None,
            vfio_dev=None):
        d = os.path.join(self.sys, "bus/pci/devices", address)
        write(os.path.join(d, "vendor"), "0x%04x\n" % vendor)
        write(os.path.join(d, "device"), "0x%04x\n" % device)
        write(os.path.join(d, "class"), "0x%06x\n" % cls)
        if driver:
            link(os.path.join(d, "driver"),
                 "../../../../bus/pci/drivers/" + driver)
        if group is not None:
            link(os.path.join(d, "iommu_group"),
                 "../../../../kernel/iommu_groups/%d" % group)
            self.group(group, address)
        if vfio_dev:
            write(os.path.join(d, "vfio-dev", vfio_dev, "dev"), "511:0\n")

    def mdev(self, uuid, parent, mdev_type, type_name, driver, group):
        parent_dir = os.path.join(self.sys, "devices/virtual", parent, parent)
        write(os.path.join(parent_dir, "mdev_supported_types", mdev_type,
                           "name"), type_name + "\n")
        d = os.path.join(parent_dir, uuid)
        os.makedirs(d)
        link(os.path.join(d, "mdev_type"),
             "../mdev_supported_types/" + mdev_type)
        if driver:
            link(os.path.join(d, "driver"), "../../../../../bus/mdev/drivers/"
                 + driver)
        if group is not None:
            link(os.path.join(d, "iommu_group"),
                 "../../../../../kernel/iommu_groups/%d" % group)
            self.group(group, uuid)
        link(os.path.join(self.sys, "bus/mdev/devices", uuid),
             "../../../devices/virtual/%s/%s/%s" % (parent, parent, uuid))

    def node(self, *parts):
        write(os.path.join(self.dev, *parts))


def host():
    t = Tree("host")
    # Legacy container and iommufd both exist on this host.
    t.node("vfio", "vfio")
    t.node("iommu")
    # vfio-pci with an iommufd cdev (and its group node).
    t.pci("0000:3b:00.0", 0x10de, 0x2330, 0x030200, "vfio-pci", 12, "vfio0")
    t.node("vfio", "12")
    t.node("vfio", "devices", "vfio0")
    # A variant driver on the legacy path only (no cdev).
    t.pci("0000:3b:00.1", 0x15b3, 0x101e, 0x020000, "mlx5_vfio_pci", 13)
    t.node("vfio", "13")
    # An unknown variant without "vfio" in its name, alone in its group,
    # whose group node proves it is VFIO.
    t.pci("0000:3c:00.0", 0x1d0f, 0xefa1, 0x020000, "acme_migr", 14)
    t.node("vfio", "14")
    # A multi-device IOMMU group: two functions bound to vfio-pci and a
    # bridge on pcieport (allowed beside VFIO).
    t.pci("0000:5e:00.0", 0x8086, 0x1592, 0x020000, "vfio-pci", 20)
    t.pci("0000:5e:00.1", 0x8086, 0x1592, 0x020000, "vfio-pci", 20)
    t.pci("0000:5d:00.0", 0x8086, 0x347a, 0x060400, "pcieport", 20)
    t.node("vfio", "20")
    # A group that is not viable: one function on vfio-pci, its sibling on
    # a host driver.
    t.pci("0000:af:00.0", 0x8086, 0x1521, 0x020000, "vfio-pci", 21)
    t.pci("0000:af:00.1", 0x8086, 0x1521, 0x020000, "igb", 21)
    t.node("vfio", "21")
    # vfio-pci without an IOMMU group (IOMMU off).
    t.pci("0000:d8:00.0", 0x144d, 0xa80a, 0x010802, "vfio-pci", None)
    # Host devices: on a host driver, and unbound.
    t.pci("0000:00:1f.6", 0x8086, 0x15bc, 0x020000, "e1000e", 7)
    t.pci("0000:00:14.0", 0x8086, 0xa36d, 0x0c0330, None, 8)
    # mdevs: two mtty types, and one on an mdev whose group node is gone.
    t.mdev("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty", "mtty-2",
           "Dual port mtty", "mtty", 30)
    t.node("vfio", "30")
    t.mdev("83b8f4f2-509f-382f-3c1e-e6bfe0fa1002", "mtty", "mtty-1",
           "Single port mtty", "mtty", 31)
    t.node("vfio", "31")
    t.mdev("83b8f4f2-509f-382f-3c1e-e6bfe0fa1003", "mtty", "mtty-1",
           "Single port mtty", "mtty", 32)


def no_vfio():
    # Like this project's CI machine: virtio devices, no IOMMU, no VFIO.
    t = Tree("novfio")
    t.pci("0000:00:00.0", 0x8086, 0x0d57, 0x060000, None, None)
    t.pci("0000:00:01.0", 0x1af4, 0x1045, 0xffff00, "virtio-pci", None)
    t.pci("0000:00:03.0", 0x1af4, 0x1041, 0x020000, "virtio-pci", None)


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    host()
    no_vfio()
