from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from common.compress import (
    KMeansQuantConfig,
    MagnitudePruneConfig,
    bake_,
    kmeans_quantize_,
    prune_,
    read_compressed,
    shared_state,
    write_compressed,
)
from common.compress.codec import CodecError, decode_state


def _compressed_lenet(tmp_path: Path, *, huffman: bool = True, prune: bool = True):
    torch.manual_seed(0)
    from common.models import create_model

    model = create_model("lenet5")
    masks = None
    if prune:
        masks, _ = prune_(model, MagnitudePruneConfig("density", 0.1, {"conv1": 0.66}))
    report = kmeans_quantize_(model, KMeansQuantConfig(conv_bits=8, fc_bits=5), masks=masks)
    state = shared_state(model, {r.name: r.bits for r in report.layers})
    bake_(model)
    path = tmp_path / "lenet5.dcmp"
    codec = write_compressed(
        model,
        path,
        shared=state,
        index_bits=5,
        arch={"name": "lenet5", "kwargs": {}},
        use_huffman=huffman,
    )
    return model, path, codec


@pytest.mark.parametrize("huffman", [True, False])
@pytest.mark.parametrize("prune", [True, False])
def test_file_round_trips_bit_exactly(tmp_path: Path, huffman: bool, prune: bool) -> None:
    model, path, _ = _compressed_lenet(tmp_path, huffman=huffman, prune=prune)
    restored, header = read_compressed(path)
    original = model.state_dict()
    assert set(original) == set(restored.state_dict())
    for k, v in restored.state_dict().items():
        assert torch.equal(v, original[k]), k
    # Decoding and re-encoding writes the very same bytes.
    shared: dict = {}
    _state, header = decode_state(path.read_bytes(), shared=shared)
    again = tmp_path / "again.dcmp"
    write_compressed(
        restored,
        again,
        shared=shared,
        index_bits=5,
        arch=header["arch"],
        meta=header["meta"],
        use_huffman=huffman,
    )
    assert again.read_bytes() == path.read_bytes()
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(model.eval()(x), read_compressed(path)[0](x))
    assert header["arch"]["name"] == "lenet5"


def test_file_size_is_exactly_streams_plus_tables_plus_header(tmp_path: Path) -> None:
    _, path, codec = _compressed_lenet(tmp_path)
    size = path.stat().st_size
    assert size == codec.file_bytes
    layer_bytes = sum(
        layer.table_bytes
        + layer.code_table_bytes
        + (layer.weight_stream_bits + 7) // 8
        + (layer.index_stream_bits + 7) // 8
        for layer in codec.layers
    )
    assert size == codec.header_bytes + layer_bytes + codec.dense_bytes + 4  # + CRC-32 trailer
    assert codec.dense_bytes == 4 * (20 + 50 + 500 + 10)  # the float32 biases
    # Codebooks are float32 with 2^bits entries; a Huffman table is a format byte plus 4 bits a symbol.
    conv1 = next(x for x in codec.layers if x.name == "conv1.weight")
    assert conv1.table_bytes == 4 * 256 and conv1.code_table_bytes == (1 + 128) + (1 + 16)
    assert codec.header_bytes < 400  # a compact binary header


def test_long_code_lengths_use_the_byte_format() -> None:
    import numpy as np

    from common.compress import huffman

    counts = np.array([2**i for i in range(20)])  # Fibonacci-like skew: codes longer than 14 bits
    symbols = np.repeat(np.arange(20), counts)
    code = huffman.build_code(symbols, 32)
    assert code.max_length > 14 and code.to_bytes()[0] == 1
    again = huffman.HuffmanCode.from_bytes(code.to_bytes(), 32)
    data, n = huffman.encode(symbols, code)
    assert np.array_equal(huffman.decode(data, n, symbols.size, again), symbols)


def test_huffman_beats_fixed_width(tmp_path: Path) -> None:
    _, _, with_h = _compressed_lenet(tmp_path / "h")
    _, _, without = _compressed_lenet(tmp_path / "f", huffman=False)
    assert with_h.file_bytes < without.file_bytes
    for layer in without.layers:
        assert (
            layer.weight_bits_huffman == layer.bits and layer.index_bits_huffman == layer.index_bits
        )


def test_corrupt_files_are_rejected(tmp_path: Path) -> None:
    _, path, _ = _compressed_lenet(tmp_path)
    data = path.read_bytes()
    with pytest.raises(CodecError, match="magic"):
        decode_state(b"XXXX" + data[4:])
    with pytest.raises(CodecError):
        decode_state(data[:-3])
    flipped = bytearray(data)
    flipped[-20] ^= 0x01  # one bit inside the last stream
    with pytest.raises(CodecError, match="checksum"):
        decode_state(bytes(flipped))


@pytest.mark.slow
def test_any_torchvision_model_compresses_end_to_end(tmp_path: Path) -> None:
    """Prune, quantize, Huffman-code, write, read back: on a torchvision model, random data."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    masks, prune_report = prune_(model, MagnitudePruneConfig("density", 0.3))
    assert prune_report.density == pytest.approx(0.3, abs=0.01)
    report = kmeans_quantize_(model, KMeansQuantConfig(conv_bits=6, fc_bits=4), masks=masks)
    state = shared_state(model, {r.name: r.bits for r in report.layers})
    bake_(model)
    expected = model(x)
    path = tmp_path / "mbv3.dcmp"
    codec = write_compressed(model, path, shared=state, index_bits=4, arch={"name": "mbv3"})
    restored, _ = read_compressed(
        path, build=lambda arch: torchvision.models.mobilenet_v3_small(num_classes=10)
    )
    assert torch.equal(restored(x), expected)
    dense = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert codec.file_bytes < dense / 4
