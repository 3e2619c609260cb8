"""The compressed model file: sparse, weight-shared, Huffman-coded layers on disk.

Deep Compression's reference repository only ships a decoder for one pre-compressed AlexNet;
this module writes and reads such files for any model. Layout (little-endian)::

    b"DCMP" | u8 version | u16 n | JSON (n bytes: architecture + metadata) | u16 tensor count
    per tensor:  u16 name length | name | u8 kind | u8 ndim | u32 x ndim shape | kind fields |
                 u8 blob count | u32 x blob count blob lengths
    then every tensor's blobs, in order, and a u32 CRC-32 of everything before it.

Kinds and their blobs:

* ``sparse`` (2): a pruned, weight-shared tensor. Fields: ``u8 bits, u8 index_bits, u32 entries,
  u32 weight-stream bits, u32 index-stream bits``. Blobs: codebook (float32; code 0 is the zero
  of pruned weights and fillers), the weight-code and the relative-index Huffman tables (code
  lengths, 4 bits each), the weight-code stream, the relative-index stream (see
  :mod:`common.compress.sparse`).
* ``shared`` (1): weight sharing without pruning. Fields: ``u8 bits, u32 entries, u32 stream
  bits``. Blobs: codebook, Huffman table, weight-code stream.
* ``dense`` (0): any other tensor (biases, batch-norm statistics). Field: ``u8 dtype``. Blob: raw
  little-endian values.

With ``use_huffman=True`` the streams use optimal canonical Huffman codes; with ``False`` every
symbol gets the fixed width (``bits`` / ``index_bits``), which is the same canonical code with all
lengths equal, so one decoder reads both. The size of the file is the size we report: it holds
every byte needed to rebuild the model, headers, biases and code tables included.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.compress import huffman
from common.compress.quantize import SharedLayer
from common.compress.sparse import decode_positions, encode_positions
from common.errors import InputError

MAGIC = b"DCMP"
VERSION = 2
KINDS = {"dense": 0, "shared": 1, "sparse": 2}
DTYPES = ["float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]


class CodecError(InputError, ValueError):
    """The file is not a valid compressed model."""


@dataclass
class LayerStorage:
    """Storage of one compressed layer, in the quantities of the paper's Tables 2-5."""

    name: str
    numel: int
    kept: int  # real (non-zero) weights
    entries: int  # stored entries: kept + fillers (= numel without pruning)
    fillers: int
    bits: int  # weight-code width before Huffman
    index_bits: int  # relative-index width (0: not sparse)
    weight_stream_bits: int
    index_stream_bits: int
    table_bytes: int
    code_table_bytes: int

    @property
    def density(self) -> float:
        return self.kept / self.numel

    @property
    def pq_bits(self) -> int:
        """Bits after pruning + quantization with fixed-width codes (codebook included)."""
        return self.entries * (self.bits + self.index_bits) + 8 * self.table_bytes

    @property
    def pqh_bits(self) -> int:
        """Bits after Huffman coding (codebook and code-length tables included)."""
        return (
            self.weight_stream_bits
            + self.index_stream_bits
            + 8 * (self.table_bytes + self.code_table_bytes)
        )

    @property
    def weight_bits_huffman(self) -> float:
        return self.weight_stream_bits / max(self.entries, 1)

    @property
    def index_bits_huffman(self) -> float:
        return self.index_stream_bits / max(self.entries, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            density=self.density,
            pq_bits=self.pq_bits,
            pqh_bits=self.pqh_bits,
            weight_bits_huffman=self.weight_bits_huffman,
            index_bits_huffman=self.index_bits_huffman,
            rate_pq=self.pq_bits / (32 * self.numel),
            rate_pqh=self.pqh_bits / (32 * self.numel),
        )
        return d


@dataclass
class CodecReport:
    """What was written: per-layer storage and the exact byte budget of the file."""

    file_bytes: int
    header_bytes: int
    dense_bytes: int
    layers: list[LayerStorage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_bytes": self.file_bytes,
            "header_bytes": self.header_bytes,
            "dense_bytes": self.dense_bytes,
            "layers": [x.to_dict() for x in self.layers],
        }


