"""Generated C (reference and TinyEngine-style kernels) is bit-exact with the numpy reference."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from common.mcu import UnsupportedOperatorError, reference
from common.mcu.codegen import (
    CodegenOptions,
    CProject,
    best_patch_split,
    build_arm,
    build_host,
    generate,
    run_host,
    run_host_batch,
)
from common.mcu.fixtures import GraphBuilder, broadcast_graph, random_graph
from common.mcu.graph import Graph

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt: gcc)")

CONFIGS = {
    "reference": CodegenOptions(kernels="reference"),
    "specialized": CodegenOptions(),
    "no_simd": CodegenOptions(simd=False),
    # SIMD with the input offset added to pairs (SADD16) instead of folded into the bias
    "no_inplace": CodegenOptions(inplace=False, fold_offset=False),
    # the int8 2x2 GEMM (one-pixel tail included) and the int8 padded-plane depthwise
    "gemm": CodegenOptions(per_channel=False, dw_rows=False, dw_small=False),
    # the one-pixel per-channel code for gathered windows (and in fused pools)
    "one_pixel": CodegenOptions(pixel_pairs=False),
    "generic": CodegenOptions(
        simd=False, unroll=False, inplace=False, specialize=False, fuse_pad=False, fold_offset=False
    ),
}


def explicit_pad_graph() -> Graph:
    """PAD + VALID conv / depthwise, as the converter emits for PyTorch stride-2 layers."""
    b = GraphBuilder((1, 11, 10, 5), seed=3)
    b.pad(1, 1, 1, 1)
    b.conv(12, 3, stride=2, padding="valid")
    b.pad(0, 1, 0, 1)
    b.conv(0, 3, stride=2, padding="valid", depthwise=True)
    b.pad(2, 1, 0, 2)
    b.conv(6, 2, padding="valid", activation="none")
    return b.build()


def depthwise_graph() -> Graph:
    """Depthwise 3x3/5x5/7x7 with strides 1 and 2, SAME and VALID, in an inverted bottleneck."""
    b = GraphBuilder((1, 15, 14, 6), seed=4)
    b.conv(24, 1)
    b.conv(0, 3, depthwise=True)
    b.conv(0, 5, stride=2, depthwise=True)
    b.conv(0, 7, depthwise=True, activation="relu")
    b.conv(0, 3, stride=2, padding="valid", depthwise=True, activation="none")
    b.conv(0, 7, stride=2, depthwise=True)
    b.conv(7, 1, activation="none")
    return b.build()


def depthwise_simd_graph() -> Graph:
    """3x3 depthwise on the SIMD paths: stride 1 with odd and even widths (two outputs at a time
    plus the odd tail), stride 2 SAME/VALID on odd and even sizes (VALID skips the last column /
    row), single-pixel outputs, odd channel counts and 5x5 on the padded plane."""
    b = GraphBuilder((1, 7, 11, 5), seed=9)
    b.conv(0, 3, depthwise=True)  # OW = 11 (odd tail)
    b.conv(0, 3, stride=2, depthwise=True)  # 7x11 -> 4x6
    b.conv(0, 3, depthwise=True, activation="relu")  # OW = 6 (pairs only)
    b.conv(0, 3, stride=2, padding="valid", depthwise=True)  # 4x6 -> 1x2, drops a column
    b.conv(3, 1)
    b.conv(0, 3, depthwise=True, activation="none")  # 1x2
    b.conv(0, 5, stride=2, depthwise=True)  # 1x2 -> 1x1
    return b.build()


def narrow_graph() -> Graph:
    """The per-channel code: a stem-like 3x3 stride-2 convolution on 3 channels (im2col window
    rows copied a word at a time, zero-point padding at the borders, K = 27 -> 28), 1x1 layers
    with K = 16 (wide, direct), K = 21 (wide through im2col: not a multiple of 4), K = 8 and
    K = 4 (the pixel in registers), ReLU6 clamps and none, odd channel counts; the last two are
    unclamped, so a rounding error in either reaches the output."""
    b = GraphBuilder((1, 9, 11, 3), seed=12)
    b.conv(16, 3, stride=2)  # K = 27
    b.conv(21, 1)  # K = 16
    b.conv(8, 1, activation="none")  # K = 21
    b.conv(4, 1, activation="none")  # K = 8
    b.conv(13, 1, activation="none")  # K = 4
    return b.build()


def global_pool_graph() -> Graph:
    """A global average pool (the SXTAB16 path: channels a multiple of four, <= 255 pixels) and
    1x1 layers over an odd pixel count (the one-pixel GEMM tail)."""
    b = GraphBuilder((1, 5, 5, 6), seed=13)
    b.conv(12, 1)
    b.pool("avg_pool2d", 5, 1)
    b.conv(8, 1, activation="none")
    x = b.g.tensors[b.last]
    b.reshape((1, int(np.prod(x.shape[1:]))))
    b.fc(5)
    return b.build()


def depthwise_k_graph() -> Graph:
    """5x5 and 7x7 depthwise layers with even output widths (te_dwk_ring's asm row loops):
    strides 1 and 2, SAME and VALID, ReLU6 / ReLU clamps and none, odd channel counts and a
    channel stride beyond a post-indexed store's reach."""
    b = GraphBuilder((1, 10, 12, 5), seed=14)
    b.conv(0, 5, depthwise=True)  # 10x12, stride 1
    b.conv(0, 7, stride=2, depthwise=True, activation="relu")  # 5x6
    b.conv(0, 7, depthwise=True, activation="none")  # 5x6
    b.conv(260, 1)
    b.conv(0, 5, depthwise=True)  # 260 channels: stores at an offset, not post-indexed
    b.conv(7, 1)
    b.conv(0, 5, padding="valid", depthwise=True, activation="none")  # 1x2, VALID
    b.conv(0, 5, stride=2, depthwise=True)  # 1x1: odd, the plane kernel
    return b.build()


def depthwise_k_odd_graph() -> Graph:
    """5x5 and 7x7 depthwise layers with odd output widths (te_dwk_ring's extra row step):
    stride 1 from the graph input (not in place) and in place, stride 2, ReLU / none, and 260
    channels (stores at an offset)."""
    b = GraphBuilder((1, 7, 9, 5), seed=15)
    b.conv(0, 5, depthwise=True)  # 7x9, stride 1, reads the graph input
    b.conv(0, 7, stride=2, depthwise=True, activation="relu")  # 4x5
    b.conv(0, 7, depthwise=True, activation="none")  # 4x5, stride 1, in place
    b.conv(260, 1)
    b.conv(0, 5, depthwise=True)  # 4x5, 260 channels
    b.conv(0, 5, stride=2, depthwise=True)  # 2x3
    b.conv(6, 1, activation="none")
    return b.build()


def depthwise_small_graph() -> Graph:
    """Depthwise layers on tiny output planes (te_dw_small): 3x3, 5x5, 7x7, stride 1 and 2,
    from the graph input (not in place) and in place, ReLU6 / ReLU / none, odd channel counts
    and 261 channels (strided loads beyond an 8-bit offset)."""
    b = GraphBuilder((1, 9, 9, 7), seed=21)
    b.conv(0, 7, stride=2, depthwise=True)  # 5x5, reads the graph input
    b.conv(0, 5, depthwise=True, activation="relu")  # 5x5, in place
    b.conv(261, 1)
    b.conv(0, 7, depthwise=True, activation="none")  # 5x5, 261 channels
    b.conv(0, 3, stride=2, depthwise=True)  # 3x3
    b.conv(9, 1)
    b.conv(0, 3, depthwise=True, activation="relu")  # 3x3, stride 1
    b.conv(0, 5, stride=2, depthwise=True)  # 2x2
    b.conv(6, 1, activation="none")
    return b.build()


def depthwise_ring_graph() -> Graph:
    """3x3 stride-1 depthwise layers on even planes (te_dw3_ring's requantizing asm row pairs):
    from the graph input and in place, ReLU6 / ReLU / none, odd channel counts and 261
    channels (output offsets past 8 bits)."""
    b = GraphBuilder((1, 8, 8, 7), seed=23)
    b.conv(0, 3, depthwise=True)  # reads the graph input
    b.conv(261, 1)
    b.conv(0, 3, depthwise=True, activation="relu")  # in place, 261 channels
    b.conv(0, 3, depthwise=True, activation="none")
    b.conv(9, 1, activation="none")
    b.conv(0, 3, depthwise=True)
    return b.build()


def residual_graph() -> Graph:
    """MobileNetV2 blocks with residual adds (one with a fused ReLU), odd channel counts."""
    b = GraphBuilder((1, 9, 9, 7), seed=5)
    skip = b.conv(7, 3, activation="relu")
    b.conv(21, 1)
    b.conv(0, 3, depthwise=True)
    b.conv(7, 1, activation="none")
    skip = b.add(skip)
    b.conv(15, 1)
    b.conv(0, 5, depthwise=True)
    b.conv(7, 1, activation="none")
    b.add(skip, activation="relu")
    return b.build()


def pool_fc_graph() -> Graph:
    """Max / average pools (SAME, VALID, global), reshape and fully connected layers."""
    b = GraphBuilder((1, 13, 12, 9), seed=6)
    b.conv(10, 3, stride=1)
    b.pool("max_pool2d", 3, 2, padding="same")
    b.pool("avg_pool2d", 3, 1, padding="same")
    b.pool("max_pool2d", 2, 2)
    b.pool("avg_pool2d", 3, 3)
    x = b.g.tensors[b.last]
    b.reshape((1, int(np.prod(x.shape[1:]))))
    b.fc(33, activation="relu")
    b.fc(5)
    return b.build()


def softmax_graph() -> Graph:
    """Softmax over channels of a feature map, then over FC logits (wide and narrow inputs)."""
    b = GraphBuilder((1, 5, 4, 6), seed=8)
    b.conv(12, 3, activation="none")
    b.softmax(beta=1.0)
    b.reshape((1, 5 * 4 * 12))
    b.fc(10)
    b.g.tensors[b.last].scale[:] = 0.4  # wide logits: exps underflow past diff_min
    b.softmax(beta=0.5)
    return b.build()


def pairs_graph() -> Graph:
    """Convolutions with gathered windows run two pixels at a time (TE_WIDE2_CH): a 5x5 on one
    channel (K = 25 -> 28, SAME: zero-point padding at the borders) over 121 pixels, so the last
    pair repeats its pixel, a max pool, a 3x3 VALID on 6 channels (K = 54 -> 56, unclamped, 9
    pixels) and a fully connected layer whose widened input gives the scratch both need."""
    b = GraphBuilder((1, 11, 11, 1), seed=27)
    b.conv(6, 5)
    b.pool("max_pool2d", 2, 2)
    b.conv(10, 3, padding="valid", activation="none")
    x = b.g.tensors[b.last]
    b.reshape((1, int(np.prod(x.shape[1:]))))
    b.fc(5)
    return b.build()


def lenet_graph() -> Graph:
    """LeNet-5 in miniature: a 5x5 VALID convolution on one channel (K = 25 -> 28) and a 3x3
    one on 6 channels (K = 54 -> 56, ReLU), each followed by a 2x2 / 2 max pool that fuse_pool
    folds into it, then two fully connected layers."""
    b = GraphBuilder((1, 16, 16, 1), seed=31)
    b.conv(6, 5, padding="valid")  # 12x12x6
    b.pool("max_pool2d", 2, 2)  # 6x6x6
    b.conv(10, 3, padding="valid", activation="relu")  # 4x4x10
    b.pool("max_pool2d", 2, 2)  # 2x2x10
    b.reshape((1, 40))
    b.fc(12, activation="relu")
    b.fc(5)
    return b.build()


GRAPHS: dict[str, Callable[[], Graph]] = {
    "random0": lambda: random_graph(0),
    "random1": lambda: random_graph(1, size=15),
    "random2": lambda: random_graph(2),
    "explicit_pad": explicit_pad_graph,
    "depthwise": depthwise_graph,
    "depthwise_simd": depthwise_simd_graph,
    "narrow": narrow_graph,
    "global_pool": global_pool_graph,
    "depthwise_k": depthwise_k_graph,
    "depthwise_k_odd": depthwise_k_odd_graph,
    "depthwise_small": depthwise_small_graph,
    "depthwise_ring": depthwise_ring_graph,
    "residual": residual_graph,
    "pool_fc": pool_fc_graph,
    "softmax": softmax_graph,
    "pairs": pairs_graph,
    "lenet": lenet_graph,
    "broadcast": broadcast_graph,
}


def _inputs(g: Graph, seed: int) -> list[np.ndarray]:
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(3)]
    return [*xs, np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


class Builds:
    """Generates and compiles each (graph, config) once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple[str, str], tuple[CProject, Path]] = {}

    def get(self, name: str, g: Graph, config: str) -> tuple[CProject, Path]:
        key = (name, config)
        if key not in self.cache:
            project = generate(g, self.root / f"{name}_{config}", CONFIGS[config])
            self.cache[key] = (project, build_host(project))
        return self.cache[key]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("codegen"))


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {name: make() for name, make in GRAPHS.items()}


def _check(g: Graph, exe: Path, xs: list[np.ndarray]) -> None:
    for x in xs:
        want = reference.run(g, x)[g.outputs[0]].ravel()
        got = run_host(exe, x)
        assert got.shape == want.shape
        assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {want.size} differ"


def _have_arm() -> bool:
    from common.mcu import toolchain

    return all(toolchain.have(t) for t in toolchain.BUILD_TOOLS)


def _check_m7(
    g: Graph, project_dir: Path, out_dir: Path, xs: list[np.ndarray], name: str = ""
) -> None:
    """Build ``project_dir`` for the emulated Cortex-M7 and compare its outputs on ``xs`` with
    the numpy reference."""
    from common.mcu import cortexm

    build = cortexm.build(project_dir, "mps2-an500", out_dir=out_dir)
    for x in xs:
        want = reference.run(g, x)[g.outputs[0]].ravel()
        got = cortexm.run(build, x).output.reshape(-1)
        diff = f"{np.count_nonzero(got != want)} of {want.size} differ"
        assert np.array_equal(got, want), f"{name}: {diff}" if name else diff


def test_the_batch_harness_runs_every_input_in_order(
    builds: Builds, graphs: dict[str, Graph]
) -> None:
    name = next(iter(GRAPHS))
    g = graphs[name]
    _, exe = builds.get(name, g, next(iter(CONFIGS)))
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(7)
    xs = rng.integers(-128, 128, size=(5, *shape[1:])).astype(np.int8)
    got = run_host_batch(exe, xs)
    assert got.shape[0] == 5
    for x, row in zip(xs, got, strict=True):
        assert np.array_equal(row, run_host(exe, x[None]))
    with pytest.raises(RuntimeError, match="ended inside an input"):
        run_host_batch(exe, xs.reshape(-1)[:-1].reshape(1, -1))


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("name", list(GRAPHS))
def test_host_build_is_bit_exact(
    builds: Builds, graphs: dict[str, Graph], name: str, config: str
) -> None:
    g = graphs[name]
    project, exe = builds.get(name, g, config)
    _check(g, exe, _inputs(g, seed=len(name)))
    assert project.arena_bytes == project.activation_bytes + project.scratch_bytes
    assert project.arena_bytes >= project.plan.arena_bytes
    _check_scratch_placement(project)


def _check_scratch_placement(p: CProject) -> None:
    """Every operator's scratch lies in the arena, 8-byte aligned, overlapping no tensor alive
    during that operator; the arena extends past the activations by exactly what fits no gap."""
    for i, (off, n) in p.scratch_placement.items():
        assert off % 8 == 0 and off >= 0 and off + n <= p.arena_bytes
        for b in p.plan.buffers:
            if b.first <= i <= b.last:
                assert off + n <= b.offset or b.offset + b.size <= off, (i, b.tensor)
    tail = [off + n - p.activation_bytes for off, n in p.scratch_placement.values()]
    assert p.scratch_bytes == -(-max([0, *tail]) // 8) * 8  # rounded up to 8 bytes
    assert [t[0] for t in p.scratch_ops] == sorted(
        (i for i, (off, n) in p.scratch_placement.items() if off + n > p.activation_bytes),
        key=lambda i: (-(sum(p.scratch_placement[i]) - p.activation_bytes), i),
    )


def test_scratch_in_gaps_of_the_arena_saves_sram(builds: Builds, graphs: dict[str, Graph]) -> None:
    """Scratch placed after the activations would cost the largest operator scratch; placed in
    the gaps between the tensors alive during its operator it costs less on most graphs and
    never more."""
    saved = 0
    for name, g in graphs.items():
        project, _ = builds.get(name, g, "specialized")
        largest = -(-max([0, *(n for _, n in project.scratch_placement.values())]) // 8) * 8
        assert project.scratch_bytes <= largest
        saved += project.scratch_bytes < largest
    assert saved >= len(graphs) // 2


def test_inplace_depthwise_and_add_are_used_and_save_memory(
    builds: Builds, graphs: dict[str, Graph]
) -> None:
    on, _ = builds.get("depthwise", graphs["depthwise"], "specialized")
    off, _ = builds.get("depthwise", graphs["depthwise"], "no_inplace")
    assert len(on.inplace_ops) >= 4  # every depthwise after the expansion runs in place
    assert on.plan.aliases and not off.plan.aliases
    assert on.arena_bytes < off.arena_bytes
    res, _ = builds.get("residual", graphs["residual"], "specialized")
    assert any(n.startswith("add") for n in res.inplace_ops) or not res.plan.aliases


def test_fused_pad_removes_pad_ops(builds: Builds, graphs: dict[str, Graph]) -> None:
    fused, _ = builds.get("explicit_pad", graphs["explicit_pad"], "specialized")
    kept, _ = builds.get("explicit_pad", graphs["explicit_pad"], "reference")
    assert [op.kind for op in fused.graph.ops].count("pad") == 0
    assert [op.kind for op in kept.graph.ops].count("pad") == 3
    assert fused.activation_bytes < kept.activation_bytes


def test_project_layout_is_the_runner_contract(builds: Builds, graphs: dict[str, Graph]) -> None:
    for config in ("reference", "specialized"):
        project, _ = builds.get("random0", graphs["random0"], config)
        names = {p.name for p in project.sources + project.headers}
        assert {"model.h", "model.c", "main_host.c", "arm_simd.h"} <= names
        assert (project.out_dir / "Makefile").exists()
        header = (project.out_dir / "model.h").read_text()
        for macro in ("MODEL_INPUT_BYTES", "MODEL_OUTPUT_BYTES", "MODEL_ARENA_BYTES"):
            assert f"#define {macro} " in header
        assert f"#define MODEL_ARENA_BYTES {project.arena_bytes}\n" in header
        model_c = (project.out_dir / "model.c").read_text()
        assert "static const int8_t" in model_c and "aligned(8)" in model_c
        for src in project.mcu_sources + project.headers:
            text = src.read_text()
            includes = {
                line.split()[1] for line in text.splitlines() if line.startswith("#include <")
            }
            assert includes <= {"<stdint.h>", "<stddef.h>", "<arm_acle.h>"}, src.name
            assert "float" not in text and "double" not in text, src.name


def test_fast_requantization_is_used_only_where_exact() -> None:
    from common.mcu.codegen import _fast_requant
    from common.mcu.quant import multiply_by_quantized_multiplier

    mult = np.array([1 << 30, 1518500250, (1 << 31) - 1])
    shift = np.array([-1, -7, -20])
    small = np.full(3, 1000)
    rows = _fast_requant(mult, shift, -5, small)
    assert rows is not None and rows[:, 1].tolist() == [1, 7, 20]
    acc = np.arange(-70000, 70000, 7, dtype=np.int64)
    for (m, e, r), s in zip(rows.tolist(), shift.tolist(), strict=True):  # the C formula in numpy
        h = (2 * acc * m + (1 << 31)) >> 32
        got = (h + (h >> 31) + r) >> e
        assert np.array_equal(got, multiply_by_quantized_multiplier(acc, m, s) - 5)
        # as te_output_fast computes it: SMMLAR adds r, the sign of acc stands in for h's
        t = ((2 * acc * m + (1 << 31)) >> 32) + r
        assert np.array_equal((t + (acc >> 63)) >> e, got)
    assert _fast_requant(mult, np.array([-1, 0, -3]), 0, small) is None  # no right shift
    assert _fast_requant(mult, np.array([-1, 2, -3]), 0, small) is None  # left shift
    assert _fast_requant(mult, shift, 0, np.array([1000, 1 << 30, 5])) is None  # |acc| too big
    assert _fast_requant(mult, np.array([-1, -7, -31]), 127, small) is None  # r overflows


def test_narrow_kernels_are_used(builds: Builds, graphs: dict[str, Graph], tmp_path: Path) -> None:
    """Every per-channel kernel is generated for the narrow graph (the bit-exactness tests above
    then cover them on the host and on the Cortex-M7), and only with SIMD; the stem's gathered
    window runs two pixels per pass, or one with ``pixel_pairs=False`` (checked on the M7 here)."""
    project, _ = builds.get("narrow", graphs["narrow"], "specialized")
    source = (project.out_dir / "model.c").read_text()
    names = ("TE_WIDE2_CH_28", "TE_WIDE_CH_28", "TE_WIDE_CH_16", "TE_WIDE_CH_24")
    counts = {m: source.count(f"{m}(") for m in names}
    assert counts == {
        "TE_WIDE2_CH_28": 16,
        "TE_WIDE_CH_28": 0,
        "TE_WIDE_CH_16": 21,
        "TE_WIDE_CH_24": 8,
    }
    assert source.count("TE_NARROW_CH8(") == 4 and source.count("TE_NARROW_CH4(") == 13
    assert "te_conv2d(" not in source
    one, _ = builds.get("narrow", graphs["narrow"], "one_pixel")
    source = (one.out_dir / "model.c").read_text()
    assert source.count("TE_WIDE_CH_28(") == 16 and "TE_WIDE2_CH_" not in source
    project, _ = builds.get("narrow", graphs["narrow"], "no_simd")
    assert "TE_NARROW" not in (project.out_dir / "model.c").read_text()
    if _have_arm():
        g = graphs["narrow"]
        _check_m7(g, one.out_dir, tmp_path / "m7", _inputs(g, 4)[:3])


@pytest.mark.parametrize("kind", ["looped", "gemm"])
def test_per_channel_variants_are_bit_exact_on_cortex_m7(
    graphs: dict[str, Graph], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every convolution of the narrow graph forced to the looped per-channel code (the shift
    read from the record) or to the int8 GEMM (te_conv1x1_wc for the 1x1 layers, odd pixel and
    channel counts included), on the host and the emulated Cortex-M7."""
    from common.mcu import codegen

    g = graphs["narrow"]
    convs = [i for i, op in enumerate(g.ops) if op.kind == "conv2d"]
    monkeypatch.setattr(codegen, "_channel_choices", lambda *_: dict.fromkeys(convs, kind))
    project = generate(g, tmp_path / "c", CONFIGS["specialized"])
    source = (project.out_dir / "model.c").read_text()
    assert source.count("TE_WIDEL_CH_") == (len(convs) if kind == "looped" else 0)
    gemms = source.count("te_conv2d(") + source.count("te_conv1x1_wc(")
    assert gemms == (len(convs) if kind == "gemm" else 0)
    if kind == "gemm":  # 1x1 layers with their weights widened once per pixel block
        assert source.count("te_conv1x1_wc(") >= 2
    xs = _inputs(g, 4)[:3]
    _check(g, build_host(project), xs)
    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    _check_m7(g, project.out_dir, tmp_path / "m7", xs)


def test_ring_depthwise_with_odd_extents_is_bit_exact_on_cortex_m7(
    graphs: dict[str, Graph], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """te_dw3_ring / te_dwk_ring forced onto every 3x3 / 5x5 / 7x7 layer of the depthwise
    graphs, odd extents included (their portable tails: the last column, the last row of an odd
    stride-1 height), host and M7."""
    from common.mcu import codegen

    monkeypatch.setattr(codegen, "_dw_ring", lambda o, kh, kw, sh, sw, *_: kh == kw == 3)
    monkeypatch.setattr(codegen, "_dwk_ring", lambda o, kh, kw, sh, sw, *_: kh == kw > 3)
    monkeypatch.setattr(codegen, "_dw_small", lambda *_: False)
    for name in ("depthwise_simd", "depthwise", "depthwise_k", "depthwise_k_odd", "residual"):
        g = graphs[name]
        project = generate(g, tmp_path / name, CONFIGS["specialized"])
        source = (project.out_dir / "model.c").read_text()
        assert "te_dw3_ring(" in source or "te_dwk_ring(" in source
        xs = _inputs(g, 5)[:3]
        _check(g, build_host(project), xs)
        if not _have_arm():
            continue
        _check_m7(g, project.out_dir, tmp_path / f"{name}_m7", xs, name)


# (graph, options, kernel, layers that take it, input seed): the M7-only paths of the depthwise
# kernels. te_dwk_ring on odd widths (the extra pair of an odd width, the spare output on the
# next row; te_dw_small off, which would take these small planes); te_dw_small on tiny planes
# (valid taps only: SXTB16 / SMLAD / unaligned word loads); te_dw3_ring's asm row pairs with the
# requantization and the stores inside (stride 1, even extents).
KERNEL_CASES = [
    ("depthwise_k_odd", CodegenOptions(dw_small=False), "te_dwk_ring(", 5, 6),
    ("depthwise_small", CONFIGS["specialized"], "te_dw_small(", 6, 8),
    ("depthwise_ring", CONFIGS["specialized"], "te_dw3_ring(", 4, 9),
]


@pytest.mark.parametrize(
    ("name", "options", "kernel", "count", "seed"), KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES]
)
def test_depthwise_kernel_is_selected_and_bit_exact_on_cortex_m7(
    graphs: dict[str, Graph],
    name: str,
    options: CodegenOptions,
    kernel: str,
    count: int,
    seed: int,
    tmp_path: Path,
) -> None:
    g = graphs[name]
    project = generate(g, tmp_path / "c", options)
    source = (project.out_dir / "model.c").read_text()
    assert source.count(kernel) == count
    assert project.inplace_ops, "the graph should exercise an in-place layer"
    xs = _inputs(g, seed)
    _check(g, build_host(project), xs)
    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    _check_m7(g, project.out_dir, tmp_path / "m7", xs)


def test_two_pixel_code_is_used_bit_exact_and_shorter_on_cortex_m7(
    graphs: dict[str, Graph], tmp_path: Path
) -> None:
    """Both gathered convolutions run two pixels per pass (the odd pixel count included) and
    match the reference on the host and the Cortex-M7, in fewer instructions than one pixel
    per pass; switched off, or patch by patch without room in the scratch the model needs
    anyway, the one-pixel code runs."""
    g = graphs["pairs"]
    on = generate(g, tmp_path / "on", CONFIGS["specialized"])
    off = generate(g, tmp_path / "off", CodegenOptions(pixel_pairs=False))
    source = (on.out_dir / "model.c").read_text()
    assert source.count("TE_WIDE2_CH_28(") == 6 and source.count("TE_WIDE2_CH_56(") == 10
    assert "TE_WIDE_CH_" not in source
    assert "TE_WIDE2_CH_" not in (off.out_dir / "model.c").read_text()
    # patch by patch (the memory build) the pairs take no SRAM of their own: they run only where
    # their scratch fits the room free during the layer; here neither gathered convolution has
    # it (the stem's two pixels, fused with its pool, need 32 + 112 + 12 B, the second's
    # 64 + 224 B), so both run one pixel per pass and the arena is the one-pixel build's
    tiled = generate(g, tmp_path / "tiled", CodegenOptions(patch_ops=1, patches=2))
    tiled_off = generate(
        g, tmp_path / "tiled_off", CodegenOptions(patch_ops=1, patches=2, pixel_pairs=False)
    )
    source = (tiled.out_dir / "model.c").read_text()
    assert "TE_WIDE2_CH_" not in source
    assert source.count("TE_WIDE_CH_28(") == 6 and source.count("TE_WIDE_CH_56(") == 10
    assert tiled.arena_bytes == tiled_off.arena_bytes
    _check(g, build_host(tiled), _inputs(g, 6))
    xs = _inputs(g, 5)
    _check(g, build_host(on), xs)
    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    from common.mcu import cortexm

    _check_m7(g, on.out_dir, tmp_path / "m7_on", xs)
    counts = []
    for project, name in ((on, "m7_on"), (off, "m7_off")):
        build = cortexm.build(project.out_dir, "mps2-an500", out_dir=tmp_path / f"{name}_n")
        counts.append(cortexm.run(build, xs[0]).instructions)
    assert counts[0] < counts[1]


def test_channel_choices_respect_the_flash_budget(graphs: dict[str, Graph]) -> None:
    from common.mcu.codegen import _channel_choices, _channel_extra

    g = graphs["narrow"]
    generous = _channel_choices(g, CodegenOptions())
    assert "gemm" not in generous.values()
    for budget in (0, 2000, 6000):
        options = CodegenOptions(channel_flash=budget)
        assert _channel_extra(g, options, _channel_choices(g, options)) <= budget
    assert set(_channel_choices(g, CodegenOptions(channel_flash=0)).values()) == {"gemm"}


def test_add_tables_are_tflite_rescaling() -> None:
    """Each ADD table entry is TF-Lite's rescaling of that int8 input, MultiplyByQuantized-
    Multiplier((x + off) << 20, m, shift), for shifts <= 0 (the fast path), ties included."""
    from common.mcu.codegen import _add_table
    from common.mcu.quant import multiply_by_quantized_multiplier

    rng = np.random.default_rng(7)
    xs = np.arange(-128, 128, dtype=np.int64)
    for _ in range(300):
        off = int(rng.integers(-127, 129))
        mult = int(rng.integers(1 << 30, 1 << 31))
        if rng.random() < 0.3:  # multipliers that put many values on a rounding tie
            mult = 1 << 30
        shift = -int(rng.integers(0, 12))
        want = multiply_by_quantized_multiplier((xs + off) << 20, mult, shift)
        np.testing.assert_array_equal(_add_table(off, mult, shift), want)


def test_depth_multiplier_is_reported_unsupported(tmp_path: Path) -> None:
    b = GraphBuilder((1, 6, 6, 3), seed=0)
    b.conv(0, 3, depthwise=True)
    g = b.build()
    g.ops[0].options["depth_multiplier"] = 2
    with pytest.raises(UnsupportedOperatorError, match="depth_multiplier"):
        generate(g, tmp_path, CodegenOptions())


def test_every_kernel_cross_compiles_for_cortex_m7(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found (apt: gcc-arm-none-eabi)")
    b = GraphBuilder((1, 12, 12, 4), seed=7)
    b.pad(1, 0, 1, 0)
    b.conv(8, 3, stride=2, padding="valid")
    skip = b.conv(8, 1)
    for k in (3, 5, 7):
        b.conv(0, k, depthwise=True)
    b.conv(8, 1, activation="none")
    b.add(skip)
    b.pool("max_pool2d", 2, 2)
    b.pool("avg_pool2d", 3, 1, padding="same")
    x = b.g.tensors[b.last]
    b.reshape((1, int(np.prod(x.shape[1:]))))
    b.fc(10)
    b.softmax()
    g = b.build()
    variants = {
        "reference": CodegenOptions(kernels="reference"),
        "specialized": CodegenOptions(),
        "generic_simd": CodegenOptions(specialize=False, fuse_pad=False, fold_offset=False),
        "generic_scalar": CodegenOptions(specialize=False, simd=False, unroll=False, inplace=False),
    }
    for name, options in variants.items():
        project = generate(g, tmp_path / name, options)
        objects = build_arm(project)
        nm = shutil.which("arm-none-eabi-nm")
        if nm is not None:  # nothing may be left for libc / libgcc (the target links -nostdlib)
            undefined = set(_nm(nm, objects, "-u"))
            defined = set(_nm(nm, objects, "--defined-only"))
            assert undefined <= defined, f"{name}: unresolved {sorted(undefined - defined)}"
        objdump = shutil.which("arm-none-eabi-objdump")
        if objdump is not None and options.kernels == "specialized" and options.simd:
            asm = subprocess.run(
                [objdump, "-d", str(project.out_dir / "model.o")], capture_output=True, text=True
            ).stdout
            assert "smlad" in asm and "sxtb16" in asm, name


def _nm(nm: str, objects: list[Path], flag: str) -> list[str]:
    out = subprocess.run([nm, flag, *map(str, objects)], capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip() and ":" not in line]


def _converted(kind: str) -> tuple[Graph, list[np.ndarray]]:
    torch = pytest.importorskip("torch")
    from common.mcu.convert import convert, quantize_input

    torch.manual_seed(0)
    if kind == "lenet5":
        from common.models import create_model

        model, shape = create_model("lenet5"), (1, 28, 28)
    else:
        torchvision = pytest.importorskip("torchvision")
        setting = [[1, 8, 1, 1], [6, 8, 2, 2], [6, 16, 2, 2]]
        model = torchvision.models.mobilenet_v2(
            width_mult=0.35, num_classes=10, inverted_residual_setting=setting
        )
        shape = (3, 32, 32)
    model.eval()
    g = convert(model, [torch.randn(16, *shape)])
    xs = [
        quantize_input(g, torch.randn(1, *shape, generator=torch.Generator().manual_seed(s)))
        for s in range(3)
    ]
    return g, xs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lenet5", "mobilenet_v2"])
def test_converted_models_are_bit_exact(builds: Builds, kind: str) -> None:
    g, xs = _converted(kind)
    for config in ("reference", "specialized", "no_inplace"):
        _, exe = builds.get(kind, g, config)
        _check(g, exe, xs)


@pytest.mark.parametrize("config", ["specialized", "no_inplace", "gemm"])
@pytest.mark.parametrize(
    "name",
    [
        "random1",
        "depthwise",
        "depthwise_simd",
        "depthwise_k",
        "narrow",
        "global_pool",
        "residual",
        "pool_fc",
    ],
)
def test_cortex_m7_build_is_bit_exact(
    graphs: dict[str, Graph], name: str, config: str, tmp_path: Path
) -> None:
    """The Cortex-M7 build takes the DSP paths the host cannot (SMLAD / SMMLAR inline assembly,
    the LDRD GEMM group): it must agree with the numpy reference on the emulated core."""

    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    g = graphs[name]
    project = generate(g, tmp_path / "c", CONFIGS[config])
    _check_m7(g, project.out_dir, tmp_path / "m7", _inputs(g, 1)[:3])


# ------------------------------------------------------------------ patch-based inference
# (graph, patch_ops, patches): the residual split holds both adds, whose operand tiles carry a
# halo (added row by row); depthwise covers 3x3/5x5/7x7 at strides 1 and 2 on tiles with and
# without padding; pool_fc has SAME/VALID pools; explicit_pad fuses PADs into the stage.
PATCH_CASES = [
    ("residual", 9, 3),
    ("residual", 5, 2),
    ("depthwise", 6, 2),
    ("depthwise_simd", 6, 2),
    ("pool_fc", 5, 3),
    ("explicit_pad", 3, 2),
    ("random1", 6, 3),
    ("pairs", 2, 3),
    ("lenet", 2, 2),
]


@pytest.mark.parametrize(("name", "n_ops", "patches"), PATCH_CASES)
def test_patch_based_build_is_bit_exact(
    graphs: dict[str, Graph], name: str, n_ops: int, patches: int, tmp_path: Path
) -> None:
    g = graphs[name]
    project = generate(g, tmp_path / "c", CodegenOptions(patch_ops=n_ops, patches=patches))
    source = (project.out_dir / "model.c").read_text()
    assert f"for (int32_t t = 0; t < {patches * patches}; ++t)" in source
    if name == "residual" and n_ops == 9:
        assert source.count("for (int32_t y = 0;") == 2  # both adds inside the tile loop
    _check(g, build_host(project), _inputs(g, seed=n_ops))


def test_patch_split_that_cuts_a_tile_is_refused(graphs: dict[str, Graph], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read after it"):
        generate(graphs["residual"], tmp_path / "c", CodegenOptions(patch_ops=3, patches=2))
    with pytest.raises(ValueError, match="cannot run patch by patch"):
        generate(graphs["pool_fc"], tmp_path / "c", CodegenOptions(patch_ops=7, patches=2))
    with pytest.raises(ValueError, match="fuse_pad"):
        CodegenOptions(patch_ops=2, fuse_pad=False)


def test_broadcast_and_constant_adds_stay_out_of_the_patch_stage(
    graphs: dict[str, Graph], tmp_path: Path
) -> None:
    """An ADD with a broadcast or constant operand runs on whole tensors: a patch stage that
    holds one is refused, and the split search stops before the first (operator 2)."""
    g = graphs["broadcast"]
    with pytest.raises(ValueError, match=r"cannot run patch by patch \(broadcasts an operand\)"):
        generate(g, tmp_path / "c", CodegenOptions(patch_ops=3, patches=2))
    split = best_patch_split(g, (2, 3), max_overhead=1.0)
    assert split is not None and split[0] <= 2
    project = generate(g, tmp_path / "p", CodegenOptions(patch_ops=split[0], patches=split[1]))
    _check(g, build_host(project), _inputs(g, seed=4)[:2])


def test_patch_split_search_skips_a_pad_without_tiled_code(tmp_path: Path) -> None:
    """A PAD that no VALID convolution absorbs has no tiled kernel: the split search (which the
    analytic plan would let tile it) must stop before it, and asking for it is one clear error.
    Found by the fuzz campaign (seed 11: max pool, conv, residual ADD, PAD, max pool)."""
    b = GraphBuilder((1, 12, 12, 3), seed=13)
    b.conv(8, 3)
    b.conv(8, 1)
    b.pad(0, 2, 0, 1)
    b.pool("max_pool2d", 2, 2, padding="same")
    b.conv(4, 1)
    g = b.build()
    split = best_patch_split(g, (2, 3), max_overhead=1.0)
    assert split is not None and split[0] <= 2
    with pytest.raises(ValueError, match="no tiled pad kernel"):
        generate(g, tmp_path / "c", CodegenOptions(patch_ops=4, patches=2))
    project = generate(g, tmp_path / "p", CodegenOptions(patch_ops=split[0], patches=split[1]))
    _check(g, build_host(project), _inputs(g, seed=5)[:2])


def test_constant_operands_are_in_flash_and_never_overwritten(
    builds: Builds, graphs: dict[str, Graph]
) -> None:
    from common.mcu.memory import inplace_aliases

    g = graphs["broadcast"]
    consts = {t for op in g.ops if op.kind == "add" for t in op.inputs if g.tensors[t].is_constant}
    assert len(consts) == 6
    for config in ("reference", "specialized"):
        project, _ = builds.get("broadcast", g, config)
        source = (project.out_dir / "model.c").read_text()
        cg = project.graph
        for i, op in enumerate(cg.ops):  # each constant operand a flash array of its own
            for k, t in enumerate(op.inputs):
                if op.kind == "add" and cg.tensors[t].is_constant:
                    size = cg.tensors[t].nbytes
                    assert f"static const int8_t l{i}_in{k}[{size}] " in source, (config, i, k)
        planned = {b.tensor for b in project.plan.buffers}
        assert not consts & planned  # nothing in the arena
    # in place only into an activation operand of the output's size: never a constant (the
    # whole-shape constant of operator 4 comes first and dies there) nor a broadcast operand
    aliases, _ = inplace_aliases(g)
    assert aliases.get(g.ops[2].outputs[0]) == g.ops[2].inputs[1]  # x, not its global pool
    assert aliases.get(g.ops[4].outputs[0]) == g.ops[4].inputs[1]  # y, not the constant
    for op in g.ops:
        x = aliases.get(op.outputs[0])
        if op.kind == "add" and x is not None:
            assert not g.tensors[x].is_constant
            assert g.tensors[x].shape == g.tensors[op.outputs[0]].shape
    assert g.ops[9].outputs[0] not in aliases  # a row plus a column: larger than both


def test_patch_based_arena_is_smaller_on_a_memory_heavy_stage(tmp_path: Path) -> None:
    """A large early feature map: the tiled stage must cut the generated arena, and the chosen
    split is the one with the smallest arena among those within the MAC budget."""
    b = GraphBuilder((1, 32, 32, 3), seed=11)
    b.conv(16, 3, stride=2)
    b.conv(96, 1)
    b.conv(0, 3, depthwise=True)
    b.conv(16, 1, activation="none")
    b.conv(0, 3, stride=2, depthwise=True)
    b.conv(32, 1)
    b.conv(0, 3, stride=2, depthwise=True)
    b.conv(8, 1)
    g = b.build()
    per_layer = generate(g, tmp_path / "layer")
    split = best_patch_split(g, (2, 3, 4), max_overhead=0.5)
    assert split is not None
    n_ops, patches, overhead = split
    assert overhead <= 0.5
    tiled = generate(g, tmp_path / "patch", CodegenOptions(patch_ops=n_ops, patches=patches))
    assert tiled.activation_bytes < per_layer.activation_bytes / 2
    _check(g, build_host(tiled), _inputs(g, seed=3)[:2])


def test_patch_based_cortex_m7_build_is_bit_exact(graphs: dict[str, Graph], tmp_path: Path) -> None:

    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    g = graphs["residual"]
    project = generate(g, tmp_path / "c", CodegenOptions(patch_ops=9, patches=3))
    _check_m7(g, project.out_dir, tmp_path / "m7", _inputs(g, 2)[:3])


@pytest.mark.parametrize(("name", "n_ops", "patches"), [("residual", 9, 3), ("depthwise", 6, 2)])
def test_streamed_input_patch_build_is_bit_exact_without_the_frame_in_the_arena(
    graphs: dict[str, Graph], name: str, n_ops: int, patches: int, tmp_path: Path
) -> None:
    """``stream_input``: each tile's input window comes from model_read_input (the host
    harness's frame; a semihosting call on the M7), the arena holds no input frame, and the
    outputs are those of the frame-held build, on the host, the M7 and a standalone image."""
    from common.mcu import cortexm

    g = graphs[name]
    held = generate(g, tmp_path / "held", CodegenOptions(patch_ops=n_ops, patches=patches))
    cg = CodegenOptions(patch_ops=n_ops, patches=patches, stream_input=True)
    streamed = generate(g, tmp_path / "streamed", cg)
    x_name = g.inputs[0]
    assert x_name in {b.tensor for b in held.plan.buffers}
    assert x_name not in {b.tensor for b in streamed.plan.buffers}
    assert streamed.activation_bytes < held.activation_bytes
    assert "model_read_input(arena + " in (streamed.out_dir / "model.c").read_text()
    assert "#define MODEL_STREAMS_INPUT 1" in (streamed.out_dir / "model.h").read_text()
    xs = _inputs(g, 8)
    _check(g, build_host(streamed), xs)
    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    build = cortexm.build(streamed.out_dir, "mps2-an500", out_dir=tmp_path / "m7")
    held_build = cortexm.build(held.out_dir, "mps2-an500", out_dir=tmp_path / "m7_held")
    for x in xs[:3]:
        want = reference.run(g, x)[g.outputs[0]].ravel()
        r = cortexm.run(build, x)
        assert np.array_equal(r.output.reshape(-1), want)
        # the copies of the input tiles are the sensor's work now: fewer M7 instructions
        assert 0 < r.instructions < cortexm.run(held_build, x).instructions
    alone = [
        cortexm.build(p.out_dir, "mps2-an500", out_dir=tmp_path / f"alone_{k}", standalone=True)
        for k, p in (("held", held), ("streamed", streamed))
    ]
    assert cortexm.run(alone[1]).stdout == cortexm.run(alone[0]).stdout != ""


def test_streamed_input_needs_patches() -> None:
    with pytest.raises(ValueError, match="stream_input needs"):
        CodegenOptions(stream_input=True)


def test_fused_max_pool_is_bit_exact_smaller_and_shorter_on_cortex_m7(
    graphs: dict[str, Graph], tmp_path: Path
) -> None:
    """fuse_pool: both convolution + max pool pairs of the LeNet-like graph run as one
    operator (no full-size map in the plan), per layer with two pixels per pass, without them,
    and patch by patch with the input streamed; all bit-exact on the host and the Cortex-M7,
    and the fused code takes fewer instructions than convolution then pool."""
    g = graphs["lenet"]
    fused = generate(g, tmp_path / "fused", CodegenOptions())
    unfused = generate(g, tmp_path / "unfused", CodegenOptions(fuse_pool=False))
    one_px = generate(g, tmp_path / "one_px", CodegenOptions(pixel_pairs=False))
    cg = CodegenOptions(patch_ops=2, patches=2, stream_input=True)
    streamed = generate(g, tmp_path / "streamed", cg)
    assert [op.kind for op in fused.graph.ops].count("max_pool2d") == 0
    assert [op.kind for op in unfused.graph.ops].count("max_pool2d") == 2
    # per layer: input 256 + 6x6x6 = 216 at the first operator, 216 + 2x2x10 = 40 at the second
    assert fused.activation_bytes == 472 < unfused.activation_bytes
    source = (fused.out_dir / "model.c").read_text()
    assert "te_max_into(" in source and "TE_WIDE2_CH_56(" in source
    assert "TE_WIDE2_CH_" not in (one_px.out_dir / "model.c").read_text()
    xs = _inputs(g, 9)
    for project in (fused, one_px, streamed):
        _check(g, build_host(project), xs)
    if not _have_arm():
        pytest.skip("needs the Arm toolchain (make toolchain)")
    from common.mcu import cortexm

    counts = {}
    for name, project in (("fused", fused), ("unfused", unfused), ("one_px", one_px)):
        build = cortexm.build(project.out_dir, "mps2-an500", out_dir=tmp_path / f"m7_{name}")
        for x in xs[:3]:
            r = cortexm.run(build, x)
            assert np.array_equal(r.output.reshape(-1), reference.run(g, x)[g.outputs[0]].ravel())
        counts[name] = r.instructions
    assert counts["fused"] < counts["unfused"] and counts["fused"] < counts["one_px"]
    build = cortexm.build(streamed.out_dir, "mps2-an500", out_dir=tmp_path / "m7_streamed")
    for x in xs[:3]:
        got = cortexm.run(build, x).output.reshape(-1)
        assert np.array_equal(got, reference.run(g, x)[g.outputs[0]].ravel())
