"""CONV_2D: TF-Lite's int8 convolution, and its C code.

Reference kernel (``kernels="reference"``): TF-Lite Micro's ``ConvPerChannel``
(``ref_conv2d``): the loop order out_y, out_x, out_channel, filter_y, filter_x, in_channel with
the is-point-inside-image test inside the filter loops, the input offset added to every value.

Specialized code (TinyEngine, MCUNet Section 3.2), each behind a
:class:`~common.mcu.emit.CodegenOptions` switch:

* **1x1 convolution without im2col**: a 1x1 stride-1 convolution is a GEMM over the input pixels
  read in place; other convolutions gather two pixels at a time into a small im2col buffer.
  Both compute a 2-pixel x 2-output-channel register block (``te_conv2d``).
* **SIMD** (``simd``): ``SXTB16`` splits four int8 values into two halfword pairs, ``SMLAD`` does
  two MACs per instruction (``arm_simd.h``; bit-identical portable C on the host). Each pixel's K
  values are widened to int16 once and the weights of each output-channel pair stored
  interleaved (:func:`~common.mcu.emit._gemm_weights`), so one ``LDRD`` fetches a group for both
  pixels or both channels: the inner loop is 15 instructions per 16 MACs (written out in inline
  assembly, as GCC splits the loads otherwise).
* **input offset folding** (``fold_offset``): the input zero point's contribution
  ``-zp * sum(w)`` is folded into the bias (im2col pads with the zero point, which then
  contributes exactly zero), removing the per-MAC offset add; without it the offset is added to
  pairs with ``SADD16``.
* **per-channel code** (``per_channel``, ``channel_flash``): for 1x1 convolutions and im2col
  windows such as the stem each output channel's weights are stored pre-widened to int16 (times
  two) in one record with 2 * bias and its requantization constants
  (:func:`_channel_records`); the pixel is widened once and each channel is one or a few LDMs,
  SMLADs and a three-instruction requantization (the factor two of ``te_output_fast`` is in the
  weights). Unrolled over the channels with the shift as a literal SSAT operand (K <= 8: the
  pixel held in registers), or looped with the shift in the record; each layer takes the option
  that saves the most estimated instructions per byte of flash, within ``channel_flash`` extra
  bytes (:func:`_channel_choices`; deploy shrinks it when an image would overflow the target's
  flash).
* **two pixels per pass** (``pixel_pairs``): for convolutions with a gathered window (kernel
  larger than 1x1, K > 8) the unrolled per-channel code widens two output pixels into one
  interleaved buffer, so each LDM of four weight words serves both: LDM + 2 LDM + 8 SMLAD per
  16 MACs (TE_WIDE2_CH, generated into ``te_wide.h``), where the two pixels fit in the scratch
  the model needs anyway.
* **weight-cached 1x1 GEMM** (``gemm_cache``): a block of pixels is widened once, and each
  output-channel pair's weights are widened once per block (LDRD, SXTB16 x4, STM), so the inner
  loop is LDM + 2 LDRD + 8 SMLAD per 16 MACs (``te_conv1x1_wc``).
* **fused max pool** (``fuse_pool``): a non-overlapping VALID max pool after a convolution with
  per-channel code (LeNet-5's 2x2 / 2) becomes part of it (:func:`~common.mcu.graph.fuse_pool`,
  accepted by :func:`fuses_pool`): each pooled pixel is the byte-wise maximum (``SSUB8`` +
  ``SEL``) of its window's convolution pixels, computed one after the other, so the full-size map
  is never stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.mcu.asm import _wide2_instructions, _wide_instructions
from common.mcu.emit import (
    CodegenOptions,
    ReferenceOp,
    SpecializedModel,
    SpecializedOp,
    _acc_bound,
    _align,
    _fast_requant,
    _gemm_scratch,
    _gemm_scratch_ptrs,
    _gemm_weights,
    _padded_k,
    _requant,
)
from common.mcu.graph import Graph, Op, Tensor
from common.mcu.ops.base import (
    OpSpec,
    Region,
    TFLiteMapping,
    finish,
    patches,
    read_window_options,
    strided_window,
    window_region,
    write_window_options,
)
from common.mcu.quant import activation_range, requant_params

MAX_CHANNEL_KP = 2040  # per-channel code: the pixel's words within LDR's reach


def _pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int32 words holding the int16 ``lo`` in the low and ``hi`` in the high halfword."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word)


def _conv_gemm_setup(
    g: Graph, op: Op, options: CodegenOptions
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None]:
    """``(weight rows, bias, input offset, KP, fast requantization rows)`` of a convolution,
    the input offset folded into the bias when ``fold_offset``."""
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    off = -inp.zp
    wdata = w.data.reshape(w.shape[0], -1)
    bias = b.data.astype(np.int64)
    if options.fold_offset:
        bias = bias + off * wdata.astype(np.int64).sum(axis=1)
        off = 0
    mult, shift = _requant(g, op, out.shape[-1])
    wabs = np.abs(wdata.astype(np.int64)).sum(axis=1)
    rq = _fast_requant(mult, shift, out.zp, _acc_bound(bias, wabs, off))
    return wdata, bias, off, _padded_k(wdata.shape[1], options), rq


def _channel_costs(
    kp: int, cout: int, cached: bool = False, pairs: bool = False
) -> dict[str, tuple[float, int]]:
    """Estimated (instructions per output, flash bytes) of a convolution layer per kernel
    (``cached``: the GEMM is te_conv1x1_wc, 11 instructions per 16 MACs instead of 15;
    ``pairs``: the unrolled code runs two pixels at once, TE_WIDE2_CH)."""
    unrolled = kp // 2 + 5 if kp <= 8 else _wide_instructions(kp)
    code = unrolled
    if pairs:
        code = _wide2_instructions(kp)
        unrolled = code / 2
    return {
        "gemm": ((11 if cached else 15) / 16 * kp + 12, cout * (kp + 24)),
        "unrolled": (unrolled, cout * ((kp // 2 + 3) * 4 + 4 * code)),
        "looped": (_wide_instructions(kp) + 3, cout * (kp // 2 + 4) * 4 + 256),
    }


def _pair_layers(
    g: Graph,
    options: CodegenOptions,
    pair_scratch: int | None,
    room: dict[int, int] | None = None,
) -> set[int]:
    """The convolutions (op indices) whose unrolled per-channel code runs two pixels at once:
    gathered windows (kernel larger than 1x1) with more than eight values, whose two widened
    pixels and window fit in ``pair_scratch`` (None: any scratch) and, when ``pair_scratch`` is
    given, in the ``room`` free during the layer (so the pairs never grow the arena)."""
    if not (options.pixel_pairs and options.per_channel and options.simd):
        return set()
    layers = set()
    for i, op in enumerate(g.ops):
        if op.kind != "conv2d":
            continue
        kh, kw = g.tensors[op.inputs[1]].shape[1:3]
        kp = _padded_k(int(np.prod(g.tensors[op.inputs[1]].shape[1:])), options)
        ph, pw = op.options.get("pool", (1, 1))
        # a fused pool pairs the pixels of its window's rows, and keeps both pixels' outputs
        tmp = _align(2 * g.tensors[op.outputs[0]].shape[-1], 4) if ph * pw > 1 else 0
        if (
            kh * kw > 1
            and kp > 8
            and (pw % 2 == 0 or ph * pw == 1)
            and (
                pair_scratch is None
                or (
                    (need := _align(kp + 4, 8) + 4 * kp + tmp) <= pair_scratch
                    and (room is None or need <= room.get(i, 0))
                )
            )
        ):
            layers.add(i)
    return layers


def _channel_choices(
    g: Graph, options: CodegenOptions, pairs: set[int] | None = None
) -> dict[int, str]:
    """Per convolution (op index): ``"unrolled"`` / ``"looped"`` per-channel code or ``"gemm"``
    (``pairs``: the layers whose unrolled code would run two pixels at once).

    Maximises the estimated instructions saved over the GEMM within ``options.channel_flash``
    extra bytes: each layer takes the option with the best ``saved - lam * extra bytes``, with
    the smallest ``lam`` that keeps the total within the budget (found by bisection).
    """
    layers = []
    for i, op in enumerate(g.ops):
        if op.kind != "conv2d" or not (options.per_channel and options.simd):
            continue
        _, _, _, kp, rq = _conv_gemm_setup(g, op, options)
        if rq is None or kp > MAX_CHANNEL_KP:
            continue
        out = g.tensors[op.outputs[0]]
        ph, pw = op.options.get("pool", (1, 1))
        n_out = int(np.prod(out.shape[1:])) * ph * pw
        costs = _channel_costs(
            kp, out.shape[-1], _wc_candidate(g, op, options, kp), i in (pairs or ())
        )
        base_i, base_b = costs["gemm"]
        opts = {k: (n_out * (base_i - c), b - base_b) for k, (c, b) in costs.items()}
        if "pool" in op.options:  # a fused pool has no GEMM code
            del opts["gemm"]
        layers.append((i, opts))

    def pick(lam: float) -> tuple[dict[int, str], int]:
        chosen, total = {}, 0
        for i, opts in layers:
            key = max(opts, key=lambda k: opts[k][0] - lam * opts[k][1])
            chosen[i] = key
            total += max(opts[key][1], 0)
        return chosen, total

    lo, hi = 0.0, 1e9
    chosen, total = pick(lo)
    if total > options.channel_flash:
        for _ in range(60):
            mid = (lo + hi) / 2
            if pick(mid)[1] <= options.channel_flash:
                hi = mid
            else:
                lo = mid
        chosen, total = pick(hi)
    return chosen


def _wc_candidate(g: Graph, op: Op, options: CodegenOptions, kp: int) -> bool:
    """Whether a convolution's GEMM would be te_conv1x1_wc (1x1, stride 1, unpadded, K a
    multiple of 4 up to 512, at least four pixels)."""
    inp, w, out = (g.tensors[n] for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    one = w.shape[1] == w.shape[2] == 1 and tuple(op.options["stride"]) == (1, 1)
    return (
        one
        and inp.shape[1:3] == out.shape[1:3]
        and kp == inp.shape[3]
        and kp <= 512
        and out.shape[1] * out.shape[2] >= 4
        and options.simd
        and options.specialize
        and options.gemm_cache
    )


def _channel_extra(
    g: Graph, options: CodegenOptions, choices: dict[int, str], pairs: set[int] | None = None
) -> int:
    """Estimated flash bytes the chosen per-channel code adds over the int8 GEMM."""
    total = 0
    for i, kind in choices.items():
        op = g.ops[i]
        kp = _conv_gemm_setup(g, op, options)[3]
        costs = _channel_costs(kp, g.tensors[op.outputs[0]].shape[-1], pairs=i in (pairs or ()))
        total += max(costs[kind][1] - costs["gemm"][1], 0)
    return total


def _channel_records(
    wdata: np.ndarray, kp: int, bias: np.ndarray, rq: np.ndarray, looped: bool = False
) -> np.ndarray:
    """Per output channel the record of the per-channel code: the weights (zero-padded to
    ``kp``) times two as int16 pairs in SXTB16 order, with 2 * bias after the first chunk of
    four words (or all of them, for ``kp`` <= 8) and the multiplier and rounding constant last
    (then the shift, for the looped code)."""
    cout = wdata.shape[0]
    rows = np.pad(wdata.astype(np.int64), ((0, 0), (0, kp - wdata.shape[1])))
    w2 = 2 * rows.reshape(cout, kp // 4, 4)
    pairs = np.stack([_pack16(w2[..., 0], w2[..., 2]), _pack16(w2[..., 1], w2[..., 3])], axis=2)
    words = pairs.reshape(cout, kp // 2)
    first = min(4, kp // 2)
    tail = rq[:, [0, 2, 1]] if looped else rq[:, [0, 2]]
    return np.concatenate(
        [words[:, :first], 2 * bias.reshape(cout, 1), words[:, first:], tail], axis=1
    )


def _channel_code(
    label: str, kp: int, rq: np.ndarray, lo: int, hi: int, pairs: bool = False
) -> list[str]:
    """One line per output channel (its literal shift) of the unrolled per-channel code."""
    macro = f"TE_NARROW_CH{kp}" if kp <= 8 else f"TE_WIDE{'2' if pairs else ''}_CH_{kp}"
    return [
        f"const uint32_t *pw = (const uint32_t *)(const void *){label}_nw;",
        *(f"{macro}({int(e)}, {lo}, {hi});" for e in rq[:, 1]),
    ]


def _looped_code(label: str, kp: int, cout: int, lo: int, hi: int) -> list[str]:
    """The looped per-channel code: one record (shift included) per iteration."""
    return [
        f"const uint32_t *pw = (const uint32_t *)(const void *){label}_nw;",
        f"for (int32_t ch = 0; ch < {cout}; ++ch) {{",
        f"    TE_WIDEL_CH_{kp}({lo}, {hi});",
        "}",
    ]


def _pooled_conv_loop(
    gather: str,
    widen: str,
    code: list[str],
    geo: dict[str, str],
    pool: tuple[int, int],
    kp: int,
    off: int,
    cout: int,
    tmp_off: int,
    two: bool,
) -> list[str]:
    """The per-channel code of a convolution with a fused max pool: for each pooled pixel ``d``
    the ``ph x pw`` convolution pixels of its window (two per pass with ``two``), the first
    written into ``d`` and the others into ``t0`` and merged with te_max_into. ``gather`` reads
    the window of convolution pixel ``({y}, {x})`` (a format string)."""
    ph, pw = pool
    if two:
        inner = [
            gather.format(y="oy", x="ox"),
            f"te_widen_px2(col, px, {kp}, {off});",
            gather.format(y="oy", x="ox + 1"),
            f"te_widen_px2(col, px + 2, {kp}, {off});",
            "int8_t *o = (dy | dx) ? t0 : d;",
            f"int8_t *o2 = t0 + {cout};",
            *code,
            f"if (dy | dx) {{ te_max_into(d, t0, {cout}); }}",
            f"te_max_into(d, t0 + {cout}, {cout});",
        ]
    else:
        inner = [
            gather.format(y="oy", x="ox"),
            widen,
            "int8_t *o = (dy | dx) ? t0 : d;",
            *code,
            f"if (dy | dx) {{ te_max_into(d, t0, {cout}); }}",
        ]
    return [
        f"        int8_t *t0 = arena + {tmp_off};",
        f"        for (int32_t py = 0; py < {geo['oh']}; ++py) {{",
        f"            for (int32_t qx = 0; qx < {geo['ow']}; ++qx, d += {cout}) {{",
        f"                for (int32_t dy = 0; dy < {ph}; ++dy) {{",
        f"                    const int32_t oy = py * {ph} + dy;",
        f"                    for (int32_t dx = 0; dx < {pw}; dx += {2 if two else 1}) {{",
        f"                        const int32_t ox = qx * {pw} + dx;",
        *(" " * 24 + line for line in inner),
        "                    }",
        "                }",
        "            }",
        "        }",
    ]


def fuses_pool(g: Graph, conv: Op, options: CodegenOptions) -> bool:
    """Whether ``conv`` may take a following max pool (:func:`~common.mcu.graph.fuse_pool`):
    only where it can run per-channel code (the pooled loop is per-channel code)."""
    _, _, _, kp, rq = _conv_gemm_setup(g, conv, options)
    return rq is not None and kp <= MAX_CHANNEL_KP


# ------------------------------------------------------------------ reference semantics
def conv2d(g: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """TF-Lite's int8 CONV_2D (per-channel weights) on the input value ``x``."""
    inp, w, b, out = (g.tensors[n] for n in (*op.inputs[:3], op.outputs[0]))
    kh, kw = w.shape[1], w.shape[2]
    xi = x[0].astype(np.int64) - inp.zp  # offsets subtracted: padding is then exactly zero
    win, oh, ow = patches(xi, kh, kw, op.options["stride"], op.options["padding"], 0)
    acc = win.reshape(oh * ow, -1) @ w.data.reshape(w.shape[0], -1).astype(np.int64).T  # (P, O)
    acc = acc + b.data.astype(np.int64)
    mult, shift = requant_params(inp.s, w.scale, out.s)
    return finish(acc, mult, shift, out, op.options["activation"]).reshape(1, oh, ow, -1)


