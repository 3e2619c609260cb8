"""Inline-assembly macros and generated headers of the specialized (TinyEngine-style) kernels.

Everything here is C text: the per-record-length and per-window macros that the emitters in
:mod:`common.mcu.ops` call and :func:`common.mcu.codegen.generate` writes into the project, each
with the register choices GCC's inline assembly cannot make itself (LDM targets must ascend),
plus the instruction estimates derived from the same code shapes that the per-layer choices
use.

* ``te_dw_unrolled.h``: fully unrolled 3x3 / 5x5 / 7x7 depthwise taps (``unroll``).
* ``te_wide.h``: the per-channel code of every record length the model uses (``per_channel``):
  ``TE_WIDE_CH_<kp>`` (the pixel widened to int16 once, each output channel one or a few LDMs of
  its record, SMLADs and a three-instruction requantization: SMMLAR, the sign, SSAT with the
  shift as a literal operand), ``TE_WIDEL_CH_<kp>`` (looped over the channels: the shift comes
  last in the record) and ``TE_WIDE2_CH_<kp>`` (``pixel_pairs``: two output pixels interleaved,
  so each LDM of four weight words serves both: LDM + 2 LDM + 8 SMLAD per 16 MACs). Each has
  kernels_te.h's portable code where there is no DSP.
* ``te_dwk.h``: the depthwise asm row loops on int16 ring rows (``dw_rows``): LDRD fetches two
  value pairs and SMLAD / SMLATB / SMLABT against (w0, w1) and (w1, w2) pairs compute two outputs
  per window row; 3x3 stride 1 runs two output rows at a time as one asm loop with the
  requantization and the stores (literal extents), stride 2 and 5x5 / 7x7 a whole output row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

UNROLLED_DW = (3, 5, 7)


def _dw_unrolled_header() -> str:
    """Fully unrolled depthwise taps: sum of x[ky*row + kx*col] * w[ky*k + kx] for k in 3, 5, 7."""
    parts = [
        "/* Generated: fully unrolled depthwise taps (k x k window, NHWC: row = W*C, col = C). */",
        "#ifndef TE_DW_UNROLLED_H",
        "#define TE_DW_UNROLLED_H",
        "",
        "#include <stdint.h>",
    ]
    for k in UNROLLED_DW:
        parts += [
            "",
            f"static inline __attribute__((always_inline)) int32_t te_dw_taps_{k}("
            "const int8_t *x, const int32_t *w, int32_t row, int32_t col) {",
            "    int32_t acc = 0;",
        ]
        for ky in range(k):
            for kx in range(k):
                parts.append(f"    acc += x[{ky} * row + {kx} * col] * w[{ky * k + kx}];")
        parts += ["    return acc;", "}"]
    parts += ["", "#endif /* TE_DW_UNROLLED_H */", ""]
    return "\n".join(parts)


_W_REGS = ("r4", "r5", "r6", "r8")  # LDM targets: a chunk's weights, then r9 = 2 * bias,
_A_REG, _M_REG, _R_REG = "r9", "r10", "r11"  # r10, r11 = multiplier, rounding constant,
_E_REG = "r12"  # and the shift of the looped per-channel code


def _wide_chunks(kp: int) -> list[int]:
    """Words per chunk of a wide record: fours, then a two for a KP that is 4 mod 8."""
    words = kp // 2
    return [4] * (words // 4) + ([2] if words % 4 else [])


def _wide_instructions(kp: int) -> int:
    """Instructions per output channel of the per-channel code (MACs, requantization, store)."""
    if kp <= 8:
        return kp // 2 + 5
    return sum(1 + 3 * (c // 2) for c in _wide_chunks(kp)) + 4


def _wide_macro(kp: int, looped: bool = False) -> str:
    """``TE_WIDE_CH_<kp>(E, lo, hi)``: one output channel of the wide per-channel code, or with
    ``looped`` ``TE_WIDEL_CH_<kp>(lo, hi)``: the shift comes last in the record (one more word
    fetched by the last LDM, one ASR), so a loop over the channels can run it."""
    chunks = _wide_chunks(kp)
    names = ["w0", "w1", "w2", "w3"]
    asm = []
    off = 0
    for i, size in enumerate(chunks):
        regs = [f"%[{n}]" for n in names[:size]]
        if i == 0:
            regs.append("%[a]")
        if i == len(chunks) - 1:
            regs += ["%[m]", "%[r]"] + (["%[e]"] if looped else [])
        asm.append(f"ldmia %[pw]!, {{{', '.join(regs)}}}")
        for j in range(0, size, 2):
            if 4 * off <= 1020:  # LDRD's reach; LDR reaches 4095
                asm.append(f"ldrd %[x0], %[x1], [%[px], #{4 * off}]")
            else:
                asm += [f"ldr %[x0], [%[px], #{4 * off}]", f"ldr %[x1], [%[px], #{4 * off + 4}]"]
            asm += [
                f"smlad %[a], %[x0], %[{names[j]}], %[a]",
                f"smlad %[a], %[x1], %[{names[j + 1]}], %[a]",
            ]
            off += 2
    asm += ["smmlar %[m], %[a], %[m], %[r]", "add %[m], %[m], %[a], asr #31"]
    if looped:
        asm += ["asr %[m], %[m], %[e]", "ssat %[m], #8, %[m]"]
    else:
        asm += ["ssat %[m], #8, %[m], asr %[e]"]
    pinned = [("uint32_t", n, r) for n, r in zip(names, _W_REGS, strict=True)]
    pinned += [("int32_t", "a", _A_REG), ("int32_t", "m", _M_REG), ("int32_t", "r", _R_REG)]
    if looped:
        pinned.append(("int32_t", "e", _E_REG))
    outputs_e = ', [e] "=&r"(e_)' if looped else ""
    inputs_e = "" if looped else ', [e] "i"(E)'
    return _asm_define(
        f"TE_WIDEL_CH_{kp}(lo, hi)" if looped else f"TE_WIDE_CH_{kp}(E, lo, hi)",
        pinned,
        ["uint32_t x0_, x1_;"],
        asm,
        [
            ': [pw] "+r"(pw), [w0] "=&r"(w0_), [w1] "=&r"(w1_), [w2] "=&r"(w2_),',
            '  [w3] "=&r"(w3_), [a] "=&r"(a_), [m] "=&r"(m_), [r] "=&r"(r_),',
            f'  [x0] "=&r"(x0_), [x1] "=&r"(x1_){outputs_e}',
            f': [px] "r"(px){inputs_e}',
            ': "memory");',
            "(void)w0_, (void)w1_, (void)w2_, (void)w3_, (void)r_, (void)x0_, (void)x1_;",
            *(["(void)e_;"] if looped else []),
            "TE_NARROW_STORE(m_, lo, hi);",
        ],
    )


_X_REGS = ("r0", "r1", "r2", "r3")  # the two-pixel code's LDM targets: two words of each pixel
_B_REG = "r10"  # and its second accumulator
_PW_REG, _Q_REG = "r11", "r12"  # and its record and pixel pointers


def _wide2_instructions(kp: int) -> int:
    """Instructions per two outputs (one channel, two pixels) of the two-pixel code: per chunk
    one LDM of the weights and per two words one LDM of the pixels and four SMLAD; the copy of
    the bias, the LDM of the requantization constants, two requantizations, two stores and the
    pixel pointer's reset."""
    return sum(1 + 5 * (c // 2) for c in _wide_chunks(kp)) + 11


def _wide2_macro(kp: int) -> str:
    """``TE_WIDE2_CH_<kp>(E, lo, hi)``: one output channel of the wide per-channel code for two
    pixels at once (``px`` interleaved by te_widen_px2), the outputs stored through ``o`` and
    ``o2``. The record is the one-pixel code's."""
    chunks = _wide_chunks(kp)
    names = ["w0", "w1", "w2", "w3"]
    asm = []
    for i, size in enumerate(chunks):
        regs = [f"%[{n}]" for n in names[:size]] + (["%[a]"] if i == 0 else [])
        asm.append(f"ldmia %[pw]!, {{{', '.join(regs)}}}")
        if i == 0:
            asm.append("mov %[b], %[a]")
        for j in range(0, size, 2):
            asm += [
                "ldmia %[q]!, {%[x0], %[x1], %[x2], %[x3]}",
                f"smlad %[a], %[x0], %[{names[j]}], %[a]",
                f"smlad %[a], %[x1], %[{names[j + 1]}], %[a]",
                f"smlad %[b], %[x2], %[{names[j]}], %[b]",
                f"smlad %[b], %[x3], %[{names[j + 1]}], %[b]",
            ]
    asm.append("ldmia %[pw]!, {%[x0], %[x1]}")  # multiplier, rounding constant
    for acc, y in (("a", "x2"), ("b", "x3")):
        asm += [
            f"smmlar %[{y}], %[{acc}], %[x0], %[x1]",
            f"add %[{y}], %[{y}], %[{acc}], asr #31",
            f"ssat %[{y}], #8, %[{y}], asr %[e]",
        ]
    return _asm_define(
        f"TE_WIDE2_CH_{kp}(E, lo, hi)",
        [
            *(("uint32_t", n, r) for n, r in zip(names, _W_REGS, strict=True)),
            *(("int32_t", f"x{j}", r) for j, r in enumerate(_X_REGS)),
            ("int32_t", "a", _A_REG),
            ("int32_t", "b", _B_REG),
            # the pointers pinned too: with ten registers pinned GCC may find no two others
            # for them (seen with arena offsets past 4095, which take a register to form)
            ("const uint32_t *", "q", _Q_REG, "px"),
            ("const uint32_t *", "pw", _PW_REG, "pw"),
        ],
        [],
        asm,
        [
            ': [pw] "+r"(pw_), [q] "+r"(q_), [w0] "=&r"(w0_), [w1] "=&r"(w1_),',
            '  [w2] "=&r"(w2_), [w3] "=&r"(w3_), [a] "=&r"(a_), [b] "=&r"(b_),',
            '  [x0] "=&r"(x0_), [x1] "=&r"(x1_), [x2] "=&r"(x2_), [x3] "=&r"(x3_)',
            ': [e] "i"(E)',
            ': "memory");',
            "(void)w0_, (void)w1_, (void)w2_, (void)w3_, (void)a_, (void)b_, (void)q_;",
            "(void)x0_, (void)x1_;",
            "pw = pw_;",
            "TE_PAIR_STORE(x2_, x3_, lo, hi);",
        ],
    )


_DWK_REGS = ("r4", "r5", "r6", "r8", "r9", "r10")  # a window row's weight pairs (LDM targets)


def _dwk_macro(k: int, s: int) -> str:
    """``TE_DWK_ROW_<k>_<s>(RW2)``: one output row of a k x k depthwise layer (stride s) on
    int16 ring rows, two outputs per iteration, as one asm loop (see te_dwk_ring).

    Per window row: one LDM of its k - 1 weight pairs u_j = (w_2j, w_2j+1), v_j = (w_2j+1, w_2j+2),
    LDRD / LDR of the row's words D_j = (x_2j, x_2j+1), and k + 1 MACs: output 0 is
    sum_j SMLAD(D_j, u_j) + SMLABT(D_h, v_h-1) (h = (k - 1) / 2); output 1 is
    SMLATB(D_0, u_0) + sum_j SMLAD(D_j, v_j-1) for stride 1 and output 0's terms on the words one
    further for stride 2. Then the fast requantization, the clamps and post-indexed stores."""
    h = (k - 1) // 2
    nw = h + 1 if s == 1 else h + 2  # data words per window row
    u = [f"%[w{j}]" for j in range(h)]
    v = [f"%[w{h + j}]" for j in range(h)]
    ops0 = [(j, "smlad", u[j]) for j in range(h)] + [(h, "smlabt", v[h - 1])]
    if s == 1:
        ops1 = [(0, "smlatb", u[0])] + [(j, "smlad", v[j - 1]) for j in range(1, h + 1)]
    else:
        ops1 = [(j + 1, "smlad", u[j]) for j in range(h)] + [(h + 1, "smlabt", v[h - 1])]
    regs = ", ".join(f"%[w{j}]" for j in range(k - 1))
    asm = ["1:", "ldr %[a0], [%[wp], #%c[boff]]"]
    for row in range(k):
        asm.append(f"ldmia %[wp]!, {{{regs}}}")
        for pair in range(0, nw, 2):
            words = [pair] if pair + 1 >= nw else [pair, pair + 1]
            off = f"%c[rw2] * {row} + {4 * pair}"
            if len(words) == 2:  # LDRD reaches 1020 bytes, LDR 4095
                asm += [
                    f".if ({off}) <= 1020",
                    f"ldrd %[x], %[y], [%[p], #({off})]",
                    ".else",
                    f"ldr %[x], [%[p], #({off})]",
                    f"ldr %[y], [%[p], #({off} + 4)]",
                    ".endif",
                ]
            else:
                asm.append(f"ldr %[x], [%[p], #({off})]")
            todo = [("a1", *o) for o in ops1 if o[0] in words]
            todo = [("a0", *o) for o in ops0 if o[0] in words] + todo
            if row == 0 and pair == 0:  # output 1 starts from the base, before output 0 moves
                first = next(t for t in todo if t[0] == "a1")
                todo.remove(first)
                reg = "%[x]" if first[1] == pair else "%[y]"
                asm.append(f"{first[2]} %[a1], {reg}, {first[3]}, %[a0]")
            for acc, word, op, w in todo:
                reg = "%[x]" if word == pair else "%[y]"
                asm.append(f"{op} %[{acc}], {reg}, {w}, %[{acc}]")
    asm.append(f"sub %[wp], %[wp], #{4 * k * (k - 1)}")
    asm += ["ldrd %[x], %[y], [%[wp], #%c[moff]]", "ldr %[w0], [%[wp], #%c[roff]]"]
    for acc in ("a0", "a1"):
        # post-indexed STRB reaches 255 bytes; a wider channel stride stores at an offset
        store = (
            [".if %c[c] <= 255", "strb %[w1], [%[o]], %[c]", ".else", "strb %[w1], [%[o]]"]
            if acc == "a0"
            else [
                ".if %c[c] <= 255",
                "strb %[w1], [%[o]], %[c]",
                ".else",
                "strb %[w1], [%[o], %[c]]",
                "addw %[o], %[o], #(2 * %c[c])",
            ]
        )
        asm += [
            *_requant_clamp("%[w1]", f"%[{acc}]", "%[x]", "%[y]", "%[w0]"),
            *store,
            ".endif",
        ]
    asm += [f"adds %[p], %[p], #{4 if s == 1 else 8}", "cmp %[p], %[pend]", "bne 1b"]
    outs = ", ".join(f'[w{j}] "=&r"(w{j}_)' for j in range(k - 1))
    voids = ", ".join(f"(void)w{j}_" for j in range(k - 1))
    base = k * (k - 1)
    return _asm_define(
        f"TE_DWK_ROW_{k}_{s}(RW2)",
        [("uint32_t", f"w{j}", _DWK_REGS[j]) for j in range(k - 1)],
        ["int32_t a0_, a1_;", "uint32_t x_, y_;", "const uint32_t *wq_ = wv;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [wp] "+r"(wq_), [a0] "=&r"(a0_),',
            f'  [a1] "=&r"(a1_), [x] "=&r"(x_), [y] "=&r"(y_), {outs}',
            ': [pend] "r"(pend), [rw2] "i"(RW2), [c] "i"(C), [lo] "i"(lo),',
            f'  [hi] "i"(hi), [boff] "i"({4 * base}), [moff] "i"({4 * (base + 1)}),',
            f'  [roff] "i"({4 * (base + 3)})',
            ': "cc", "memory");',
            f"(void)a0_, (void)a1_, (void)x_, (void)y_, {voids};",
        ],
    )


def _requant_clamp(dst: str, acc: str, mult: str, shift: str, rnd: str) -> list[str]:
    """The fast requantization of ``acc`` into ``dst`` (SMMLAR, ADD of the sign, ASR, SSAT)
    and the activation clamps, for an asm block with ``lo``/``hi`` immediates."""
    return [
        f"smmlar {dst}, {acc}, {mult}, {rnd}",
        f"add {dst}, {dst}, {acc}, asr #31",
        f"asr {dst}, {dst}, {shift}",
        f"ssat {dst}, #8, {dst}",
        ".if %c[lo] > -128",
        f"cmp {dst}, #%c[lo]",
        "it lt",
        f"movlt {dst}, #%c[lo]",
        ".endif",
        ".if %c[hi] < 127",
        f"cmp {dst}, #%c[hi]",
        "it gt",
        f"movgt {dst}, #%c[hi]",
        ".endif",
    ]


def _asm_define(
    head: str,
    pinned: list[tuple[str, ...]],
    local: list[str],
    asm: list[str],
    tail: list[str],
) -> str:
    """A ``#define`` of one asm block: ``pinned`` register variables ``(ctype, name, register)``
    or ``(ctype, name, register, initial value)`` (LDM targets must ascend, so they are chosen
    here), ``local`` declarations, the asm lines, then ``tail`` (the operand lists and what
    follows the block)."""
    pins = [
        f'register {ctype} {name}_ __asm__("{reg}"){f" = {init[0]}" if init else ""};'
        for ctype, name, reg, *init in pinned
    ]
    body = "".join(f'        "{line}\\n\\t" \\\n' for line in asm[:-1]) + f'        "{asm[-1]}" \\'
    return "\n".join(
        [
            f"#define {head} \\",
            "    do { \\",
            *(f"        {line} \\" for line in [*pins, *local]),
            "        __asm__ volatile( \\",
            body,
            *(f"        {line} \\" for line in tail),
            "    } while (0)",
        ]
    )


_DW3_REGS = (("u0", "r4"), ("v0", "r5"), ("u1", "r6"), ("v1", "r8"), ("u2", "r9"), ("v2", "r10"))


def _dw3_rows_asm(rows: list[str], weights: list[list[str]]) -> list[str]:
    """MACs of two output rows x two columns of a 3x3 stride-1 depthwise layer from the four
    ring rows at immediates ``rows``: output row o takes ring rows o .. o + 2; ring row i's words
    (x, y) = ((x0, x1), (x2, x3)) meet weight pairs (u_k, v_k) = ((w0, w1), (w1, w2)) of window
    row k = i - o, column 0 by SMLAD(x, u) + SMLABT(y, v), column 1 by SMLATB(x, u) + SMLAD(y, v).
    Column 1 starts from column 0's base (loaded from wp[6] before the first MAC of its row).
    ``weights[i]``: the (u, v) operands of window rows 0..2 when ring row i is read."""
    asm = ["ldr %[a00], [%[wp], #24]"]
    for i, row in enumerate(rows):
        asm.append(f"ldrd %[x], %[y], [%[p], {row}]")
        outs = [o for o in (0, 1) if 0 <= i - o <= 2]
        xs, ys = [], []
        for o in outs:
            u, v = weights[i][i - o]
            a0, a1 = f"%[a{o}0]", f"%[a{o}1]"
            if i - o == 0:  # the row's first window row: column 1 starts from the base
                if o == 1:
                    xs.append(f"ldr {a0}, [%[wp], #24]")
                xs += [f"smlatb {a1}, %[x], {u}, {a0}", f"smlad {a0}, %[x], {u}, {a0}"]
            else:
                xs += [f"smlad {a0}, %[x], {u}, {a0}", f"smlatb {a1}, %[x], {u}, {a1}"]
            ys += [f"smlabt {a0}, %[y], {v}, {a0}", f"smlad {a1}, %[y], {v}, {a1}"]
        asm += xs + ys
    return asm


def _dw3_quad_macro() -> str:
    """``TE_DW3_S1_QUAD(R0, R1, R2, R3)``: two output rows x two columns of a 3x3 stride-1
    depthwise layer from the four ring rows at byte offsets R0..R3 from p (one LDM of the six
    weight pairs, two loads of the base wp[6], four LDRD, 24 MACs); p advances one column pair."""
    uv = [(f"%[u{k}]", f"%[v{k}]") for k in range(3)]
    asm = [
        "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1], %[u2], %[v2]}",
        *_dw3_rows_asm([f"%[r{i}]" for i in range(4)], [uv] * 4),
        "adds %[p], %[p], #4",
    ]
    return _asm_define(
        "TE_DW3_S1_QUAD(R0, R1, R2, R3)",
        [("uint32_t", n, r) for n, r in _DW3_REGS],
        [],
        asm,
        [
            ': [p] "+r"(p), [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10),',
            '  [a11] "=&r"(a11), [x] "=&r"(x), [y] "=&r"(y), [u0] "=&r"(u0_),',
            '  [u1] "=&r"(u1_), [u2] "=&r"(u2_), [v0] "=&r"(v0_), [v1] "=&r"(v1_),',
            '  [v2] "=&r"(v2_)',
            ': [wp] "r"(wv), [r0] "i"(R0), [r1] "i"(R1), [r2] "i"(R2), [r3] "i"(R3)',
            ': "cc", "memory");',
        ],
    )


def _dw3_quadq_macro() -> str:
    """``TE_DW3_S1_QUADQ(R0, R1, R2, R3)``: two whole output rows of a 3x3 stride-1 depthwise
    layer as one asm loop (p advances a column pair up to pend), each iteration
    TE_DW3_S1_QUAD's MACs with window row 2's pairs loaded over row 0's once those are done (so
    the output pointer fits in the registers), then per output the fast requantization, the
    clamps and a STRB at its offset from o (literal OW and C); o advances two columns."""
    low = [("%[u0]", "%[v0]"), ("%[u1]", "%[v1]"), (None, None)]
    high = [(None, None), ("%[u1]", "%[v1]"), ("%[u0]", "%[v0]")]
    macs = _dw3_rows_asm([f"%[r{i}]" for i in range(4)], [low, low, high, high])
    at = macs.index("ldrd %[x], %[y], [%[p], %[r2]]")
    asm = [
        "1:",
        "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1]}",
        *macs[:at],
        "ldrd %[u0], %[v0], [%[wp], #16]",  # window row 2's pairs over row 0's
        *macs[at:],
        "adds %[p], %[p], #4",
        "ldrd %[x], %[y], [%[wp], #28]",
        "ldr %[u1], [%[wp], #36]",
    ]
    for n, acc in enumerate(("a00", "a01", "a10", "a11")):
        asm += _requant_clamp("%[v1]", f"%[{acc}]", "%[x]", "%[y]", "%[u1]")
        asm.append(f"strb %[v1], [%[o], #%c[z{n}]]")
    asm += ["add %[o], %[o], #%c[z4]", "cmp %[p], %[pend]", "bne 1b"]
    return _asm_define(
        "TE_DW3_S1_QUADQ(R0, R1, R2, R3)",
        [("uint32_t", n, r) for n, r in _DW3_REGS[:4]],
        ["int32_t a00_, a01_, a10_, a11_;", "uint32_t x_, y_;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [a00] "=&r"(a00_), [a01] "=&r"(a01_),',
            '  [a10] "=&r"(a10_), [a11] "=&r"(a11_), [x] "=&r"(x_), [y] "=&r"(y_),',
            '  [u0] "=&r"(u0_), [v0] "=&r"(v0_), [u1] "=&r"(u1_), [v1] "=&r"(v1_)',
            ': [wp] "r"(wv), [pend] "r"(pend), [r0] "i"(R0), [r1] "i"(R1),',
            '  [r2] "i"(R2), [r3] "i"(R3), [z0] "i"(0), [z1] "i"(C), [z2] "i"(OW * C),',
            '  [z3] "i"((OW + 1) * C), [z4] "i"(2 * C), [lo] "i"(lo), [hi] "i"(hi)',
            ': "cc", "memory");',
            "(void)a00_, (void)a01_, (void)a10_, (void)a11_, (void)x_, (void)y_;",
        ],
    )


def _dw3_s2_macro() -> str:
    """``TE_DW3_S2_ROW(R0, R1, R2)``: a whole output row (an even number of outputs) of a 3x3
    stride-2 depthwise layer as one asm loop, two outputs per iteration from the three ring rows
    at byte offsets R0..R2 from p: one LDM of the weight pairs, per window row LDRD + LDR of six
    neighbouring values and four MACs (output 1 starts from output 0's base), then per output the
    fast requantization, the clamps and a post-indexed STRB."""
    asm = ["1:", "ldmia %[wp], {%[u0], %[v0], %[u1], %[v1], %[u2], %[v2]}"]
    asm.append("ldr %[a0], [%[wp], #24]")
    for k in range(3):
        u, v, r = f"%[u{k}]", f"%[v{k}]", f"%[r{k}]"
        asm.append(f"ldrd %[x], %[y], [%[p], {r}]")
        if k == 0:
            asm += [f"smlad %[a1], %[y], {u}, %[a0]", f"smlad %[a0], %[x], {u}, %[a0]"]
            asm.append(f"smlabt %[a0], %[y], {v}, %[a0]")
        else:
            asm += [f"smlad %[a0], %[x], {u}, %[a0]", f"smlabt %[a0], %[y], {v}, %[a0]"]
            asm.append(f"smlad %[a1], %[y], {u}, %[a1]")
        asm += [f"ldr %[x], [%[p], %[r{k}z]]", f"smlabt %[a1], %[x], {v}, %[a1]"]
    asm += ["ldrd %[x], %[y], [%[wp], #28]", "ldr %[u0], [%[wp], #36]"]
    for acc in ("a0", "a1"):
        asm += _requant_clamp("%[u1]", f"%[{acc}]", "%[x]", "%[y]", "%[u0]")
        asm.append("strb %[u1], [%[o]], %[c]")
    asm += ["adds %[p], %[p], #8", "cmp %[p], %[pend]", "bne 1b"]
    return _asm_define(
        "TE_DW3_S2_ROW(R0, R1, R2)",
        [("uint32_t", n, r) for n, r in _DW3_REGS],
        ["int32_t a0_, a1_;", "uint32_t x_, y_;"],
        asm,
        [
            ': [p] "+r"(p), [o] "+r"(o0), [a0] "=&r"(a0_), [a1] "=&r"(a1_),',
            '  [x] "=&r"(x_), [y] "=&r"(y_), [u0] "=&r"(u0_), [u1] "=&r"(u1_),',
            '  [u2] "=&r"(u2_), [v0] "=&r"(v0_), [v1] "=&r"(v1_), [v2] "=&r"(v2_)',
            ': [wp] "r"(wv), [pend] "r"(pend), [r0] "i"(R0), [r1] "i"(R1),',
            '  [r2] "i"(R2), [r0z] "i"((R0) + 8), [r1z] "i"((R1) + 8),',
            '  [r2z] "i"((R2) + 8), [c] "i"(C), [lo] "i"(lo), [hi] "i"(hi)',
            ': "cc", "memory");',
            "(void)a0_, (void)a1_, (void)x_, (void)y_, (void)u2_, (void)v0_, (void)v1_,",
            "    (void)v2_;",
        ],
    )


def _dwk_header() -> str:
    """te_dwk.h: the depthwise asm row loops on int16 ring rows: 3x3 (two rows x two columns,
    two whole rows for stride 1, a row for stride 2) and 5x5 / 7x7 for strides 1 and 2."""
    parts = ["/* Generated: depthwise asm row loops on int16 ring rows (see kernels_te.h). */"]
    parts += ["#ifndef TE_DWK_H", "#define TE_DWK_H", ""]
    parts += ["#if TE_HAVE_DSP && TE_SPECIALIZE", _dw3_quad_macro(), ""]
    parts += [_dw3_quadq_macro(), "", _dw3_s2_macro(), "#endif", ""]
    for k in (5, 7):
        for s in (1, 2):
            parts += [_dwk_macro(k, s), ""]
    return "\n".join([*parts, "#endif /* TE_DWK_H */", ""])


def _wide_header(kps: list[int], looped_kps: list[int], pair_kps: list[int]) -> str:
    """te_wide.h: the per-channel asm block of every record length the model uses (one, two
    pixels per pass, looped), each with kernels_te.h's portable code where there is no DSP."""
    parts = [
        "/* Generated: wide per-channel code, one macro per record length (see kernels_te.h). */",
        "#ifndef TE_WIDE_H",
        "#define TE_WIDE_H",
        "",
    ]
    variants: list[tuple[list[int], Callable[[int], str], str]] = [
        (kps, _wide_macro, "TE_WIDE_CH_{kp}(E, lo, hi) TE_WIDE_CH_C({kp}, E, lo, hi)"),
        (pair_kps, _wide2_macro, "TE_WIDE2_CH_{kp}(E, lo, hi) TE_WIDE2_CH_C({kp}, E, lo, hi)"),
        (
            looped_kps,
            functools.partial(_wide_macro, looped=True),
            "TE_WIDEL_CH_{kp}(lo, hi) TE_WIDEL_CH_C({kp}, lo, hi)",
        ),
    ]
    for used, macro, portable in variants:
        for kp in sorted(set(used)):
            parts += [
                "#if TE_HAVE_DSP",
                macro(kp),
                "#else",
                f"#define {portable.format(kp=kp)}",
                "#endif",
                "",
            ]
    return "\n".join([*parts, "#endif /* TE_WIDE_H */", ""])