def _code(symbols: np.ndarray, alphabet: int, width: int, use_huffman: bool) -> huffman.HuffmanCode:
    if use_huffman:
        return huffman.build_code(symbols, alphabet)
    return huffman.canonical(np.full(alphabet, width, dtype=np.uint8))


def _encode_layer(
    name: str, layer: SharedLayer, index_bits: int, use_huffman: bool
) -> tuple[dict[str, Any], list[bytes], LayerStorage]:
    codes = layer.codes.numpy().ravel()
    table = layer.table.numpy().astype("<f4")
    alphabet = 1 << layer.bits
    if table.size > alphabet:
        raise CodecError(f"{name}: {table.size} table entries do not fit in {layer.bits} bits")
    if layer.zero_code:
        keep = codes != 0
        relative, is_filler = encode_positions(keep, index_bits)
        positions = decode_positions(relative)
        symbols = np.where(is_filler, 0, codes[positions])
        wcode = _code(symbols, alphabet, layer.bits, use_huffman)
        icode = _code(relative, 1 << index_bits, index_bits, use_huffman)
        wbytes, wbits = huffman.encode(symbols, wcode)
        ibytes, ibits = huffman.encode(relative, icode)
        blobs = [table.tobytes(), wcode.to_bytes(), icode.to_bytes(), wbytes, ibytes]
        kind, entries, fillers, kept = (
            "sparse",
            int(symbols.size),
            int(is_filler.sum()),
            int(keep.sum()),
        )
    else:
        wcode = _code(codes, alphabet, layer.bits, use_huffman)
        wbytes, wbits = huffman.encode(codes, wcode)
        ibits, index_bits = 0, 0
        blobs = [table.tobytes(), wcode.to_bytes(), wbytes]
        kind, entries, fillers, kept = "shared", int(codes.size), 0, int(codes.size)
    meta = {
        "name": name,
        "kind": kind,
        "shape": list(layer.codes.shape),
        "bits": layer.bits,
        "index_bits": index_bits,
        "entries": entries,
        "weight_stream_bits": wbits,
        "index_stream_bits": ibits,
    }
    storage = LayerStorage(
        name=name,
        numel=int(codes.size),
        kept=kept,
        entries=entries,
        fillers=fillers,
        bits=layer.bits,
        index_bits=index_bits,
        weight_stream_bits=wbits,
        index_stream_bits=ibits,
        table_bytes=len(blobs[0]),
        code_table_bytes=sum(len(b) for b in blobs[1 : 3 if kind == "sparse" else 2]),
    )
    return meta, blobs, storage


