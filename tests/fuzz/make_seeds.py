#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets (corpus/<target>/).

Seeds are small, valid inputs of each parser, so that the fuzzer starts
from the grammar instead of from nothing; libFuzzer mutates them. The
committed corpus is this script's output plus what fuzzing runs added
(README.md); rerunning it rewrites only the seed-* files.

  /usr/bin/python3 tests/fuzz/make_seeds.py
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import peer_frames as pf  # noqa: E402


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number, value):
    """One protobuf field: varint for ints, length-delimited for bytes."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def stream_header(migration="m-1", device="gpu0", flags=7, mdev=b"",
                  vendor=0, dev=0, stop_copy=1 << 20, version=1):
    identity = (field(1, device.encode()) + field(4, b"sim") +
                (field(5, mdev) if mdev else b"") +
                (field(2, vendor) if vendor else b"") +
                (field(3, dev) if dev else b"") +
                field(6, flags) + field(7, b"sim"))
    return (field(1, version) + field(2, b"source-host") +
            field(3, migration.encode()) + field(4, identity) +
            field(5, stop_copy))


def valid_stream_frames():
    data_pre = bytes(range(256)) * 2
    data_stop = b"\xa5" * 300
    frames = [pf.frame(pf.HEADER, 0, stream_header())]
    frames.append(pf.frame(pf.PRE_COPY_DATA, 1, data_pre))
    frames.append(pf.frame(pf.PRE_COPY_ZEROS, 2, struct.pack("<Q", 4096)))
    frames.append(pf.frame(pf.STOP_COPY_DATA, 3, data_stop))
    frames.append(pf.frame(pf.STOP_COPY_ZEROS, 4, struct.pack("<Q", 10)))
    frames.append(pf.frame(pf.END, 5, pf.end_payload(
        len(data_pre) + 4096, len(data_stop) + 10, pf.data_digest(frames))))
    return frames


def script(frames, control=0):
    """stream_reader_fuzz's input: per frame a control byte, a 16-bit
    length and the frame."""
    return b"".join(bytes([control]) + struct.pack("<H", len(f)) + f
                    for f in frames)


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    frames = valid_stream_frames()
    write("stream_reader", "valid", script(frames))
    write("stream_reader", "valid-packed", b"\x80" + b"".join(frames))
    write("stream_reader", "header-end", script(
        [frames[0], pf.frame(pf.END, 1, pf.end_payload(0, 0, pf.data_digest([])))]))
    write("stream_reader", "truncated", script(frames[:3]))
    write("stream_reader", "replayed", script(frames[:2] + frames[1:]))
    # Control bytes that repair magic, length, sequence and checksum.
    write("stream_reader", "repaired", script(
        [f[:20] + b"\xff" * 8 + f[28:] for f in frames], control=0x1F))

    write("stream_header", "p2p-precopy", stream_header())
    write("stream_header", "mdev", stream_header(mdev=b"nvidia-35", flags=1))
    write("stream_header", "pci", stream_header(vendor=0x10DE, dev=0x2330))
    write("stream_header", "version-2", stream_header(version=2))
    write("stream_header", "huge-estimate", stream_header(stop_copy=1 << 62))

    for name in ("source", "destination"):
        with open(os.path.join(HERE, "..", "..", "deploy", "sim",
                               name + ".json")) as f:
            write("sim_config", name, f.read())
    write("sim_config", "every-key", json.dumps({"devices": [
        {"id": "gpu0", "description": "every key",
         "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": "64MiB", "precopy_bytes": "32MiB",
         "dirty_bytes_per_s": "1MiB", "arc_latency_ms": 2, "drain_ms": 20,
         "seed": 12345,
         "fail_arcs": ["RUNNING_P2P>STOP:error", "stop>stop_copy"]},
        {"id": "nic0", "features": ["stop_copy"], "state_bytes": 4096}]}))
    write("sim_config", "empty", '{"devices": []}')

    # sim_resume_fuzz: size (u32), seed, versions, chunking, edits.
    write("sim_resume", "small", struct.pack("<IBBI", 4000, 7, 1, 100))
    write("sim_resume", "two-blocks", struct.pack("<IBBBBI", (1 << 20) + 5,
                                                  3, 2, 0, 1, 65536))
    write("sim_resume", "flip", struct.pack("<IBBIBIBB", 70000, 1, 0, 512,
                                            0, 40, 0, 0x10))
    write("sim_resume", "cut", struct.pack("<IBBIBIB", 70000, 1, 0, 512,
                                           1, 60000, 0))
    write("sim_resume", "replay", struct.pack("<IBBIBIB", 70000, 1, 0, 512,
                                              2, 32, 3))

    for i, target in enumerate([
            "unix:/run/vfio-migd/vfio-migd.sock", "unix:///run/x.sock",
            "unix:relative.sock", "unix-abstract:vfio-migd",
            "127.0.0.1:7000", "[::]:0", "localhost:65535",
            "dns:///host.example:443", "ipv4:10.0.0.1:80"]):
        write("listen_target", str(i), target)

    # domain_xml: the realistic domain of the hook's unit test (every kind
    # of hostdev, comments, namespaces), and small ones of each kind.
    with open(os.path.join(HERE, "..", "client", "libvirt",
                           "domain_xml_test.cc")) as f:
        test = f.read()
    start = test.index('constexpr char kDomain[] =')
    start = test.index('R"(', start) + 3
    write("domain_xml", "libvirt-9", test[start:test.index(')";', start)])
    pci = ("<domain type='kvm'><name>vm-pci</name>"
           "<uuid>6f3a0c5e-1b2d-4e8f-9a7b-0c1d2e3f4a5b</uuid><devices>"
           "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
           "<address domain='0x0000' bus='0x65' slot='0x00' function='0x0'/>"
           "</source></hostdev></devices></domain>")
    write("domain_xml", "pci", pci)
    write("domain_xml", "mdev", (
        "<domain type='kvm'><name>vm-mdev</name><devices>"
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
        "<address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source>"
        "</hostdev></devices></domain>"))
    write("domain_xml", "no-hostdev",
          "<domain type='kvm'><name>plain</name><devices/></domain>")


if __name__ == "__main__":
    main()