def _reference(g: Graph, op: Op, args: list[np.ndarray]) -> np.ndarray:
    return conv2d(g, op, args[0])


# ------------------------------------------------------------------ C code
def _emit_reference(c: ReferenceOp) -> None:
    g, op, label = c.g, c.op, c.label
    kh, kw = g.tensors[op.inputs[1]].shape[1:3]
    c.window_params(kh, kw)
    args = c.weights()
    c.body(
        f"    ref_conv2d({args}, {c.shape(op.inputs[0])}, {c.ptr(op.inputs[0])}, {kh}, {kw}, "
        f"{label}_w, {label}_b, {c.shape(op.outputs[0])}, {c.ptr(op.outputs[0])});"
    )


def _prepare(m: SpecializedModel) -> tuple[dict[int, str], set[int]]:
    """Per convolution the per-channel code or the GEMM (within the flash budget), and which
    unrolled ones run two pixels per pass; records the flash estimate in ``m.em``."""
    pairs = _pair_layers(m.g, m.options, m.pair_scratch, m.room)
    choices = m.rule(_channel_choices)(m.g, m.options, pairs)
    m.em.channel_bytes = _channel_extra(m.g, m.options, choices, pairs)
    return choices, pairs


def _emit_specialized(c: SpecializedOp) -> None:
    g, op, options, em, out, label = c.g, c.op, c.options, c.em, c.out, c.label
    i, p, body, scratch_off = c.i, c.p, c.body, c.scratch_off
    choices, pairs = c.m.state["conv2d"]
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    lo, hi = c.act_range()
    mult, shift = _requant(g, op, out.shape[-1])  # emitted unless the code needs none (narrow)
    win = c.window(w.shape[1], w.shape[2])
    h, wd, cin, oh, ow, cout = win.h, win.w, win.cin, win.oh, win.ow, win.cout
    kh, kw, sh, sw, pt, pl = win.kh, win.kw, win.sh, win.sw, win.pt, win.pl
    ph, pw = win.ph, win.pw  # a fused max pool (fuse_pool)
    geo, dims = win.geo, win.dims
    wdata, bias, off, kp, rq_rows = _conv_gemm_setup(g, op, options)
    # a tile of a 1x1 stride-1 unpadded convolution has equal input and output extents
    pool = op.options.get("pool")
    direct = (
        kh == kw == 1
        and sh == sw == 1
        and pt == pl == 0
        and (oh, ow) == (h, wd)
        and kp == cin
        and pool is None
    )
    choice = choices.get(i, "gemm")
    if pool is not None:
        assert choice != "gemm", "fuse_pool accepts only convolutions with per-channel code"
        plo, phi = activation_range(op.options["pool_activation"], out.s, out.zp)
        lo, hi = max(lo, plo), min(hi, phi)
    if choice != "gemm":
        assert rq_rows is not None
        looped = choice == "looped"
        em.array(f"{label}_nw", "int32_t", _channel_records(wdata, kp, bias, rq_rows, looped))
        wide = kp > 8 or looped
        two = choice == "unrolled" and i in pairs and not direct
        if looped:
            c.m.looped_kps.append(kp)
        elif two:
            c.m.pair_kps.append(kp)
        elif wide:
            c.m.wide_kps.append(kp)
        col_bytes = 0 if direct else _align(kp + 4, 8)
        px_bytes = (4 if two else 2) * kp if wide else 0
        tmp_off = scratch_off + col_bytes + px_bytes  # fused pool: the pixels' outputs
        tmp_bytes = _align((2 if two else 1) * cout, 4) if pool else 0
        c.need_scratch(col_bytes + px_bytes + tmp_bytes)
        src, dst = p(op.inputs[0]), p(op.outputs[0])
        lines = ["    {", f"        int8_t *{'d' if pool else 'o'} = {dst};"]
        if not direct:
            lines.append(f"        int8_t *col = arena + {scratch_off};")
        if wide:
            lines.append(
                f"        uint32_t *px = (uint32_t *)(void *)(arena + {scratch_off + col_bytes});"
            )
        widen = (
            "te_widen_px({x}, px, {kp}, {off});" if wide else "TE_NARROW_PIXEL({x}, {kp}, {off});"
        )
        code = (
            _looped_code(label, kp, cout, lo, hi)
            if looped
            else _channel_code(label, kp, rq_rows, lo, hi, two)
        )
        cow = geo["ow"] if pool is None else f"{geo['ow']} * {pw}"  # convolution OW

        gather_at = (  # the window of convolution pixel ({y}, {x})
            f"te_gather({src}, col, {{y}}, {{x}}, {dims}, {cin}, {cow}, {kh}, {kw}, "
            f"{sh}, {sw}, {geo['pt']}, {geo['pl']}, {inp.zp}, {kp});"
        )
        gather = gather_at.format(y="oy", x="ox")
        step = f"if (++ox == {geo['ow']}) {{ ox = 0; ++oy; }}"
        npx = f"{geo['oh']} * {geo['ow']}"
        if pool is not None:
            lines += _pooled_conv_loop(
                gather_at,
                widen.format(x="col", kp=kp, off=off),
                code,
                geo,
                (ph, pw),
                kp,
                off,
                cout,
                tmp_off,
                two,
            )
        elif two:  # pixels p and p + 1 (p again at an odd end: the same bytes twice)
            lines += [
                "        int32_t oy = 0, ox = 0;",
                f"        for (int32_t p = 0; p < {npx}; p += 2) {{",
                f"            {gather}",
                f"            te_widen_px2(col, px, {kp}, {off});",
                "            int8_t *o2 = o;",
                f"            if (p + 1 < {npx}) {{",
                f"                {step}",
                f"                {gather}",
                f"                o2 = o + {cout};",
                "            }",
                f"            te_widen_px2(col, px + 2, {kp}, {off});",
                f"            {step}",
                *(" " * 12 + line for line in code),
                "            o = o2;",
                "        }",
            ]
        elif direct:
            lines += [
                f"        const int8_t *x = {src};",
                f"        for (int32_t p = 0; p < {npx}; ++p, x += {cin}) {{",
                "            " + widen.format(x="x", kp=kp, off=off),
                *(" " * 12 + line for line in code),
                "        }",
            ]
        else:
            lines += [
                f"        for (int32_t oy = 0; oy < {geo['oh']}; ++oy) {{",
                f"            for (int32_t ox = 0; ox < {geo['ow']}; ++ox) {{",
                f"                {gather}",
                "                " + widen.format(x="col", kp=kp, off=off),
                *(" " * 16 + line for line in code),
                "            }",
                "        }",
            ]
        body += [*lines, "    }"]
        return
    em.array(f"{label}_mult", "int32_t", mult)
    em.array(f"{label}_shift", "int32_t", shift)
    em.array(f"{label}_w", "int8_t", _gemm_weights(wdata, kp, options))
    em.array(f"{label}_b", "int32_t", bias)
    rq = c.rq_arg(rq_rows)
    # pixels per block of the weight-cached 1x1 GEMM within the model's scratch
    pb = 0
    wc_scratch = c.wc_scratch
    if direct and wc_scratch and options.gemm_cache and _wc_candidate(g, op, options, kp):
        pb = min(oh * ow, max(wc_scratch - 4 * kp, 0) // (2 * kp)) // 2 * 2
    if pb >= 4:
        c.need_scratch(2 * kp * pb + 4 * kp)
        xs = f"(uint32_t *)(void *)(arena + {scratch_off})"
        ws = f"(uint32_t *)(void *)(arena + {scratch_off + 2 * kp * pb})"
        body.append(
            f"    te_conv1x1_wc({p(op.inputs[0])}, {p(op.outputs[0])}, {xs}, {ws}, "
            f"{geo['oh']} * {geo['ow']}, {cout}, {kp}, {pb}, {label}_w, {label}_b, "
            f"{label}_mult, {label}_shift, {rq}, {off}, {out.zp}, {lo}, {hi});"
        )
    else:
        c.need_scratch(_gemm_scratch(kp, options, im2col=not direct))
        col, col16 = _gemm_scratch_ptrs(kp, scratch_off, options, im2col=not direct)
        body.append(
            f"    te_conv2d({p(op.inputs[0])}, {p(op.outputs[0])}, {col}, {col16}, {dims}, "
            f"{cin}, {geo['oh']}, {geo['ow']}, {cout}, {kh}, {kw}, {sh}, {sw}, "
            f"{geo['pt']}, {geo['pl']}, {kp}, {label}_w, {label}_b, {label}_mult, "
            f"{label}_shift, {rq}, {off}, {inp.zp}, {out.zp}, {lo}, {hi});"
        )


# ------------------------------------------------------------------ memory, MACs, TF-Lite
def _needed_region(g: Graph, op: Op, out: Region) -> Region:
    w = g.tensors[op.inputs[1]]
    return window_region(g, op, out, strided_window(g, op, w.shape[1], w.shape[2]))


def _macs(g: Graph, op: Op, region: Region | None) -> int:
    """MACs of the output region (a fused max pool computes ``ph x pw`` pixels per output)."""
    w = g.tensors[op.inputs[1]]
    ph, pw = op.options.get("pool", (1, 1))
    if region is None:
        out = g.tensors[op.outputs[0]]
        return int(np.prod(out.shape)) * ph * pw * int(np.prod(w.shape[1:]))
    h0, h1, w0, w1 = region
    cout = g.tensors[op.outputs[0]].shape[3]
    return (h1 - h0) * (w1 - w0) * ph * pw * cout * int(np.prod(w.shape[1:]))


def _write(fb: Any, op: Op, g: Graph) -> tuple[int, Any]:
    opt = write_window_options(fb, fb.Conv2DOptionsT(), op)
    opt.dilationHFactor = opt.dilationWFactor = 1
    return fb.BuiltinOptions.Conv2DOptions, opt


def _read(fb: Any, o: Any, inputs: list[Tensor], i: int) -> dict[str, Any]:
    return read_window_options(fb, o, "conv2d", i)


SPEC = OpSpec(
    kind="conv2d",
    reference=_reference,
    tflite=TFLiteMapping("CONV_2D", _write, _read),
    emit_reference=_emit_reference,
    emit_specialized=_emit_specialized,
    prepare=_prepare,
    needed_region=_needed_region,
    tiles=True,
    tiled_kernel=True,
    macs=_macs,
)