def _pack_tensor_header(meta: dict[str, Any], blobs: list[bytes]) -> bytes:
    name = meta["name"].encode()
    out = (
        struct.pack("<H", len(name))
        + name
        + struct.pack("<BB", KINDS[meta["kind"]], len(meta["shape"]))
    )
    out += struct.pack(f"<{len(meta['shape'])}I", *meta["shape"])
    if meta["kind"] == "dense":
        out += struct.pack("<B", DTYPES.index(meta["dtype"]))
    elif meta["kind"] == "shared":
        out += struct.pack("<BII", meta["bits"], meta["entries"], meta["weight_stream_bits"])
    else:
        out += struct.pack(
            "<BBIII",
            meta["bits"],
            meta["index_bits"],
            meta["entries"],
            meta["weight_stream_bits"],
            meta["index_stream_bits"],
        )
    return out + struct.pack(f"<B{len(blobs)}I", len(blobs), *[len(b) for b in blobs])


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.pos = data, offset

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise CodecError("file truncated inside the header")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CodecError("file truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _unpack_tensor_header(r: _Reader) -> tuple[dict[str, Any], list[int]]:
    (name_len,) = r.take("<H")
    name = r.raw(name_len).decode()
    kind_code, ndim = r.take("<BB")
    kinds = {v: k for k, v in KINDS.items()}
    if kind_code not in kinds:
        raise CodecError(f"{name}: unknown tensor kind {kind_code}")
    meta: dict[str, Any] = {
        "name": name,
        "kind": kinds[kind_code],
        "shape": list(r.take(f"<{ndim}I")),
    }
    if meta["kind"] == "dense":
        (dtype,) = r.take("<B")
        if dtype >= len(DTYPES):
            raise CodecError(f"{name}: unknown dtype code {dtype}")
        meta["dtype"] = DTYPES[dtype]
    elif meta["kind"] == "shared":
        meta["bits"], meta["entries"], meta["weight_stream_bits"] = r.take("<BII")
        meta["index_bits"], meta["index_stream_bits"] = 0, 0
    else:
        keys = ("bits", "index_bits", "entries", "weight_stream_bits", "index_stream_bits")
        meta.update(zip(keys, r.take("<BBIII"), strict=True))
    (n_blobs,) = r.take("<B")
    return meta, list(r.take(f"<{n_blobs}I"))


def write_compressed(
    model: nn.Module,
    path: str | Path,
    *,
    shared: Mapping[str, SharedLayer],
    index_bits: int | Mapping[str, int],
    arch: dict[str, Any],
    meta: dict[str, Any] | None = None,
    use_huffman: bool = True,
) -> CodecReport:
    """Write ``model`` to ``path``; layers in ``shared`` (by module fqn) are compressed.

    Args:
        model: the model with plain weights (after :func:`~common.compress.quantize.bake_`).
        path: output file.
        shared: from :func:`~common.compress.quantize.shared_state`, taken before baking.
        index_bits: relative-index width, for all layers or per layer fqn.
        arch: how to rebuild the model (``{"name": ..., "kwargs": ...}`` for the registry).
        meta: free JSON metadata stored in the header.
        use_huffman: Huffman-code the streams (else fixed-width codes).
    """
    headers: list[bytes] = []
    blobs: list[bytes] = []
    storages: list[LayerStorage] = []
    dense_bytes = 0
    state = model.state_dict()
    # Sorted by name: the bytes must not depend on how the state_dict came to be ordered.
    for key, value in sorted(state.items()):
        fqn, _, pname = key.rpartition(".")
        if pname == "weight" and fqn in shared:
            bits = index_bits if isinstance(index_bits, int) else index_bits[fqn]
            t_meta, t_blobs, storage = _encode_layer(key, shared[fqn], bits, use_huffman)
            decoded = shared[fqn].table[shared[fqn].codes].to(value.dtype)
            if not torch.equal(decoded, value.detach().cpu()):
                raise CodecError(
                    f"{key}: the model's weights differ from table[codes]; bake the model first"
                )
            storages.append(storage)
        else:
            arr = value.detach().cpu().contiguous().numpy()
            if str(arr.dtype) not in DTYPES:
                raise CodecError(f"{key}: dtype {arr.dtype} cannot be stored")
            t_blobs = [arr.astype(arr.dtype.newbyteorder("<")).tobytes()]
            t_meta = {
                "name": key,
                "kind": "dense",
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
            }
            dense_bytes += len(t_blobs[0])
        headers.append(_pack_tensor_header(t_meta, t_blobs))
        blobs.extend(t_blobs)
    info = json.dumps(
        {"arch": arch, "meta": meta or {}}, separators=(",", ":"), sort_keys=True
    ).encode()
    header = (
        MAGIC
        + struct.pack("<BH", VERSION, len(info))
        + info
        + struct.pack("<H", len(headers))
        + b"".join(headers)
    )
    payload = header + b"".join(blobs)
    payload += struct.pack("<I", zlib.crc32(payload))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return CodecReport(
        file_bytes=len(payload), header_bytes=len(header), dense_bytes=dense_bytes, layers=storages
    )


def read_header(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], list[int]]], int]:
    """Parse the header: ``(info, [(tensor meta, blob lengths)], offset of the first blob)``."""
    if len(data) < 11 or data[:4] != MAGIC:
        raise CodecError(f"not a compressed model (magic {data[:4]!r})")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]):
        raise CodecError("checksum mismatch: the file is corrupt or truncated")
    r = _Reader(data, 4)
    version, info_len = r.take("<BH")
    if version != VERSION:
        raise CodecError(f"format version {version} is not supported (this reader: {VERSION})")
    try:
        info = json.loads(r.raw(info_len))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CodecError(f"corrupt header: {exc}") from None
    (count,) = r.take("<H")
    tensors = [_unpack_tensor_header(r) for _ in range(count)]
    return info, tensors, r.pos


