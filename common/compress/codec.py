"""The compressed model file: sparse, weight-shared, Huffman-coded layers on disk.

Deep Compression's reference repository only ships a decoder for one pre-compressed AlexNet;
this module writes and reads such files for any model. Layout (little-endian)::

    b"DCMP" | u8 version | u32 header length | header (UTF-8 JSON) | blobs...

The header names the architecture (rebuilt through the model registry) and lists every
``state_dict`` tensor in order with the byte length of each of its blobs:

* ``sparse``: a pruned, weight-shared tensor: codebook (float32; code 0 is the zero of pruned
  weights and fillers), the code lengths of the weight-code alphabet and of the relative-index
  alphabet (one byte per symbol), then the two bit streams (weight codes, relative indices; see
  :mod:`common.compress.sparse`);
* ``shared``: a weight-shared tensor without pruning: codebook, code lengths, weight-code stream;
* ``dense``: any other tensor (biases, batch-norm statistics), raw bytes in its dtype.

With ``huffman=True`` the streams use optimal canonical Huffman codes; with ``huffman=False`` every
symbol gets the fixed width (``bits`` / ``index_bits``), which is the same canonical code with all
lengths equal, so one decoder reads both. The size of the file is the size we report: it holds
every byte needed to rebuild the model, headers included.
"""

from __future__ import annotations

import json
import struct
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

MAGIC = b"DCMP"
VERSION = 1
_PREFIX = struct.Struct("<4sBI")  # magic, version, header length


class CodecError(ValueError):
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
        "table_len": int(table.size),
        "weight_stream_bits": wbits,
        "index_stream_bits": ibits,
        "blobs": [len(b) for b in blobs],
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
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    storages: list[LayerStorage] = []
    dense_bytes = 0
    # Sorted by name: the bytes must not depend on how the state_dict came to be ordered.
    for key, value in sorted(model.state_dict().items()):
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
            t_blobs = [arr.astype(arr.dtype.newbyteorder("<")).tobytes()]
            t_meta = {
                "name": key,
                "kind": "dense",
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
                "blobs": [len(t_blobs[0])],
            }
            dense_bytes += len(t_blobs[0])
        tensors.append(t_meta)
        blobs.extend(t_blobs)
    header = json.dumps(
        {"arch": arch, "meta": meta or {}, "tensors": tensors},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    payload = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + b"".join(blobs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return CodecReport(
        file_bytes=len(payload),
        header_bytes=_PREFIX.size + len(header),
        dense_bytes=dense_bytes,
        layers=storages,
    )


def read_header(data: bytes) -> tuple[dict[str, Any], int]:
    if len(data) < _PREFIX.size:
        raise CodecError("file too short")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CodecError(f"not a compressed model (magic {magic!r})")
    if version != VERSION:
        raise CodecError(f"format version {version} is not supported (this reader: {VERSION})")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + header_len])
    except json.JSONDecodeError as exc:
        raise CodecError(f"corrupt header: {exc}") from None
    return header, _PREFIX.size + header_len


def decode_state(
    data: bytes, *, shared: dict[str, SharedLayer] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Decode every tensor of a compressed file: ``(state_dict, header)``.

    If ``shared`` is a dict, it is filled with the codes and table of every compressed layer
    (keyed by module fqn), which is what :func:`write_compressed` needs to write the file again.
    """
    header, offset = read_header(data)
    state: dict[str, torch.Tensor] = {}
    for t in header["tensors"]:
        parts = []
        for n in t["blobs"]:
            parts.append(data[offset : offset + n])
            offset += n
        if len(parts[-1]) != t["blobs"][-1]:
            raise CodecError(f"file truncated inside {t['name']}")
        shape = tuple(t["shape"])
        if t["kind"] == "dense":
            arr = np.frombuffer(parts[0], dtype=np.dtype(t["dtype"]).newbyteorder("<")).reshape(
                shape
            )
            state[t["name"]] = torch.from_numpy(arr.astype(np.dtype(t["dtype"])).copy())
            continue
        table = np.frombuffer(parts[0], dtype="<f4")
        wcode = huffman.HuffmanCode.from_bytes(parts[1])
        numel = int(np.prod(shape))
        if t["kind"] == "sparse":
            icode = huffman.HuffmanCode.from_bytes(parts[2])
            symbols = huffman.decode(parts[3], t["weight_stream_bits"], t["entries"], wcode)
            relative = huffman.decode(parts[4], t["index_stream_bits"], t["entries"], icode)
            positions = decode_positions(relative)
            if positions.size and positions[-1] >= numel:
                raise CodecError(f"{t['name']}: sparse positions run past the tensor")
            codes = np.zeros(numel, dtype=np.int64)
            codes[positions] = symbols
        else:
            codes = huffman.decode(parts[2], t["weight_stream_bits"], t["entries"], wcode)
        if codes.size and codes.max() >= table.size:
            raise CodecError(f"{t['name']}: a code points past its {table.size}-entry table")
        state[t["name"]] = torch.from_numpy(table[codes].astype(np.float32).reshape(shape))
        if shared is not None:
            shared[t["name"].rpartition(".")[0]] = SharedLayer(
                table=torch.from_numpy(table.astype(np.float32)),
                codes=torch.from_numpy(codes.reshape(shape)),
                zero_code=t["kind"] == "sparse",
                bits=t["bits"],
            )
    if offset != len(data):
        raise CodecError(f"{len(data) - offset} unexpected trailing bytes")
    return state, header


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
