"""ADD: TF-Lite's int8 elementwise addition, and its C code.

Both inputs are rescaled to a common ``2^20``-scaled domain (:func:`_add_params`: TF-Lite's
multipliers and shifts per input and for the output), summed and rescaled. Reference kernel:
TF-Lite Micro's ``AddElementwise`` (``ref_add``). Specialized code (``te_add``): the output
written into a dying operand (``inplace``; this module's in-place rule, planned by
:func:`~common.mcu.memory.plan_tinyengine`), a 32-bit path replacing the 64-bit rescaling where
the shifts allow it, and with ``add_table`` each input's rescaled value looked up in a
256-entry table (it is a function of the int8 value). Inside the patch stage the operands' tiles
may carry a halo, so the tiles are added row by row.

TF-Lite broadcasting (``BroadcastAdd4DSlow`` / ``6DSlow`` in TF-Lite Micro: the same per-element
arithmetic): the operands' shapes are aligned on the right, each dimension equal to the output's
or 1 (broadcast). The numpy reference broadcasts; the C emitters (:func:`_loops`) decompose the
output into outer loops over the broadcast dimensions, with each operand's stride (0 where it
broadcasts), around one contiguous ``te_add`` / ``ref_add`` of the largest inner block both
operands hold in full (``[1, H, W, C] + [1, 1, 1, C]``: one add of C values per pixel, the small
operand's pointer fixed). A constant operand (an int8 tensor with data) is an array in flash
(``static const``, like weights), never in the arena. Only an activation operand of the
output's full size may be overwritten in place; an ADD with a broadcast or constant operand runs
on whole tensors, outside the patch stage (:func:`_tile_check`: a split search stops before it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.emit import ReferenceOp, SpecializedOp, _fast_requant
from common.mcu.graph import Graph, Op
from common.mcu.ops.base import OpSpec, TFLiteMapping, activation_options, same_region
from common.mcu.quant import activation_range, multiply_by_quantized_multiplier, quantize_multiplier

LEFT_SHIFT = 20  # TF-Lite's left shift of both inputs into the common domain


def _add_params(
    g: Graph, op: Op
) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int]]:
    """TF-Lite's ADD parameters: ((offset, multiplier, shift) per input, output (mult, shift))."""
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    twice_max = 2 * max(a.s, b.s)
    m1, s1 = quantize_multiplier(a.s / twice_max)
    m2, s2 = quantize_multiplier(b.s / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * out.s))
    return (-a.zp, m1, s1), (-b.zp, m2, s2), (mo, so)


def _add_table(off: int, mult: int, shift: int) -> np.ndarray:
    """te_add_scale((x + off) * 2^21, mult, -shift) for x = -128 .. 127 (the fast ADD path)."""
    e = -shift
    out = []
    for x in range(-128, 128):
        x2 = (x + off) * (1 << 21)
        h = (x2 * mult + (1 << 31)) >> 32  # SMMULR
        out.append(h if e == 0 else (h + (1 << (e - 1)) + (x2 >> 31)) >> e)
    return np.asarray(out, dtype=np.int64)


# ------------------------------------------------------------------ reference semantics
def add(g: Graph, op: Op, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """TF-Lite's quantized ADD: both inputs rescaled to a common 2^20-scaled domain, summed, rescaled."""
    a, b, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    twice_max = 2 * max(a.s, b.s)
    m1, s1 = quantize_multiplier(a.s / twice_max)
    m2, s2 = quantize_multiplier(b.s / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * out.s))
    v1 = multiply_by_quantized_multiplier((x1.astype(np.int64) - a.zp) * (1 << LEFT_SHIFT), m1, s1)
    v2 = multiply_by_quantized_multiplier((x2.astype(np.int64) - b.zp) * (1 << LEFT_SHIFT), m2, s2)
    y = multiply_by_quantized_multiplier(v1 + v2, mo, so) + out.zp
    lo, hi = activation_range(op.options.get("activation", "none"), out.s, out.zp)
    return np.clip(y, lo, hi).astype(np.int8)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    # ``args`` holds the non-constant inputs only: a constant operand's value is its data
    rest = iter(args)
    x1, x2 = (g.tensors[t].data if g.tensors[t].is_constant else next(rest) for t in op.inputs[:2])
    return add(g, op, x1, x2)


