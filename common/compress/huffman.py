"""Canonical Huffman coding of small-alphabet symbol streams (Deep Compression, Section 4).

The quantized weight codes and the relative sparse indices are both far from uniform, and
Huffman coding them saves 20-30% of the storage. :func:`build_code` makes an optimal prefix code
from the symbol counts and puts it in *canonical* form, so storing the code length of each symbol
is enough to rebuild it. Encoding is vectorised with numpy; decoding uses a lookup table over the
next ``max_length`` bits.

A stream with a single distinct symbol gets a zero-length code (the symbol and the count suffice),
so the mean code length ``L`` always satisfies ``H <= L < H + 1`` for the empirical entropy ``H``.
A code is stored as its code lengths, 4 bits per symbol of the alphabet (see
:meth:`HuffmanCode.to_bytes`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

SINGLE = 255  # code-length byte marking the only symbol of a one-symbol stream (0 bits each)


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical prefix code: ``lengths[s]`` bits for symbol ``s`` (0 = symbol unused).

    ``single`` is the symbol of a one-symbol stream, which needs no bits at all.
    """

    lengths: np.ndarray  # (alphabet,) uint8
    codes: np.ndarray  # (alphabet,) uint64, the code bits right-aligned
    single: int | None = None

    @property
    def max_length(self) -> int:
        return int(self.lengths.max()) if self.lengths.size else 0

    def to_bytes(self) -> bytes:
        """The code as stored in a file: its code lengths, one per symbol of the alphabet.

        Layout: a format byte, then either 4-bit lengths packed two per byte (format 0, when every
        length is at most 14; 15 marks the only symbol of a one-symbol stream) or one byte per
        length (format 1; 255 marks that symbol).
        """
        lengths = self.lengths.astype(np.uint8).copy()
        if int(lengths.max(initial=0)) <= 14:
            if self.single is not None:
                lengths[self.single] = 15
            if lengths.size % 2:
                lengths = np.append(lengths, 0)
            return bytes([0]) + ((lengths[0::2] << 4) | lengths[1::2]).astype(np.uint8).tobytes()
        if self.single is not None:
            lengths[self.single] = SINGLE
        return bytes([1]) + lengths.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, alphabet: int) -> HuffmanCode:
        """Inverse of :meth:`to_bytes`."""
        fmt, body = data[0], np.frombuffer(data[1:], dtype=np.uint8)
        if fmt == 0:
            lengths = np.empty(body.size * 2, dtype=np.uint8)
            lengths[0::2], lengths[1::2] = body >> 4, body & 0x0F
            lengths, marker = lengths[:alphabet].copy(), 15
        elif fmt == 1:
            lengths, marker = body[:alphabet].copy(), SINGLE
        else:
            raise ValueError(f"unknown code-table format {fmt}")
        if lengths.size != alphabet:
            raise ValueError(
                f"code table holds {lengths.size} lengths, the alphabet has {alphabet}"
            )
        single = np.flatnonzero(lengths == marker)
        if single.size:
            lengths[single] = 0
            return cls(
                lengths=lengths, codes=np.zeros(alphabet, dtype=np.uint64), single=int(single[0])
            )
        return canonical(lengths)


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Optimal (Huffman) code lengths for ``counts``; unused symbols get 0."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.size, dtype=np.uint8)
    used = np.flatnonzero(counts)
    if used.size <= 1:
        return lengths  # zero or one symbol: nothing to distinguish
    heap = [(int(counts[s]), int(s), [int(s)]) for s in used]  # (weight, tie-break, members)
    heapq.heapify(heap)
    depth = np.zeros(counts.size, dtype=np.int64)
    while len(heap) > 1:
        w1, t1, m1 = heapq.heappop(heap)
        w2, t2, m2 = heapq.heappop(heap)
        for s in m1 + m2:
            depth[s] += 1
        heapq.heappush(heap, (w1 + w2, min(t1, t2), m1 + m2))
    if depth.max() > 255:
        raise ValueError("code length above 255 bits")
    return depth.astype(np.uint8)