def decode_state(
    data: bytes, *, shared: dict[str, SharedLayer] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Decode every tensor of a compressed file: ``(state_dict, header info)``.

    If ``shared`` is a dict, it is filled with the codes and table of every compressed layer
    (keyed by module fqn), which is what :func:`write_compressed` needs to write the file again.
    """
    info, tensors, offset = read_header(data)
    r = _Reader(data[:-4], offset)  # the CRC trailer was checked by read_header
    state: dict[str, torch.Tensor] = {}
    for t, lengths in tensors:
        parts = [r.raw(n) for n in lengths]
        shape = tuple(t["shape"])
        numel = int(np.prod(shape))
        if t["kind"] == "dense":
            dtype = np.dtype(t["dtype"])
            if len(parts[0]) != numel * dtype.itemsize:
                raise CodecError(
                    f"{t['name']}: {len(parts[0])} bytes for {numel} values of {dtype}"
                )
            arr = np.frombuffer(parts[0], dtype=dtype.newbyteorder("<")).reshape(shape)
            state[t["name"]] = torch.from_numpy(arr.astype(dtype).copy())
            continue
        table = np.frombuffer(parts[0], dtype="<f4")
        try:
            wcode = huffman.HuffmanCode.from_bytes(parts[1], 1 << t["bits"])
            if t["kind"] == "sparse":
                icode = huffman.HuffmanCode.from_bytes(parts[2], 1 << t["index_bits"])
                symbols = huffman.decode(parts[3], t["weight_stream_bits"], t["entries"], wcode)
                relative = huffman.decode(parts[4], t["index_stream_bits"], t["entries"], icode)
                positions = decode_positions(relative)
                if positions.size and positions[-1] >= numel:
                    raise CodecError(f"{t['name']}: sparse positions run past the tensor")
                codes = np.zeros(numel, dtype=np.int64)
                codes[positions] = symbols
            else:
                codes = huffman.decode(parts[2], t["weight_stream_bits"], t["entries"], wcode)
        except (ValueError, IndexError) as exc:
            raise CodecError(f"{t['name']}: corrupt stream ({exc})") from None
        if codes.size != numel or (codes.size and codes.max() >= table.size):
            raise CodecError(
                f"{t['name']}: codes do not fit the tensor or its {table.size}-entry table"
            )
        state[t["name"]] = torch.from_numpy(table[codes].astype(np.float32).reshape(shape))
        if shared is not None:
            shared[t["name"].rpartition(".")[0]] = SharedLayer(
                table=torch.from_numpy(table.astype(np.float32)),
                codes=torch.from_numpy(codes.reshape(shape)),
                zero_code=t["kind"] == "sparse",
                bits=t["bits"],
            )
    if r.pos != len(data) - 4:
        raise CodecError(f"{len(data) - 4 - r.pos} unexpected trailing bytes")
    return state, info


def read_compressed(
    path: str | Path, *, build: Callable[[dict[str, Any]], nn.Module] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in ``path`` (architecture through the model registry by default)."""
    state, header = decode_state(Path(path).read_bytes())
    if build is None:
        from common.models import create_model

        def build(arch: dict[str, Any]) -> nn.Module:
            return create_model(arch["name"], **arch.get("kwargs", {}))

    model = build(header["arch"])
    model.load_state_dict(state, strict=True)
    return model.eval(), header
