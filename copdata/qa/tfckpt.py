"""Read a TensorFlow checkpoint (a tensor bundle) without TensorFlow.

Definitions
-----------
A TF 1.x/2.x checkpoint with prefix ``P`` is two files (TensorFlow's
``core/util/tensor_bundle``):

* ``P.index``: a LevelDB-format table, keys sorted. Key ``""`` holds the
  ``BundleHeaderProto``; every other key is a variable name whose value is a
  ``BundleEntryProto``: ``dtype`` (field 1), ``shape`` (field 2, a
  ``TensorShapeProto`` of ``dim`` messages, field 2, each with ``size``,
  field 1), ``shard_id`` (3), ``offset`` (4), ``size`` (5), ``crc32c`` (6),
  ``slices`` (7).
* ``P.data-00000-of-00001``: the tensors' raw little-endian bytes, at
  ``offset`` for ``size`` bytes.

Table layout (LevelDB ``table_format``): a 48-byte footer ending in the magic
``0xdb4775248b80fb57`` holds the index block's handle (offset, size as
varints, after the metaindex handle); the index block maps keys to data-block
handles; each block is prefix-compressed entries (shared key length,
unshared length, value length as varints, then the key suffix and value),
then a restart array and its count (uint32 each), then a 5-byte trailer
(compression type, crc). Only uncompressed blocks (type 0, what TensorFlow
writes for bundles) and single-shard bundles are read; anything else raises
:class:`CheckpointError`. Integrity is the caller's: check the files' sha256
(the per-tensor masked crc32c is not verified here).

Only the dtypes a model checkpoint holds are decoded: float32, float64,
float16, int32, int64, bool. The values are returned as read-only-safe copies
(``np.frombuffer(...).copy()``), never unpickled.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import CopDataError

MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
# TensorFlow DataType enum -> numpy dtype (types.proto)
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8"),
          10: np.dtype("bool"), 19: np.dtype("<f2")}


class CheckpointError(CopDataError):
    """A TensorFlow checkpoint cannot be read (missing file, bad format, unsupported feature)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 64 bits")


def _block(buf: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of the table block at ``offset``."""
    if offset < 0 or offset + size + 5 > len(buf) or size < 4:
        raise CheckpointError(f"block ({offset}, {size}) outside the index file")
    if buf[offset + size] != 0:
        raise CheckpointError(f"compressed table block (type {buf[offset + size]}); only "
                              f"uncompressed bundles are supported")
    data = buf[offset:offset + size]
    (restarts,) = struct.unpack_from("<I", data, size - 4)
    end = size - 4 - 4 * restarts
    if end < 0:
        raise CheckpointError("bad restart count in a table block")
    entries: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(data, pos)
        unshared, pos = _varint(data, pos)
        value_len, pos = _varint(data, pos)
        if shared > len(key) or pos + unshared + value_len > end:
            raise CheckpointError("bad entry in a table block")
        key = key[:shared] + data[pos:pos + unshared]
        pos += unshared
        entries.append((key, data[pos:pos + value_len]))
        pos += value_len
    return entries


def _fields(msg: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as
    bytes, fixed32/fixed64 as int."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(msg):
        tag, pos = _varint(msg, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(msg, pos)
        elif wire == 2:
            length, pos = _varint(msg, pos)
            value, pos = msg[pos:pos + length], pos + length
        elif wire == 5:
            (value,), pos = struct.unpack_from("<I", msg, pos), pos + 4
        elif wire == 1:
            (value,), pos = struct.unpack_from("<Q", msg, pos), pos + 8
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        out.append((field, value))
    return out


def _entry(value: bytes) -> dict:
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "slices": False}
    for field, v in _fields(value):
        if field == 1:
            entry["dtype"] = v
        elif field == 2:
            for f2, dim in _fields(v):  # type: ignore[arg-type]
                if f2 == 2:
                    size = dict(_fields(dim)).get(1, 0)  # type: ignore[arg-type]
                    entry["shape"].append(int(size))
                elif f2 == 3 and v:
                    raise CheckpointError("a tensor of unknown rank")
        elif field == 3:
            entry["shard_id"] = v
        elif field == 4:
            entry["offset"] = v
        elif field == 5:
            entry["size"] = v
        elif field == 7:
            entry["slices"] = True
    return entry


def index_entries(prefix: str | Path) -> dict[str, dict]:
    """Variable name -> its ``BundleEntryProto`` fields, from ``prefix.index``."""
    path = Path(f"{prefix}.index")
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}", item=str(path)) from exc
    if len(buf) < FOOTER_BYTES:
        raise CheckpointError("index file shorter than a table footer", item=str(path))
    footer = buf[-FOOTER_BYTES:]
    if struct.unpack_from("<Q", footer, 40)[0] != MAGIC:
        raise CheckpointError("not a TensorFlow checkpoint index (bad table magic)", item=str(path))
    pos = 0
    _, pos = _varint(footer, pos)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: dict[str, dict] = {}
    try:
        for _, handle in _block(buf, index_offset, index_size):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in _block(buf, offset, size):
                if key:  # "" is the bundle header
                    entries[key.decode("utf-8")] = _entry(value)
    except CheckpointError as exc:
        raise CheckpointError(str(exc), item=str(path)) from None
    return entries


def read_checkpoint(prefix: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Tensors of the checkpoint ``prefix`` (all, or ``names``), as numpy arrays."""
    entries = index_entries(prefix)
    wanted = sorted(entries) if names is None else list(names)
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise CheckpointError(f"variables not in the checkpoint: {missing[:5]}", item=str(prefix))
    data_path = Path(f"{prefix}.data-00000-of-00001")
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {data_path}: {exc}", item=str(data_path)) from exc
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        e = entries[name]
        if e["slices"] or e["shard_id"] != 0:
            raise CheckpointError(f"{name}: sliced or sharded tensors are not supported",
                                  item=str(prefix))
        dtype = DTYPES.get(int(e["dtype"]))
        if dtype is None:
            raise CheckpointError(f"{name}: unsupported dtype enum {e['dtype']}", item=str(prefix))
        count = int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1
        if count * dtype.itemsize != e["size"] or e["offset"] + e["size"] > len(data):
            raise CheckpointError(f"{name}: {e['size']} bytes at {e['offset']} do not hold "
                                  f"{count} x {dtype}", item=str(prefix))
        raw = data[e["offset"]:e["offset"] + e["size"]]
        out[name] = np.frombuffer(raw, dtype=dtype).reshape(e["shape"]).copy()
    return out
