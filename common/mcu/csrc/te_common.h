/* Integer arithmetic shared by every kernel: TF-Lite's requantization, clamping and the few
 * memory helpers a freestanding build needs (no libc calls anywhere).
 */
#ifndef TE_COMMON_H
#define TE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "arm_simd.h"

/* TF-Lite's MultiplyByQuantizedMultiplier: x * mult * 2^(shift - 31) with gemmlowp's
 * SaturatingRoundingDoublingHighMul (round half away from zero) followed by RoundingDivideByPOT.
 * mult is in [2^30, 2^31) so the doubling high multiply never saturates. A positive shift is
 * applied to x first, in 64 bits; a result that no longer fits is saturated to +-2^30, far
 * outside any int8 range, so the final clamp gives what exact arithmetic would. */
static inline int32_t te_requantize(int32_t x, int32_t mult, int32_t shift) {
    int64_t ab = (int64_t)x * (int64_t)mult;
    if (shift > 0) {
        ab *= (int64_t)(1u << shift);
    }
    int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (int64_t)(1 - (1 << 30));
    int64_t sum = ab + nudge;
    /* truncating division by 2^31 (C semantics), with arithmetic shifts only */
    int64_t high = (sum >= 0 ? sum : sum + (((int64_t)1 << 31) - 1)) >> 31;
    if (shift > 0) {
        if (high > (1 << 30)) {
            return 1 << 30;
        }
        if (high < -(1 << 30)) {
            return -(1 << 30);
        }
        return (int32_t)high;
    }
    int32_t h = (int32_t)high;
    int32_t right = -shift;
    int32_t mask = (int32_t)((1u << right) - 1u);
    int32_t remainder = h & mask;
    int32_t threshold = (mask >> 1) + (h < 0 ? 1 : 0);
    return (h >> right) + (remainder > threshold ? 1 : 0);
}

/* Requantize an accumulator, add the output zero point and clamp to the activation range. */
static inline int8_t te_output(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t lo,
                               int32_t hi) {
    int32_t y = te_requantize(acc, mult, shift) + out_zp;
    y = y < lo ? lo : y;
    y = y > hi ? hi : y;
    return (int8_t)y;
}

/* Fast requantization for one output channel, rq = {multiplier, e, r}: with e = -shift >= 1,
 * r = 2^(e-1) + out_zp * 2^e and |acc| < 2^30 (the generator checks both and otherwise passes no
 * rq), SaturatingRoundingDoublingHighMul(acc, mult) == h := SMMULR(2 * acc, mult) exactly, and
 * RoundingDivideByPOT(h, e) + out_zp == (h + (h < 0 ? -1 : 0) + r) >> e. SMMLAR adds r for free,
 * and the sign of acc can stand in for the sign of h: they differ only when h == 0 and acc < 0,
 * and then r - 1 and r give the same quotient (r is never a multiple of 2^e). Bit-exact with
 * te_output in five instructions (ADD, SMMLAR, ADD with ASR #31, ASR, SSAT) instead of a 64-bit
 * multiply-shift-round sequence. */
static inline int8_t te_output_fast(int32_t acc, const int32_t *rq, int32_t lo, int32_t hi) {
    const int32_t t = te_smmlar(acc + acc, rq[0], rq[2]);
    int32_t y = (t + (acc >> 31)) >> rq[1];
#if TE_HAVE_DSP
    y = __ssat(y, 8); /* lo >= -128 and hi <= 127: SSAT does the usual clamp in one instruction */
    if (lo > -128) {
        y = y < lo ? lo : y;
    }
    if (hi < 127) {
        y = y > hi ? hi : y;
    }
#else
    y = y < lo ? lo : y;
    y = y > hi ? hi : y;
#endif
    return (int8_t)y;
}

/* Output channel c's requantization: the fast path when the generator provided rq. */
static inline int8_t te_output_ch(int32_t acc, int32_t c, const int32_t *rq, const int32_t *mult,
                                  const int32_t *shift, int32_t out_zp, int32_t lo, int32_t hi) {
    if (rq) {
        return te_output_fast(acc, rq + 3 * c, lo, hi);
    }
    return te_output(acc, mult[c], shift[c], out_zp, lo, hi);
}

static inline void te_copy(int8_t *dst, const int8_t *src, int32_t n) {
    if (dst == src) {
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = src[i];
    }
}

/* Copy ROWS rows of N bytes between buffers with different row strides (patch tiles). */
static inline void te_copy_rows(int8_t *dst, int32_t dst_stride, const int8_t *src,
                                int32_t src_stride, int32_t rows, int32_t n) {
    for (int32_t r = 0; r < rows; ++r) {
        te_copy(dst + r * dst_stride, src + r * src_stride, n);
    }
}

static inline void te_fill(int8_t *dst, int8_t value, int32_t n) {
    for (int32_t i = 0; i < n; ++i) {
        dst[i] = value;
    }
}

#endif /* TE_COMMON_H */
