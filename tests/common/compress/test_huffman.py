from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.compress import huffman
from common.compress.sparse import decode_positions, encode_positions


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 31), min_size=1, max_size=400))
def test_huffman_round_trip_and_entropy_bound(values: list[int]) -> None:
    x = np.array(values)
    code = huffman.build_code(x, 32)
    data, n_bits = huffman.encode(x, code)
    assert np.array_equal(huffman.decode(data, n_bits, x.size, code), x)
    h, mean = huffman.entropy(x), huffman.mean_length(x, code)
    assert h <= mean + 1e-12 and mean < h + 1
    assert n_bits == int(code.lengths[x].sum()) and len(data) == (n_bits + 7) // 8
    # The stored code (one byte per symbol) rebuilds the same code.
    again = huffman.HuffmanCode.from_bytes(code.to_bytes(), 32)
    assert np.array_equal(huffman.decode(data, n_bits, x.size, again), x)


def test_complete_prefix_code_on_skewed_data() -> None:
    x = np.random.default_rng(0).geometric(0.4, size=20000).clip(max=63) - 1
    code = huffman.build_code(x, 64)
    assert huffman.kraft_sum(code) == pytest.approx(1.0)
    assert huffman.mean_length(x, code) < 0.9 * 6  # well below the 6-bit fixed width


def test_single_symbol_stream_costs_no_bits() -> None:
    x = np.full(1000, 7)
    code = huffman.build_code(x, 16)
    data, n_bits = huffman.encode(x, code)
    assert (data, n_bits) == (b"", 0)
    assert huffman.entropy(x) == 0.0 == huffman.mean_length(x, code)
    restored = huffman.HuffmanCode.from_bytes(code.to_bytes(), 16)
    assert np.array_equal(huffman.decode(data, 0, 1000, restored), x)


def test_fixed_width_code_is_plain_binary() -> None:
    code = huffman.canonical(np.full(8, 3, dtype=np.uint8))
    data, n_bits = huffman.encode(np.array([0, 5, 7]), code)
    assert n_bits == 9 and data == bytes([0b00010111, 0b10000000])


def test_corrupt_stream_is_reported() -> None:
    x = np.array([0, 1, 2, 3, 3, 3])
    code = huffman.build_code(x, 4)
    data, n_bits = huffman.encode(x, code)
    with pytest.raises(ValueError):
        huffman.decode(data, n_bits, x.size + 3, code)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300), st.integers(1, 5))
def test_relative_index_round_trip_with_long_gaps(bits: list[bool], index_bits: int) -> None:
    keep = np.array(bits)
    relative, is_filler = encode_positions(keep, index_bits)
    assert relative.max(initial=0) < 2**index_bits
    positions = decode_positions(relative)
    assert np.array_equal(positions[~is_filler], np.flatnonzero(keep))
    assert not keep[positions[is_filler]].any()  # fillers sit on pruned positions


def test_paper_figure_2_filler_example() -> None:
    # 3-bit indices can skip at most 7 zeros; a gap of 16 zeros needs two fillers.
    keep = np.zeros(40, dtype=bool)
    keep[[0, 3, 20]] = True
    relative, is_filler = encode_positions(keep, 3)
    assert relative.tolist() == [0, 2, 7, 7, 0]
    assert is_filler.tolist() == [False, False, True, True, False]