# ------------------------------------------------------------------ broadcasting
def _loops(g: Graph, op: Op) -> tuple[list[tuple[int, int, int, int]], int]:
    """The output as outer loops around one contiguous add of ``n`` elements: ``(loops, n)``,
    each loop ``(count, first operand's stride, second's, output's)`` in elements, outermost
    first, a stride 0 where that operand broadcasts. No loops: both operands have the output's
    size (one add of every element)."""
    out = tuple(g.tensors[op.outputs[0]].shape)
    shapes = [tuple(g.tensors[t].shape) for t in op.inputs[:2]]
    shapes = [(1,) * (len(out) - len(s)) + s for s in shapes]  # aligned on the right
    dims: list[list[int]] = []  # [count, stride a, stride b], innermost first
    strides = [1, 1]
    for k in reversed(range(len(out))):
        step = [0 if s[k] == 1 else st for s, st in zip(shapes, strides, strict=True)]
        strides = [st * s[k] for s, st in zip(shapes, strides, strict=True)]
        if out[k] == 1:
            continue
        # merge into the inner dimension where each operand stays contiguous or broadcast
        if dims and all(
            x == y == 0 or (y != 0 and x == y * dims[-1][0])
            for x, y in zip(step, dims[-1][1:], strict=True)
        ):
            dims[-1][0] *= out[k]
            continue
        dims.append([out[k], *step])
    if not dims:  # a single element
        return [], 1
    n = dims[0][0] if dims[0][1] == dims[0][2] == 1 else 1
    loops, o_stride = [], n
    for count, sa, sb in dims[1:] if n > 1 else dims:  # innermost first
        loops.append((count, sa, sb, o_stride))
        o_stride *= count
    return loops[::-1], n


def _offsets(loops: list[tuple[int, int, int, int]]) -> tuple[str, str, str]:
    """The two operands' and the output's offsets inside the loops, as C terms to append to
    their pointers (``" + i0 * 4"``; empty where the pointer stays fixed)."""
    exprs = []
    for k in (1, 2, 3):
        terms = [
            f"i{d}" if lp[k] == 1 else f"i{d} * {lp[k]}" for d, lp in enumerate(loops) if lp[k]
        ]
        exprs.append("".join(f" + {t}" for t in terms))
    return exprs[0], exprs[1], exprs[2]


def _looped(loops: list[tuple[int, int, int, int]], call: str) -> list[str]:
    """``call`` (with ``{a}``, ``{b}``, ``{o}`` for the offsets) inside the loops."""
    lines = []
    for d, lp in enumerate(loops):
        lines.append(f"{'    ' * (d + 1)}for (int32_t i{d} = 0; i{d} < {lp[0]}; ++i{d}) {{")
    a, b, o = _offsets(loops)
    lines.append("    " * (len(loops) + 1) + call.format(a=a, b=b, o=o))
    lines += [f"{'    ' * (d + 1)}}}" for d in reversed(range(len(loops)))]
    return lines


def _operand(em: Any, label: str, g: Graph, t: str, k: int, ptr: Any) -> str:
    """The C pointer of operand ``t``: a constant is a ``static const`` array in flash."""
    tensor = g.tensors[t]
    if tensor.is_constant:
        return em.array(f"{label}_in{k}", "int8_t", tensor.data)
    return ptr(t)


def _tile_check(g: Graph, op: Op) -> str | None:
    """Why this ADD cannot run inside the patch stage (None: it can)."""
    out = g.tensors[op.outputs[0]]
    for t in op.inputs[:2]:
        if g.tensors[t].is_constant:
            return "adds a constant operand"
        if g.tensors[t].shape != out.shape:
            return "broadcasts an operand"
    return None


# ------------------------------------------------------------------ C code
def _emit_reference(c: ReferenceOp) -> None:
    op, label, out = c.op, c.label, c.out
    (a_off, am, ash), (b_off, bm, bsh), (om, osh) = _add_params(c.g, op)
    c.em.consts.append(
        f"static const ref_add_params {label}_params = {{{LEFT_SHIFT}, {a_off}, {am}, {ash}, "
        f"{b_off}, {bm}, {bsh}, {out.zp}, {om}, {osh}, {c.lo}, {c.hi}}};"
    )
    a, b = (_operand(c.em, label, c.g, t, k, c.ptr) for k, t in enumerate(op.inputs[:2]))
    loops, n = _loops(c.g, op)
    if not loops:
        c.body(f"    ref_add(&{label}_params, {n}, {a}, {b}, {c.ptr(op.outputs[0])});")
        return
    call = f"ref_add(&{label}_params, {n}, {a}{{a}}, {b}{{b}}, {c.ptr(op.outputs[0])}{{o}});"
    for line in _looped(loops, call):
        c.body(line)


