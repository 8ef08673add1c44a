"""Builds vfio-migd state stream frames in Python, for tests that play a
hostile or broken source (daemon/stream/format.h has the layout).

The frame checksum is XXH3-64, taken from the system's libxxhash (the
library the daemon uses) through ctypes, so no Python package is needed.
"""

import ctypes
import ctypes.util
import struct

FRAME_MAGIC = 0x534D4656  # "VFMS"
FRAME_VERSION = 1
# plugins/sim/sim_stream_format.h kStreamFormatVersion.
SIM_FORMAT_VERSION = 2
HEADER, PRE_COPY_DATA, PRE_COPY_ZEROS, STOP_COPY_DATA, STOP_COPY_ZEROS, END = \
    range(1, 7)

_xxhash = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xxhash.XXH3_64bits.restype = ctypes.c_uint64
_xxhash.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(data):
    return _xxhash.XXH3_64bits(data, len(data))


def frame(frame_type, sequence, payload, version=FRAME_VERSION):
    """One sealed frame: magic, checksum, header fields, payload."""
    body = struct.pack("<BBHIIQ", version, frame_type, 0, len(payload), 0,
                       sequence) + payload
    return struct.pack("<IQ", FRAME_MAGIC, xxh3(body)) + body


def data_digest(frames):
    """END's data_checksum for `frames`: XXH3-64 over the checksums (bytes
    4..12, little-endian) of the data and zero-run frames among them, in
    order."""
    sums = b"".join(f[4:12] for f in frames
                    if len(f) >= 32 and f[13] in (PRE_COPY_DATA, PRE_COPY_ZEROS,
                                                  STOP_COPY_DATA,
                                                  STOP_COPY_ZEROS))
    return xxh3(sums)


def end_payload(pre_copy_bytes, stop_copy_bytes, data_checksum):
    return struct.pack("<QQQ", pre_copy_bytes, stop_copy_bytes, data_checksum)


def sim_stream_header(total_size, seed, block_size=1 << 20):
    """The first 32 bytes of a sim device's own stream
    (plugins/sim/sim_stream_format.h): device data a sim destination
    accepts as the start of a resume."""
    return b"VFMIGSIM" + struct.pack("<IIQQ", SIM_FORMAT_VERSION, block_size,
                                     total_size, seed)
