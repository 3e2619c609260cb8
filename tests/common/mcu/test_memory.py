"""Memory planners against peak-memory values computed by hand (and TF-Lite Micro's own arena).

The small network below is worked through in the comments; every number in the asserts was
computed on paper from the tensor sizes and lifetimes, not read back from the planner.
"""

from __future__ import annotations

import pytest

from common.mcu import tflm
from common.mcu.fixtures import GraphBuilder
from common.mcu.graph import Graph
from common.mcu.memory import MemoryPlan, live_peak, patch_plan, plan_tflm, plan_tinyengine
from common.mcu.tflite_io import export_tflite


def _placed(plan: MemoryPlan) -> dict[str, tuple[int, int]]:
    """Each buffer's (offset, size) by tensor name."""
    return {b.tensor: (b.offset, b.size) for b in plan.buffers}


def _block() -> Graph:
    """input 8x8x4 (256 B) -> 1x1 conv 8 (A, 512 B) -> dw 3x3 (B, 512 B) -> 1x1 conv 4 (C, 256 B)
    -> add with the input (D, 256 B) -> reshape (R, 256 B) -> fc 10 (F, 10 B)."""
    b = GraphBuilder((1, 8, 8, 4), seed=0)
    b.conv(8, 1)
    b.conv(8, 3, depthwise=True)
    b.conv(4, 1, activation="none")
    b.add("input")
    b.reshape((1, 256))
    b.fc(10)
    return b.build()


def test_tflm_plan_by_hand() -> None:
    # Lifetimes (op index): input [-1, 3], A [0, 1], B [1, 2], C [2, 3], D [3, 4], R [4, 5], F [5, 6].
    # Largest first, equal sizes the later tensor of the file first (TF-Lite Micro's order):
    # B -> 0; A overlaps B at op 1 -> 512; R -> 0; D overlaps R at op 4 -> 256; C overlaps B
    # and D -> 512; input overlaps A, B, C and D -> 1024; F (16-byte aligned) overlaps R -> 256.
    plan = plan_tflm(_block())
    offsets = {b.tensor: b.offset for b in plan.buffers}
    assert offsets == {
        "input": 1024,
        "conv_1/out": 512,
        "dw_2/out": 0,
        "conv_3/out": 512,
        "add_4/out": 256,
        "reshape_5/out": 0,
        "fc_6/out": 256,
    }
    assert plan.peak_bytes == 1280  # input + A + B alive at the depthwise convolution
    assert live_peak(_block()) == (1280, 1)


def test_tflm_plan_equals_the_interpreter_arena() -> None:
    """The real interpreter's activation ("head") bytes equal our TF-Lite Micro plan."""
    g = _block()
    assert tflm.arena_report(export_tflite(g))["head"] == plan_tflm(g).arena_bytes


def test_tinyengine_plan_by_hand() -> None:
    # In place: B overwrites A channel by channel (scratch: one 8x8 channel, 64 B); D overwrites C
    # (C dies at the add); R is a view of D. Buffers: input [-1, 3], A/B [0, 2], C/D/R [2, 5], F [5, 6].
    # A -> 0; input -> 512; C overlaps A (op 2) and input -> 768; F -> 0. Arena 1024 + 64 scratch.
    plan = plan_tinyengine(_block())
    assert plan.aliases == {
        "dw_2/out": "conv_1/out",
        "add_4/out": "conv_3/out",
        "reshape_5/out": "add_4/out",
    }
    assert plan.scratch_bytes == 64
    assert plan.arena_bytes == 1024
    assert plan.peak_bytes == 1088
    assert plan.offset("reshape_5/out") == plan.offset("conv_3/out") == 768
    assert plan.offset("dw_2/out") == plan.offset("conv_1/out") == 0


def _two_convs() -> Graph:
    """input 8x8x2 (128 B) -> conv 3x3 s1 -> 8x8x4 (A, 256 B) -> conv 3x3 s2 -> 4x4x4 (O, 64 B)
    -> reshape -> fc 10."""
    b = GraphBuilder((1, 8, 8, 2), seed=1)
    b.conv(4, 3)
    b.conv(4, 3, stride=2)
    b.reshape((1, 64))
    b.fc(10)
    return b.build()


def test_per_layer_plan_by_hand() -> None:
    # A -> 0; input (alive with A at op 0) -> 256; O [1, 3] (input dead) -> 256; F -> 0: 384 B.
    assert plan_tinyengine(_two_convs()).peak_bytes == 384


def test_patch_stage_by_hand() -> None:
    """The two convolutions run on a 2x2 grid of output tiles (each tile 2x2 of O)."""
    # Tile (0, 0): O rows/cols [0, 2) need A [0, 5) (stride 2, SAME pads 0 before and 1 after);
    # A [0, 5) needs input [0, 6) (pad 1 before). At op 0: input 6*6*2 = 72 + A 5*5*4 = 100, plus
    # the assembled stage output O (64 B) that stays in SRAM: 236 B, the peak. Tile (1, 1): A [4, 8)
    # needs input [3, 8): 50 + 64 + 64 = 178. Tiles (0, 1), (1, 0): 60 + 80 + 64 = 204.
    plan = patch_plan(_two_convs(), n_ops=2, patches=2)
    assert plan.patch_stage_peak == 236
    assert plan.rest_peak == 64 + 12  # O and the fc output (4-byte aligned)
    assert plan.peak_bytes == 236
    # MACs: per layer 8*8*4*18 + 4*4*4*36 + 64*10 = 4608 + 2304 + 640 = 7552. Per patch, conv 0
    # runs on 25 + 20 + 20 + 16 pixels of A: 81*4*18 = 5832; conv 1 is not recomputed: 2304.
    assert plan.base_macs == 7552
    assert plan.macs == 5832 + 2304 + 640
    assert plan.mac_overhead == pytest.approx(8776 / 7552 - 1)