def _emit_specialized(c: SpecializedOp) -> None:
    op, options, em, out, label, p = c.op, c.options, c.em, c.out, c.label, c.p
    (a_off, am, ash), (b_off, bm, bsh), (om, osh) = _add_params(c.g, op)
    lo, hi = c.act_range()
    c.runs_inplace()
    # 32-bit path: input shifts <= 0, |2 * (x + off) << 20| < 2^29 so |va + vb| < 2^29
    fast = None
    if ash <= 0 and bsh <= 0 and am > 0 and bm > 0:
        fast = _fast_requant(np.array([om]), np.array([osh]), out.zp, np.array([1 << 29]))
    rq = c.rq_arg(fast)
    tabs = "(const int32_t *)0, (const int32_t *)0"
    if fast is not None and options.add_table:
        # each input's rescaled value is a function of its int8 value: two tables
        em.array(f"{label}_ta", "int32_t", _add_table(a_off, am, ash))
        em.array(f"{label}_tb", "int32_t", _add_table(b_off, bm, bsh))
        tabs = f"{label}_ta + 128, {label}_tb + 128"
    params = (
        f"{a_off}, {am}, {ash}, {b_off}, {bm}, {bsh}, {om}, {osh}, {rq}, {tabs}, "
        f"{out.zp}, {lo}, {hi}"
    )
    if not c.in_stage:
        a, b = (_operand(em, label, c.g, t, k, p) for k, t in enumerate(op.inputs[:2]))
        loops, n = _loops(c.g, op)
        if not loops:
            c.body.append(f"    te_add({a}, {b}, {p(op.outputs[0])}, {n}, {params});")
            return
        call = f"te_add({a}{{a}}, {b}{{b}}, {p(op.outputs[0])}{{o}}, {n}, {params});"
        c.body.extend(_looped(loops, call))
        return
    # the operands' tiles may be larger (halo): add row by row
    ps = c.m.patch
    ch = out.shape[3]
    ro = ps.of(op.outputs[0])
    ow_ = ps.col([r[3] - r[2] for r in ro])
    rows = [f"(y) * {ow_} * {ch}"]
    for t in op.inputs[:2]:
        ri = ps.of(t)
        dy = ps.col([a[0] - b[0] for a, b in zip(ro, ri, strict=True)])
        dx = ps.col([a[2] - b[2] for a, b in zip(ro, ri, strict=True)])
        wi = ps.col([b[3] - b[2] for b in ri])
        rows.append(f"((y + {dy}) * {wi} + {dx}) * {ch}")
    oh_ = ps.col([r[1] - r[0] for r in ro])
    c.body.extend(
        [
            f"    for (int32_t y = 0; y < {oh_}; ++y) {{",
            f"        te_add({p(op.inputs[0])} + {rows[1]}, {p(op.inputs[1])} + "
            f"{rows[2]}, {p(op.outputs[0])} + {rows[0]}, {ow_} * {ch}, {params});",
            "    }",
        ]
    )


# ------------------------------------------------------------------ memory, TF-Lite
def _inplace(g: Graph, op: Op, i: int, last_use: dict[str, int]) -> tuple[str | None, int]:
    """In place into the first operand that dies here, is an activation (not a constant, not
    the graph input) and has the output's size (a broadcast operand is smaller: each of its
    values is read for many outputs)."""
    out = op.outputs[0]
    for x in op.inputs:
        if (
            last_use.get(x) == i
            and x not in g.inputs
            and not g.tensors[x].is_constant
            and g.tensors[x].nbytes == g.tensors[out].nbytes
        ):
            return x, 0
    return None, 0


_write, _read = activation_options("AddOptionsT", "AddOptions")


SPEC = OpSpec(
    kind="add",
    reference=_reference,
    tflite=TFLiteMapping("ADD", _write, _read),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    inplace=_inplace,
    needed_region=same_region,
    tiles=True,
    tile_check=_tile_check,
    tiled_kernel=True,
    tile_halo=True,
)