def canonical(lengths: np.ndarray) -> HuffmanCode:
    """The canonical code for the given lengths (shorter codes first, then by symbol)."""
    lengths = np.asarray(lengths, dtype=np.uint8)
    codes = np.zeros(lengths.size, dtype=np.uint64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        prev = int(lengths[s])
        codes[s] = code
        code += 1
    return HuffmanCode(lengths=lengths, codes=codes)


def build_code(symbols: np.ndarray, alphabet: int) -> HuffmanCode:
    """The optimal canonical code for a stream of symbols in ``range(alphabet)``."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64), minlength=alphabet)
    if counts.size > alphabet:
        raise ValueError(f"symbol {counts.size - 1} is outside the alphabet of {alphabet}")
    used = np.flatnonzero(counts)
    if used.size == 1:
        lengths = np.zeros(alphabet, dtype=np.uint8)
        return HuffmanCode(
            lengths=lengths, codes=np.zeros(alphabet, dtype=np.uint64), single=int(used[0])
        )
    return canonical(code_lengths(counts))


def encode(symbols: np.ndarray, code: HuffmanCode) -> tuple[bytes, int]:
    """Encode ``symbols``; returns ``(bytes, number of meaningful bits)`` (MSB first)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size == 0:
        return b"", 0
    if code.single is not None:
        if np.any(symbols != code.single):
            raise ValueError("a one-symbol code cannot encode other symbols")
        return b"", 0
    lens = code.lengths[symbols].astype(np.int64)
    if np.any(lens == 0):
        raise ValueError("a symbol without a code word appears in the stream")
    total = int(lens.sum())
    vals = code.codes[symbols]
    # Bit j (from the MSB) of every code word, laid end to end.
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    offset_in_word = np.arange(total) - starts
    shift = np.repeat(lens, lens) - 1 - offset_in_word
    bits = ((np.repeat(vals, lens) >> shift.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes(), total


def decode(data: bytes, n_bits: int, count: int, code: HuffmanCode) -> np.ndarray:
    """Decode ``count`` symbols from the first ``n_bits`` of ``data``."""
    out = np.empty(count, dtype=np.int64)
    used = np.flatnonzero(code.lengths)
    if count == 0:
        return out
    if code.single is not None:  # a one-symbol stream carries no bits
        if n_bits:
            raise ValueError("a one-symbol stream must have no bits")
        out[:] = code.single
        return out
    if used.size == 0:
        raise ValueError("empty code for a non-empty stream")
    max_len = code.max_length
    # Table over the next max_len bits: (symbol, length) of the code word they start with.
    table_sym = np.full(1 << max_len, -1, dtype=np.int64)
    table_len = np.zeros(1 << max_len, dtype=np.int64)
    for s in used:
        length = int(code.lengths[s])
        first = int(code.codes[s]) << (max_len - length)
        table_sym[first : first + (1 << (max_len - length))] = s
        table_len[first : first + (1 << (max_len - length))] = length
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n_bits]
    padded = np.concatenate([bits, np.zeros(max_len, dtype=np.uint8)])
    # Integer value of the max_len-bit window starting at every bit position (one pass per bit).
    windows = np.zeros(n_bits + 1, dtype=np.int64)
    for j in range(max_len):
        windows = (windows << 1) | padded[j : j + n_bits + 1]
    sym_at, len_at = table_sym[windows].tolist(), table_len[windows].tolist()
    del windows
    pos = 0
    for i in range(count):
        s = sym_at[pos]
        if s < 0 or pos >= n_bits:
            raise ValueError(f"corrupt Huffman stream at bit {pos}")
        out[i] = s
        pos += len_at[pos]
    if pos != n_bits:
        raise ValueError(f"Huffman stream has {n_bits - pos} bits left over after {count} symbols")
    return out


def entropy(symbols: np.ndarray) -> float:
    """Empirical entropy in bits per symbol."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64))
    p = counts[counts > 0] / max(counts.sum(), 1)
    return float(-(p * np.log2(p)).sum()) if p.size > 1 else 0.0


def mean_length(symbols: np.ndarray, code: HuffmanCode) -> float:
    symbols = np.asarray(symbols, dtype=np.int64)
    if code.single is not None:
        return 0.0
    return float(code.lengths[symbols].astype(np.float64).mean()) if symbols.size else 0.0


def kraft_sum(code: HuffmanCode) -> float:
    """``sum 2^-length`` over used symbols: 1 for a complete prefix code."""
    return sum(math.ldexp(1.0, -int(n)) for n in code.lengths if n)