def test_patch_split_must_not_leak_tensors() -> None:
    b = GraphBuilder((1, 8, 8, 4), seed=2)
    b.conv(4, 3)
    b.add("input")  # the input is read after a one-op patch stage
    g = b.build()
    with pytest.raises(ValueError, match="read after"):
        patch_plan(g, n_ops=1, patches=2)


def test_generated_patch_arena_by_hand() -> None:
    """The arena the C generator lays out for the same 2x2 patch stage (input frame included)."""
    from common.mcu.codegen import CodegenOptions, _patch_memory
    from common.mcu.graph import fuse_pad

    # Times: stage ops 0, 1; reshape 2 (a view of O), fc 3. Buffers (size, lifetime):
    # input frame 128 [-1, 1]; A tile 5*5*4 = 100 [0, 1]; input tile 6*6*2 = 72 [-1, 0];
    # O 64 [-1, 3]; O tile 2*2*4 = 16 [1, 1]; F 10 -> 12 [3, 4]. Largest first: input 0..128,
    # A tile 128..228, input tile 228..300, O 300..364, O tile into the input tile's hole (dead
    # at op 1) 228..244, F at 0 (only O is alive with it). Arena 364 = the op-0 sum.
    g = fuse_pad(_two_convs())
    plan = _patch_memory(g, CodegenOptions(patch_ops=2, patches=2))
    assert _placed(plan) == {
        "input@tile": (228, 72),
        "conv_1/out@tile": (128, 100),
        "conv_2/out@tile": (228, 16),
        "input": (0, 128),
        "conv_2/out": (300, 64),
        "fc_4/out": (0, 10),
    }
    assert plan.arena_bytes == 364


def _conv_pool() -> Graph:
    """input 10x10x1 (100 B) -> conv 3x3 VALID 4 (A, 8x8x4 = 256 B) -> max pool 2x2 / 2
    (P, 4x4x4 = 64 B) -> reshape -> fc 10 (F, 10 B): LeNet's conv + pool in miniature."""
    b = GraphBuilder((1, 10, 10, 1), seed=3)
    b.conv(4, 3, padding="valid")
    b.pool("max_pool2d", 2, 2)
    b.reshape((1, 64))
    b.fc(10)
    return b.build()


def test_fused_pool_plans_by_hand() -> None:
    """A max pool folded into its convolution (fuse_pool): the 8x8x4 map never exists."""
    from common.mcu.codegen import CodegenOptions, _patch_memory
    from common.mcu.graph import fuse_pool

    g = _conv_pool()
    # Unfused: op 0 holds input 100 + A 256 = 356, op 1 A 256 + P 64 = 320: 356 B.
    assert plan_tinyengine(g).peak_bytes == 356
    fused = fuse_pool(g)
    assert [op.kind for op in fused.ops] == ["conv2d", "reshape", "fully_connected"]
    assert fused.ops[0].options["pool"] == (2, 2)
    # Fused: op 0 holds input 100 + P 64 = 164; the FC P 64 + F 12 (4-byte aligned) = 76.
    assert plan_tinyengine(fused).peak_bytes == 164
    # The MACs are the convolution's, pool or not: 8 * 8 * 4 * 9.
    assert fused.macs() - 64 * 10 == g.macs() - 64 * 10 == 2304
    # Patches over the fused op (2x2 grid, P tiles of 2x2): its window is 4 rows (3 + one more
    # stride of the pool) at stride 2, so a tile reads input rows [0, 6) (or [4, 10)): 36 B.
    # Stage peak: input tile 36 + P tile 2*2*4 = 16 + the assembled P 64 = 116. The tiles do
    # not overlap in P's convolution pixels: no MAC is recomputed.
    plan = patch_plan(fused, n_ops=1, patches=2)
    assert plan.patch_stage_peak == 116
    assert plan.rest_peak == 76
    assert plan.macs == plan.base_macs
    # The generated arena with the input streamed: P 64 at 0 (largest first), the input tile
    # 64..100, the P tile beside it 100..116, F over nothing but P: 64..76. 116 B.
    arena = _patch_memory(fused, CodegenOptions(patch_ops=1, patches=2, stream_input=True))
    assert _placed(arena) == {
        "input@tile": (64, 36),
        "max_pool2d_2/out@tile": (100, 16),
        "max_pool2d_2/out": (0, 64),
        "fc_4/out": (64, 10),
    }
    assert arena.arena_bytes == 116


@pytest.mark.parametrize(
    ("pool", "why"),
    [
        (("max_pool2d", 2, 2, "same"), "SAME padding"),
        (("max_pool2d", 3, 2, "valid"), "overlapping windows"),
        (("avg_pool2d", 2, 2, "valid"), "an average"),
    ],
)
def test_fuse_pool_leaves_other_pools(pool: tuple[str, int, int, str], why: str) -> None:
    from common.mcu.graph import fuse_pool

    b = GraphBuilder((1, 10, 10, 1), seed=3)
    b.conv(4, 3, padding="valid")
    b.pool(*pool)
    g = b.build()
    assert [op.kind for op in fuse_pool(g).ops] == ["conv2d", pool[0]], why


def test_fuse_pool_keeps_a_convolution_read_twice() -> None:
    from common.mcu.graph import fuse_pool

    b = GraphBuilder((1, 8, 8, 4), seed=4)
    a = b.conv(4, 3)
    b.pool("max_pool2d", 2, 2)
    b.last = a
    b.add("input")  # the convolution's full-size output is read again
    g = b.build()
    assert "max_pool2d" in [op.kind for op in fuse_pool(g).ops]
