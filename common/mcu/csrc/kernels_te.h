/* TinyEngine-style specialized kernels.
 *
 * Every kernel is a static function whose shape arguments are literal constants at each call
 * site in model.c. With TE_SPECIALIZE=1 the kernels are forced inline, so the compiler sees the
 * shapes, offsets and activation bounds as compile-time constants and emits per-layer code
 * (loop bounds, strides, the 1x1 fast path, the unrolled depthwise taps all resolve statically),
 * as TinyEngine's code generator does. With TE_SPECIALIZE=0 each kernel is compiled once with
 * run-time arguments (the ablation).
 *
 * Switches (define before including): TE_SPECIALIZE, TE_SIMD (SXTB16/SMLAD dual-MAC inner
 * products, SMLAD 3x3 depthwise taps with TE_UNROLL), TE_UNROLL (fully unrolled 3x3/5x5/7x7
 * depthwise taps, from te_dw_unrolled.h).
 */
#ifndef KERNELS_TE_H
#define KERNELS_TE_H

#include <stdint.h>

#include "arm_simd.h"
#include "te_common.h"

#ifndef TE_SPECIALIZE
#define TE_SPECIALIZE 1
#endif
#ifndef TE_SIMD
#define TE_SIMD 1
#endif
#ifndef TE_UNROLL
#define TE_UNROLL 1
#endif

#if TE_SPECIALIZE
#define TE_KERNEL static inline __attribute__((always_inline))
#else
#define TE_KERNEL static __attribute__((noipa, unused))
#endif

#if TE_UNROLL
#include "te_dw_unrolled.h"
#endif
#if TE_SIMD
#include "te_wide.h"
#include "te_dwk.h"
#endif

/* Largest depthwise kernel (taps) the local weight copy holds; the generator checks it. */
#ifndef TE_DW_MAX_TAPS
#define TE_DW_MAX_TAPS 49
#endif

#if TE_SIMD
/* SIMD GEMM (after CMSIS-NN's s8 x s16 scheme). Each pixel's K values are widened once to int16
 * in SXTB16 order: a group of four int8 x0..x3 (+ off) becomes the halfword pairs (x0, x2),
 * (x1, x3), exactly what SXTB16 and SXTB16-ROR-8 make of a weight word w0..w3, so every SMLAD
 * does two multiply-accumulates. Two pixels are widened side by side (per group: pixel 0's two
 * words, then pixel 1's), and the generator stores the weights of each output-channel pair
 * interleaved (per group: channel 0's word, then channel 1's); one LDRD then fetches a group for
 * both pixels or both channels, and the inner loop keeps three pointers, four accumulators and
 * six temporaries in registers: 15 instructions per 16 MACs. K is padded to KP (a multiple of
 * 4) with zero weights; an odd last channel is paired with a zero row. */
typedef uint64_t te_u64 __attribute__((may_alias, aligned(4)));

/* Four int8 values at x, plus the input offset (off2 = the offset in both halfwords), as the
 * SXTB16-ordered halfword pairs (x0, x2), (x1, x3) at px[0], px[1]. */
static inline __attribute__((always_inline)) void te_widen4(const int8_t *x, uint32_t *px,
                                                            int32_t off, uint32_t off2) {
    const uint32_t v = te_read_u32(x);
    uint32_t e = te_sxtb16(v);
    uint32_t d = te_sxtb16_ror8(v);
    if (off != 0) {
        e = te_sadd16(e, off2);
        d = te_sadd16(d, off2);
    }
    px[0] = e;
    px[1] = d;
}

/* Widen KP (a multiple of 4) int8 values, group g (values 4g..4g+3) at px[G * g]: G = 2 packs
 * one pixel, G = 4 leaves room for a second pixel at px + 2 (two pixels side by side). A plain
 * loop: the GEMM kernels are inlined at every layer, so their code stays small. */
static inline __attribute__((always_inline)) void te_widen_groups(const int8_t *x, uint32_t *px,
                                                                  int32_t KP, int32_t off,
                                                                  int32_t G) {
    const uint32_t off2 = te_pack_pair(off);
    for (int32_t k = 0; k < KP; k += 4, px += G) {
        te_widen4(x + k, px, off, off2);
    }
}

/* One of two pixels widened side by side (col16 for pixel 0, col16 + 4 halfwords for pixel 1). */
static inline __attribute__((always_inline)) void te_widen(const int8_t *x, int16_t *col16,
                                                           int32_t n, int32_t off) {
    te_widen_groups(x, (uint32_t *)(void *)col16, n, off, 4);
}

/* The same, unrolled (the per-channel code widens one window per pixel or pair of pixels). */
static inline __attribute__((always_inline)) void te_widen_unrolled(const int8_t *x,
                                                                    uint32_t *px, int32_t KP,
                                                                    int32_t off, int32_t G) {
    const uint32_t off2 = te_pack_pair(off);
#pragma GCC unroll 64
    for (int32_t k = 0; k < KP; k += 4, px += G) {
        te_widen4(x + k, px, off, off2);
    }
}

/* One pixel widened compactly: KP / 2 words. */
static inline __attribute__((always_inline)) void te_widen_px(const int8_t *x, uint32_t *px,
                                                              int32_t KP, int32_t off) {
    te_widen_unrolled(x, px, KP, off, 2);
}

/* Output channels [0, COUT) of two widened pixels (interleaved at col16, te_widen) or, when not
 * two_px, of one pixel widened compactly at col16 (te_widen_px: KP halfwords, the scratch of a
 * fully connected layer). wt: channel pairs, KP / 4 groups of two words each. */
static inline __attribute__((always_inline)) void te_gemm16(
    const int16_t *col16, int8_t *o0, int8_t *o1, int two_px, int32_t KP, int32_t COUT,
    const int8_t *wt, const int32_t *bias, const int32_t *mult, const int32_t *shift,
    const int32_t *rq, int32_t out_zp, int32_t lo, int32_t hi) {
    const te_u64 *pw = (const te_u64 *)(const void *)wt;
    for (int32_t oc = 0; oc < COUT; oc += 2) {
        const int two_ch = oc + 1 < COUT;
        const int32_t b1 = two_ch ? bias[oc + 1] : 0;
        int32_t a00 = bias[oc], a01 = bias[oc], a10 = b1, a11 = b1;
        const te_u64 *px = (const te_u64 *)(const void *)col16;
        const te_u64 *end = pw + KP / 4;
#if TE_HAVE_DSP
        if (!two_px) { /* one pixel, widened compactly (te_widen_px): KP / 2 words */
#pragma GCC unroll 16
            for (; pw < end; ++pw) {
                uint32_t w0, w1, t0, t1, x0, x1;
                __asm__ volatile("ldrd %[w0], %[w1], [%[pw]]\n\t"
                                 "ldrd %[x0], %[x1], [%[px]], #8\n\t"
                                 "sxtb16 %[t0], %[w0]\n\t"
                                 "sxtb16 %[w0], %[w0], ror #8\n\t"
                                 "sxtb16 %[t1], %[w1]\n\t"
                                 "sxtb16 %[w1], %[w1], ror #8\n\t"
                                 "smlad %[a00], %[x0], %[t0], %[a00]\n\t"
                                 "smlad %[a00], %[x1], %[w0], %[a00]\n\t"
                                 "smlad %[a10], %[x0], %[t1], %[a10]\n\t"
                                 "smlad %[a10], %[x1], %[w1], %[a10]"
                                 : [px] "+r"(px), [a00] "+r"(a00), [a10] "+r"(a10),
                                   [w0] "=&r"(w0), [w1] "=&r"(w1), [t0] "=&r"(t0),
                                   [t1] "=&r"(t1), [x0] "=&r"(x0), [x1] "=&r"(x1)
                                 : [pw] "r"(pw)
                                 : "memory");
            }
        }
#else
        if (!two_px) { /* one pixel, widened compactly (te_widen_px): KP / 2 words */
            for (; pw < end; ++pw) {
                const uint64_t w = *pw;
                const uint64_t xa = *px++;
                a00 = te_smlad((uint32_t)xa, te_sxtb16((uint32_t)w), a00);
                a00 = te_smlad((uint32_t)(xa >> 32), te_sxtb16_ror8((uint32_t)w), a00);
                a10 = te_smlad((uint32_t)xa, te_sxtb16((uint32_t)(w >> 32)), a10);
                a10 = te_smlad((uint32_t)(xa >> 32), te_sxtb16_ror8((uint32_t)(w >> 32)), a10);
            }
        }
#endif
#pragma GCC unroll 16
        for (; pw < end; ++pw) {
#if TE_HAVE_DSP
            /* GCC splits the LDRDs and spills a pointer here: the group is written out. */
            uint32_t w0, w1, t0, t1, x0, x1;
            __asm__ volatile(
                "ldrd %[w0], %[w1], [%[pw]]\n\t"
                "ldrd %[x0], %[x1], [%[px]], #8\n\t"
                "sxtb16 %[t0], %[w0]\n\t"
                "sxtb16 %[w0], %[w0], ror #8\n\t"
                "sxtb16 %[t1], %[w1]\n\t"
                "sxtb16 %[w1], %[w1], ror #8\n\t"
                "smlad %[a00], %[x0], %[t0], %[a00]\n\t"
                "smlad %[a00], %[x1], %[w0], %[a00]\n\t"
                "smlad %[a10], %[x0], %[t1], %[a10]\n\t"
                "smlad %[a10], %[x1], %[w1], %[a10]\n\t"
                "ldrd %[x0], %[x1], [%[px]], #8\n\t"
                "smlad %[a01], %[x0], %[t0], %[a01]\n\t"
                "smlad %[a01], %[x1], %[w0], %[a01]\n\t"
                "smlad %[a11], %[x0], %[t1], %[a11]\n\t"
                "smlad %[a11], %[x1], %[w1], %[a11]"
                : [px] "+r"(px), [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),
                  [a11] "+r"(a11), [w0] "=&r"(w0), [w1] "=&r"(w1), [t0] "=&r"(t0),
                  [t1] "=&r"(t1), [x0] "=&r"(x0), [x1] "=&r"(x1)
                : [pw] "r"(pw)
                : "memory");
#else
            const uint64_t w = *pw;
            const uint32_t wa_e = te_sxtb16((uint32_t)w);
            const uint32_t wa_o = te_sxtb16_ror8((uint32_t)w);
            const uint32_t wb_e = te_sxtb16((uint32_t)(w >> 32));
            const uint32_t wb_o = te_sxtb16_ror8((uint32_t)(w >> 32));
            const uint64_t xa = px[0];
            a00 = te_smlad((uint32_t)xa, wa_e, a00);
            a00 = te_smlad((uint32_t)(xa >> 32), wa_o, a00);
            a10 = te_smlad((uint32_t)xa, wb_e, a10);
            a10 = te_smlad((uint32_t)(xa >> 32), wb_o, a10);
            const uint64_t xb = px[1];
            a01 = te_smlad((uint32_t)xb, wa_e, a01);
            a01 = te_smlad((uint32_t)(xb >> 32), wa_o, a01);
            a11 = te_smlad((uint32_t)xb, wb_e, a11);
            a11 = te_smlad((uint32_t)(xb >> 32), wb_o, a11);
            px += 2;
#endif
        }
        o0[oc] = te_output_ch(a00, oc, rq, mult, shift, out_zp, lo, hi);
        if (two_px) {
            o1[oc] = te_output_ch(a01, oc, rq, mult, shift, out_zp, lo, hi);
        }
        if (two_ch) {
            o0[oc + 1] = te_output_ch(a10, oc + 1, rq, mult, shift, out_zp, lo, hi);
            if (two_px) {
                o1[oc + 1] = te_output_ch(a11, oc + 1, rq, mult, shift, out_zp, lo, hi);
            }
        }
    }
}
#else
/* Inner products of one or two input rows (pixels) with two weight rows (output channels):
 * acc[i][j] += sum_k (x_i[k] + off) * w_j[k]. */
static inline __attribute__((always_inline)) void te_dot(const int8_t *x0, const int8_t *x1,
                                                         const int8_t *w0, const int8_t *w1,
                                                         int32_t k_len, int32_t off,
                                                         int two_px, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    for (int32_t k = 0; k < k_len; ++k) {
        const int32_t xa = x0[k] + off;
        const int32_t wa = w0[k];
        const int32_t wb = w1[k];
        a00 += xa * wa;
        a10 += xa * wb;
        if (two_px) {
            const int32_t xb = x1[k] + off;
            a01 += xb * wa;
            a11 += xb * wb;
        }
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* Output channels [0, COUT) of one or two int8 rows x0, x1 (weight rows of KP bytes); pixel 1's
 * outputs are stored only when two_px (the counterpart of te_gemm16 without SIMD). */
static inline __attribute__((always_inline)) void te_gemm8(
    const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1, int two_px, int32_t KP,
    int32_t COUT, const int8_t *wt, const int32_t *bias, const int32_t *mult,
    const int32_t *shift, const int32_t *rq, int32_t off, int32_t out_zp, int32_t lo,
    int32_t hi) {
    for (int32_t oc = 0; oc < COUT; oc += 2) {
        const int two_ch = oc + 1 < COUT;
        const int8_t *w0 = wt + oc * KP;
        const int8_t *w1 = two_ch ? w0 + KP : w0;
        const int32_t b1 = two_ch ? bias[oc + 1] : 0;
        int32_t acc[4] = {bias[oc], bias[oc], b1, b1};
        if (two_px) {
            te_dot(x0, x1, w0, w1, KP, off, 1, acc);
        } else {
            te_dot(x0, x0, w0, w1, KP, off, 0, acc);
        }
        o0[oc] = te_output_ch(acc[0], oc, rq, mult, shift, out_zp, lo, hi);
        if (two_px) {
            o1[oc] = te_output_ch(acc[1], oc, rq, mult, shift, out_zp, lo, hi);
        }
        if (two_ch) {
            o0[oc + 1] = te_output_ch(acc[2], oc + 1, rq, mult, shift, out_zp, lo, hi);
            if (two_px) {
                o1[oc + 1] = te_output_ch(acc[3], oc + 1, rq, mult, shift, out_zp, lo, hi);
            }
        }
    }
}
#endif

#if TE_SIMD
/* Narrow 1x1 convolutions (K = 4 or 8 input channels, stride 1, no padding), TinyEngine-style
 * per-layer code: the generator writes one TE_NARROW_CH per output channel into model.c, with
 * that channel's requantization shift as a literal. Each pixel's K values are widened to int16
 * once and stay in registers (x0..x3, SXTB16 order) while every output channel is computed from
 * them. Per channel the generator stores one record of words: the weights pre-widened to int16
 * pairs in the same order and times two, then 2 * bias, the multiplier and the rounding constant
 * r of te_output_fast. One LDM fetches the record, the SMLADs accumulate 2 * acc (so the
 * factor 2 of te_output_fast costs nothing; |2 * acc| < 2^31 by the generator's bound), and
 * SMMLAR, ADD (sign of acc), SSAT with the literal shift requantize: for K = 8, nine instructions
 * per output channel (eight MACs). */
#define TE_NARROW_WORDS(K) ((K) / 2 + 3)

/* Widen the pixel at x (K int8 values) into x0..x3 (unused ones are 0); off: input offset. */
#define TE_NARROW_PIXEL(x, K, off)                                                  \
    uint32_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;                                        \
    (void)x2, (void)x3;                                                             \
    do {                                                                            \
        const uint32_t v0_ = te_read_u32(x);                                        \
        x0 = te_sxtb16(v0_);                                                        \
        x1 = te_sxtb16_ror8(v0_);                                                   \
        if ((K) == 8) {                                                             \
            const uint32_t v1_ = te_read_u32((x) + 4);                              \
            x2 = te_sxtb16(v1_);                                                    \
            x3 = te_sxtb16_ror8(v1_);                                               \
        }                                                                           \
        if ((off) != 0) {                                                           \
            const uint32_t off2_ = te_pack_pair(off);                               \
            x0 = te_sadd16(x0, off2_);                                              \
            x1 = te_sadd16(x1, off2_);                                              \
            x2 = (K) == 8 ? te_sadd16(x2, off2_) : 0;                               \
            x3 = (K) == 8 ? te_sadd16(x3, off2_) : 0;                               \
        }                                                                           \
    } while (0)

/* Clamp a saturated int8 result to [lo, hi] and store it at *o++. */
/* Clamp v to [lo, hi] in place, each bound only where it is tighter than int8's. */
#define TE_CLAMP(v, lo, hi)                                                         \
    do {                                                                            \
        if ((lo) > -128) {                                                          \
            (v) = (v) < (lo) ? (lo) : (v);                                          \
        }                                                                           \
        if ((hi) < 127) {                                                           \
            (v) = (v) > (hi) ? (hi) : (v);                                          \
        }                                                                           \
    } while (0)

#define TE_NARROW_STORE(y, lo, hi)                                                  \
    do {                                                                            \
        int32_t s_ = (y);                                                           \
        TE_CLAMP(s_, lo, hi);                                                       \
        *o++ = (int8_t)s_;                                                          \
    } while (0)

#if TE_HAVE_DSP
/* One output channel of a K = 8 pixel: the record is fetched into fixed registers by one LDM. */
#define TE_NARROW_CH8(E, lo, hi)                                                    \
    do {                                                                            \
        register uint32_t w0_ __asm__("r4");                                        \
        register uint32_t w1_ __asm__("r5");                                        \
        register uint32_t w2_ __asm__("r6");                                        \
        register uint32_t w3_ __asm__("r8");                                        \
        register int32_t a_ __asm__("r9");                                          \
        register int32_t m_ __asm__("r10");                                         \
        register int32_t r_ __asm__("r11");                                         \
        __asm__ volatile("ldmia %[pw]!, {%[w0], %[w1], %[w2], %[w3], %[a], %[m], %[r]}\n\t" \
                         "smlad %[a], %[x0], %[w0], %[a]\n\t"                       \
                         "smlad %[a], %[x1], %[w1], %[a]\n\t"                       \
                         "smlad %[a], %[x2], %[w2], %[a]\n\t"                       \
                         "smlad %[a], %[x3], %[w3], %[a]\n\t"                       \
                         "smmlar %[m], %[a], %[m], %[r]\n\t"                        \
                         "add %[m], %[m], %[a], asr #31\n\t"                        \
                         "ssat %[m], #8, %[m], asr %[e]"                            \
                         : [pw] "+r"(pw), [w0] "=&r"(w0_), [w1] "=&r"(w1_),         \
                           [w2] "=&r"(w2_), [w3] "=&r"(w3_), [a] "=&r"(a_),         \
                           [m] "=&r"(m_), [r] "=&r"(r_)                             \
                         : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3),  \
                           [e] "i"(E)                                               \
                         : "memory");                                               \
        (void)w0_, (void)w1_, (void)w2_, (void)w3_, (void)r_;                       \
        TE_NARROW_STORE(m_, lo, hi);                                                \
    } while (0)

/* The same for K = 4 (two weight words). */
#define TE_NARROW_CH4(E, lo, hi)                                                    \
    do {                                                                            \
        register uint32_t w0_ __asm__("r4");                                        \
        register uint32_t w1_ __asm__("r5");                                        \
        register int32_t a_ __asm__("r6");                                          \
        register int32_t m_ __asm__("r8");                                          \
        register int32_t r_ __asm__("r9");                                          \
        __asm__ volatile("ldmia %[pw]!, {%[w0], %[w1], %[a], %[m], %[r]}\n\t"      \
                         "smlad %[a], %[x0], %[w0], %[a]\n\t"                       \
                         "smlad %[a], %[x1], %[w1], %[a]\n\t"                       \
                         "smmlar %[m], %[a], %[m], %[r]\n\t"                        \
                         "add %[m], %[m], %[a], asr #31\n\t"                        \
                         "ssat %[m], #8, %[m], asr %[e]"                            \
                         : [pw] "+r"(pw), [w0] "=&r"(w0_), [w1] "=&r"(w1_),         \
                           [a] "=&r"(a_), [m] "=&r"(m_), [r] "=&r"(r_)              \
                         : [x0] "r"(x0), [x1] "r"(x1), [e] "i"(E)                   \
                         : "memory");                                               \
        (void)w0_, (void)w1_, (void)r_;                                             \
        TE_NARROW_STORE(m_, lo, hi);                                                \
    } while (0)
#else
/* Portable: the same arithmetic on the same record (bit-identical). */
#define TE_NARROW_CH_C(K, E, lo, hi)                                                \
    do {                                                                            \
        const int32_t *q_ = (const int32_t *)(const void *)pw;                      \
        int32_t a_ = q_[(K) / 2];                                                   \
        a_ = te_smlad(x0, (uint32_t)q_[0], a_);                                     \
        a_ = te_smlad(x1, (uint32_t)q_[1], a_);                                     \
        if ((K) == 8) {                                                             \
            a_ = te_smlad(x2, (uint32_t)q_[2], a_);                                 \
            a_ = te_smlad(x3, (uint32_t)q_[3], a_);                                 \
        }                                                                           \
        const int32_t t_ = te_smmlar(a_, q_[(K) / 2 + 1], q_[(K) / 2 + 2]);         \
        int32_t y_ = (t_ + (a_ >> 31)) >> (E);                                      \
        y_ = y_ < -128 ? -128 : y_;                                                 \
        y_ = y_ > 127 ? 127 : y_;                                                   \
        pw += TE_NARROW_WORDS(K);                                                   \
        TE_NARROW_STORE(y_, lo, hi);                                                \
    } while (0)
#define TE_NARROW_CH8(E, lo, hi) TE_NARROW_CH_C(8, E, lo, hi)
#define TE_NARROW_CH4(E, lo, hi) TE_NARROW_CH_C(4, E, lo, hi)
#endif

/* Wide per-channel code (KP > 8 values per output: a 1x1 convolution with more input channels,
 * or a gathered im2col window): the pixel is widened once into px (KP / 2 words, SXTB16 order),
 * and the generator writes one TE_WIDE_CH_<KP> per output channel (te_wide.h, generated: one
 * asm block per KP). The record holds the pre-widened weights in chunks of four words (eight
 * values; the last chunk may have two), with 2 * bias after the first chunk and the multiplier
 * and rounding constant after the last, so the first chunk's LDM also fetches the bias and the
 * last one's the requantization constants; per chunk of eight values: LDM, two LDRD of the
 * pixel, four SMLAD. */

/* d[i] = max(d[i], s[i]) for n int8 values: a convolution with a fused max pool merges each
 * pixel of the pooling window into the pooled output (a word at a time: SSUB8 + SEL). */
static inline __attribute__((always_inline)) void te_max_into(int8_t *d, const int8_t *s,
                                                              int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        te_write_u32(d + i, te_max8x4(te_read_u32(d + i), te_read_u32(s + i)));
    }
    for (; i < n; ++i) {
        d[i] = d[i] > s[i] ? d[i] : s[i];
    }
}

/* Portable per-channel code on the same record (bit-identical with the asm blocks). */
#define TE_WIDE_CH_C(KP, E, lo, hi)                                                 \
    do {                                                                            \
        const int32_t *q_ = (const int32_t *)(const void *)pw;                      \
        const int32_t f_ = (KP) / 2 < 4 ? (KP) / 2 : 4;                             \
        int32_t a_ = q_[f_];                                                        \
        for (int32_t j_ = 0; j_ < (KP) / 2; ++j_) {                                 \
            a_ = te_smlad(px[j_], (uint32_t)q_[j_ < f_ ? j_ : j_ + 1], a_);         \
        }                                                                           \
        const int32_t t_ = te_smmlar(a_, q_[(KP) / 2 + 1], q_[(KP) / 2 + 2]);       \
        int32_t y_ = (t_ + (a_ >> 31)) >> (E);                                      \
        y_ = y_ < -128 ? -128 : y_;                                                 \
        y_ = y_ > 127 ? 127 : y_;                                                   \
        pw += (KP) / 2 + 3;                                                         \
        TE_NARROW_STORE(y_, lo, hi);                                                \
    } while (0)

/* Two output pixels per pass over the records (TE_WIDE2_CH_<KP>, te_wide.h): the two pixels are
 * widened into one buffer, interleaved two words at a time (pixel 0's words 0, 1, then pixel
 * 1's words 0, 1, then pixel 0's words 2, 3, ...), so one LDM fetches two words of each, and
 * every weight chunk the record's LDM brings in serves both pixels. te_widen_px2 writes one
 * pixel's half of that layout (px for pixel 0, px + 2 for pixel 1). */
static inline __attribute__((always_inline)) void te_widen_px2(const int8_t *x, uint32_t *px,
                                                               int32_t KP, int32_t off) {
    te_widen_unrolled(x, px, KP, off, 4);
}

/* Store one channel's outputs of the two pixels: pixel 0 through o, pixel 1 through o2. */
#define TE_PAIR_STORE(y0, y1, lo, hi)                                               \
    do {                                                                            \
        int32_t s0_ = (y0), s1_ = (y1);                                             \
        TE_CLAMP(s0_, lo, hi);                                                      \
        TE_CLAMP(s1_, lo, hi);                                                      \
        *o++ = (int8_t)s0_;                                                         \
        *o2++ = (int8_t)s1_;                                                        \
    } while (0)

/* Portable two-pixel code on the same record and interleaved pixels (bit-identical). */
#define TE_WIDE2_CH_C(KP, E, lo, hi)                                                \
    do {                                                                            \
        const int32_t *q_ = (const int32_t *)(const void *)pw;                      \
        const int32_t f_ = (KP) / 2 < 4 ? (KP) / 2 : 4;                             \
        int32_t a_ = q_[f_], b_ = q_[f_];                                           \
        for (int32_t j_ = 0; j_ < (KP) / 2; ++j_) {                                 \
            const uint32_t w_ = (uint32_t)q_[j_ < f_ ? j_ : j_ + 1];                \
            const int32_t i_ = (j_ / 2) * 4 + j_ % 2;                               \
            a_ = te_smlad(px[i_], w_, a_);                                          \
            b_ = te_smlad(px[i_ + 2], w_, b_);                                      \
        }                                                                           \
        const int32_t m_ = q_[(KP) / 2 + 1], r_ = q_[(KP) / 2 + 2];                 \
        int32_t y_ = (te_smmlar(a_, m_, r_) + (a_ >> 31)) >> (E);                   \
        int32_t z_ = (te_smmlar(b_, m_, r_) + (b_ >> 31)) >> (E);                   \
        y_ = y_ < -128 ? -128 : (y_ > 127 ? 127 : y_);                              \
        z_ = z_ < -128 ? -128 : (z_ > 127 ? 127 : z_);                              \
        pw += (KP) / 2 + 3;                                                         \
        TE_PAIR_STORE(y_, z_, lo, hi);                                              \
    } while (0)

/* The looped variant: the shift is the record's last word. */
#define TE_WIDEL_CH_C(KP, lo, hi)                                                   \
    do {                                                                            \
        const int32_t *q_ = (const int32_t *)(const void *)pw;                      \
        const int32_t f_ = (KP) / 2 < 4 ? (KP) / 2 : 4;                             \
        int32_t a_ = q_[f_];                                                        \
        for (int32_t j_ = 0; j_ < (KP) / 2; ++j_) {                                 \
            a_ = te_smlad(px[j_], (uint32_t)q_[j_ < f_ ? j_ : j_ + 1], a_);         \
        }                                                                           \
        const int32_t t_ = te_smmlar(a_, q_[(KP) / 2 + 1], q_[(KP) / 2 + 2]);       \
        int32_t y_ = (t_ + (a_ >> 31)) >> q_[(KP) / 2 + 3];                         \
        y_ = y_ < -128 ? -128 : y_;                                                 \
        y_ = y_ > 127 ? 127 : y_;                                                   \
        pw += (KP) / 2 + 4;                                                         \
        TE_NARROW_STORE(y_, lo, hi);                                                \
    } while (0)
#endif /* TE_SIMD */

/* Gather the window of output pixel (oy, ox) into col (ky, kx, c order) for the wide per-channel
 * code: inside the input, each window row of KW * C bytes is copied a word at a time (up to three
 * bytes past it are copied too: the generator gives those positions zero weights, and the next
 * row overwrites them; col has KP + 4 bytes), else te_im2col (zero-point padding). */
static inline __attribute__((always_inline)) void te_gather(
    const int8_t *in, int8_t *col, int32_t oy, int32_t ox, int32_t H, int32_t W, int32_t C,
    int32_t OW, int32_t KH, int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL,
    int32_t in_zp, int32_t KP);

#if TE_SIMD
/* 1x1 convolution with the weights widened once per block of pixels: the pixels of a block of
 * PB are widened to int16 into xs (KP / 2 words each), then for each output-channel pair its
 * int8 weights (te_gemm16's layout) are widened into ws once (per group of four values:
 * channel 0's two words, then channel 1's) and every pixel pair of the block runs on them: per
 * group one LDM of the four weight words, two LDRD of the pixels and eight SMLAD, 11 instructions
 * per 16 MACs instead of 15 (the weights' SXTB16s are paid once per block, not per pixel pair).
 * Scratch: xs (2 * KP * PB bytes), ws (4 * KP bytes); the generator picks PB within the scratch
 * the other layers need anyway. */
TE_KERNEL void te_conv1x1_wc(const int8_t *in, int8_t *out, uint32_t *xs, uint32_t *ws,
                             int32_t NPX, int32_t COUT, int32_t KP, int32_t PB,
                             const int8_t *wt, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, const int32_t *rq, int32_t off,
                             int32_t out_zp, int32_t lo, int32_t hi) {
    for (int32_t p0 = 0; p0 < NPX; p0 += PB) {
        const int32_t n = NPX - p0 < PB ? NPX - p0 : PB;
        for (int32_t i = 0; i < n; ++i) {
            te_widen_px(in + (p0 + i) * KP, xs + i * (KP / 2), KP, off);
        }
        const uint32_t *pw = (const uint32_t *)(const void *)wt;
        int8_t *ob = out + p0 * COUT;
        for (int32_t oc = 0; oc < COUT; oc += 2) {
            const int two_ch = oc + 1 < COUT;
            uint32_t *wq = ws;
#pragma GCC unroll 8
            for (int32_t g = 0; g < KP / 4; ++g) {
#if TE_HAVE_DSP
                /* LDRD, four SXTB16, one STM: six instructions per group */
                register uint32_t u0 __asm__("r4");
                register uint32_t u1 __asm__("r5");
                register uint32_t u2 __asm__("r6");
                register uint32_t u3 __asm__("r8");
                uint32_t w0, w1;
                __asm__ volatile("ldrd %[w0], %[w1], [%[pw]], #8\n\t"
                                 "sxtb16 %[u0], %[w0]\n\t"
                                 "sxtb16 %[u1], %[w0], ror #8\n\t"
                                 "sxtb16 %[u2], %[w1]\n\t"
                                 "sxtb16 %[u3], %[w1], ror #8\n\t"
                                 "stmia %[wq]!, {%[u0], %[u1], %[u2], %[u3]}"
                                 : [pw] "+r"(pw), [wq] "+r"(wq), [u0] "=&r"(u0), [u1] "=&r"(u1),
                                   [u2] "=&r"(u2), [u3] "=&r"(u3), [w0] "=&r"(w0),
                                   [w1] "=&r"(w1)
                                 :
                                 : "memory");
#else
                const uint32_t w0 = pw[0], w1 = pw[1];
                wq[0] = te_sxtb16(w0);
                wq[1] = te_sxtb16_ror8(w0);
                wq[2] = te_sxtb16(w1);
                wq[3] = te_sxtb16_ror8(w1);
                wq += 4;
                pw += 2;
#endif
            }
            const int32_t b0 = bias[oc], b1 = two_ch ? bias[oc + 1] : 0;
            int8_t *o = ob + oc;
            int32_t i = 0;
            for (; i < n; i += 2) {
                const int two_px = i + 1 < n;
                int32_t a00 = b0, a01 = b0, a10 = b1, a11 = b1;
                const uint32_t *q = ws;
                const uint32_t *x = xs + i * (KP / 2);
#if TE_HAVE_DSP && TE_SPECIALIZE
                if (two_px) {
#pragma GCC unroll 16
                    for (int32_t g = 0; g < KP / 4; ++g) {
                        register uint32_t u0 __asm__("r4");
                        register uint32_t u1 __asm__("r5");
                        register uint32_t u2 __asm__("r6");
                        register uint32_t u3 __asm__("r8");
                        uint32_t xa, xb;
                        __asm__ volatile("ldmia %[q]!, {%[u0], %[u1], %[u2], %[u3]}\n\t"
                                         "ldrd %[xa], %[xb], [%[x]], #8\n\t"
                                         "smlad %[a00], %[xa], %[u0], %[a00]\n\t"
                                         "smlad %[a00], %[xb], %[u1], %[a00]\n\t"
                                         "smlad %[a10], %[xa], %[u2], %[a10]\n\t"
                                         "smlad %[a10], %[xb], %[u3], %[a10]\n\t"
                                         "ldrd %[xa], %[xb], [%[x], %[o1]]\n\t"
                                         "smlad %[a01], %[xa], %[u0], %[a01]\n\t"
                                         "smlad %[a01], %[xb], %[u1], %[a01]\n\t"
                                         "smlad %[a11], %[xa], %[u2], %[a11]\n\t"
                                         "smlad %[a11], %[xb], %[u3], %[a11]"
                                         : [q] "+r"(q), [x] "+r"(x), [a00] "+r"(a00),
                                           [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                                           [u0] "=&r"(u0), [u1] "=&r"(u1), [u2] "=&r"(u2),
                                           [u3] "=&r"(u3), [xa] "=&r"(xa), [xb] "=&r"(xb)
                                         : [o1] "i"(2 * KP - 8)
                                         : "memory");
                    }
                } else
#endif
                {
                    for (int32_t g = 0; g < KP / 4; ++g) {
                        const uint32_t xa = x[2 * g], xb = x[2 * g + 1];
                        a00 = te_smlad(xa, q[4 * g], a00);
                        a00 = te_smlad(xb, q[4 * g + 1], a00);
                        a10 = te_smlad(xa, q[4 * g + 2], a10);
                        a10 = te_smlad(xb, q[4 * g + 3], a10);
                        if (two_px) {
                            const uint32_t ya = x[KP / 2 + 2 * g], yb = x[KP / 2 + 2 * g + 1];
                            a01 = te_smlad(ya, q[4 * g], a01);
                            a01 = te_smlad(yb, q[4 * g + 1], a01);
                            a11 = te_smlad(ya, q[4 * g + 2], a11);
                            a11 = te_smlad(yb, q[4 * g + 3], a11);
                        }
                    }
                }
                o[0] = te_output_ch(a00, oc, rq, mult, shift, out_zp, lo, hi);
                if (two_ch) {
                    o[1] = te_output_ch(a10, oc + 1, rq, mult, shift, out_zp, lo, hi);
                }
                if (two_px) {
                    o[COUT] = te_output_ch(a01, oc, rq, mult, shift, out_zp, lo, hi);
                    if (two_ch) {
                        o[COUT + 1] = te_output_ch(a11, oc + 1, rq, mult, shift, out_zp, lo, hi);
                    }
                }
                o += 2 * COUT;
            }
        }
    }
}
#endif

/* Gather the receptive field of output pixel p (ky, kx, c order, matching the weights) into col
 * and zero-fill it up to KP; taps outside the image get the input zero point, i.e. a real zero
 * (fused padding). A window inside the image is copied a whole row (KW * C bytes) at a time. */
static inline __attribute__((always_inline)) void te_im2col(
    const int8_t *in, int8_t *col, int32_t p, int32_t H, int32_t W, int32_t C, int32_t OW,
    int32_t KH, int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL, int32_t in_zp,
    int32_t KP) {
    const int32_t oy = p / OW;
    const int32_t ox = p - oy * OW;
    const int32_t iy0 = oy * SH - PT;
    const int32_t ix0 = ox * SW - PL;
    int8_t *c0 = col;
    if (iy0 >= 0 && iy0 + KH <= H && ix0 >= 0 && ix0 + KW <= W) {
        for (int32_t ky = 0; ky < KH; ++ky) {
            const int8_t *src = in + ((iy0 + ky) * W + ix0) * C;
            for (int32_t i = 0; i < KW * C; ++i) {
                col[i] = src[i];
            }
            col += KW * C;
        }
    } else {
        for (int32_t ky = 0; ky < KH; ++ky) {
            const int32_t iy = iy0 + ky;
            for (int32_t kx = 0; kx < KW; ++kx) {
                const int32_t ix = ix0 + kx;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                    const int8_t *src = in + (iy * W + ix) * C;
                    for (int32_t c = 0; c < C; ++c) {
                        col[c] = src[c];
                    }
                } else {
                    te_fill(col, (int8_t)in_zp, C);
                }
                col += C;
            }
        }
    }
    te_fill(c0 + KH * KW * C, (int8_t)in_zp, KP - KH * KW * C);
}

static inline __attribute__((always_inline)) void te_gather(
    const int8_t *in, int8_t *col, int32_t oy, int32_t ox, int32_t H, int32_t W, int32_t C,
    int32_t OW, int32_t KH, int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL,
    int32_t in_zp, int32_t KP) {
    const int32_t iy0 = oy * SH - PT;
    const int32_t ix0 = ox * SW - PL;
    const int32_t row = KW * C;
    const int32_t words = (row + 3) / 4;
    if (iy0 >= 0 && iy0 + KH <= H && ix0 >= 0 && ix0 + KW <= W &&
        ((iy0 + KH - 1) * W + ix0) * C + 4 * words <= H * W * C) {
#pragma GCC unroll 8
        for (int32_t ky = 0; ky < KH; ++ky) {
            const int8_t *src = in + ((iy0 + ky) * W + ix0) * C;
#pragma GCC unroll 8
            for (int32_t i = 0; i < words; ++i) {
                te_write_u32(col + ky * row + 4 * i, te_read_u32(src + 4 * i));
            }
        }
    } else {
        te_im2col(in, col, oy * OW + ox, H, W, C, OW, KH, KW, SH, SW, PT, PL, in_zp, KP);
    }
}

/* Convolution as a GEMM over output pixels, two pixels x two output channels at a time.
 * A 1x1 stride-1 unpadded convolution reads the input pixels in place (no im2col); any other
 * gathers each pixel's receptive field through im2col (col: 2 * KP bytes). With TE_SIMD the
 * rows are then widened to int16 (col16: 2 * KP halfwords) and the weight rows are KP bytes. */
TE_KERNEL void te_conv2d(const int8_t *in, int8_t *out, int8_t *col, int16_t *col16, int32_t H,
                         int32_t W, int32_t CIN, int32_t OH, int32_t OW, int32_t COUT, int32_t KH,
                         int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL, int32_t KP,
                         const int8_t *wt, const int32_t *bias, const int32_t *mult,
                         const int32_t *shift, const int32_t *rq, int32_t off, int32_t in_zp,
                         int32_t out_zp, int32_t lo, int32_t hi) {
    (void)col16; /* unused without TE_SIMD */
    const int direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && OH == H &&
                       OW == W && KP == CIN;
    const int32_t n_px = OH * OW;
    for (int32_t p = 0; p < n_px; p += 2) {
        const int two_px = p + 1 < n_px;
        const int8_t *x0;
        const int8_t *x1;
        if (direct) {
            x0 = in + p * CIN;
            x1 = x0 + CIN;
        } else {
            te_im2col(in, col, p, H, W, CIN, OW, KH, KW, SH, SW, PT, PL, in_zp, KP);
            if (two_px) {
                te_im2col(in, col + KP, p + 1, H, W, CIN, OW, KH, KW, SH, SW, PT, PL, in_zp, KP);
            }
            x0 = col;
            x1 = col + KP;
        }
        int8_t *o0 = out + p * COUT;
        int8_t *o1 = o0 + COUT;
#if TE_SIMD
        if (two_px) { /* a literal two_px: the compiler drops the stores of the other branch */
            te_widen(x0, col16, KP, off);
            te_widen(x1, col16 + 4, KP, off);
            te_gemm16(col16, o0, o1, 1, KP, COUT, wt, bias, mult, shift, rq, out_zp, lo, hi);
        } else {
            te_widen_groups(x0, (uint32_t *)(void *)col16, KP, off, 2); /* compact */
            te_gemm16(col16, o0, o0, 0, KP, COUT, wt, bias, mult, shift, rq, out_zp, lo, hi);
        }
#else
        if (two_px) { /* literal two_px, as above */
            te_gemm8(x0, x1, o0, o1, 1, KP, COUT, wt, bias, mult, shift, rq, off, out_zp, lo, hi);
        } else {
            te_gemm8(x0, x0, o0, o0, 0, KP, COUT, wt, bias, mult, shift, rq, off, out_zp, lo, hi);
        }
#endif
    }
}

/* Fully connected: one input row (N_IN padded to KP with zero weights) against the weight rows,
 * two outputs at a time; with TE_SIMD the row is widened once (col16: KP halfwords, col: KP
 * bytes for the padded copy when N_IN != KP). */
TE_KERNEL void te_fully_connected(const int8_t *in, int8_t *out, int8_t *col, int16_t *col16,
                                  int32_t N_IN, int32_t N_OUT, int32_t KP, const int8_t *wt,
                                  const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                  const int32_t *rq, int32_t off, int32_t out_zp, int32_t lo,
                                  int32_t hi) {
    (void)col16; /* unused without TE_SIMD */
    const int8_t *x = in;
    if (KP != N_IN) {
        for (int32_t i = 0; i < N_IN; ++i) {
            col[i] = in[i];
        }
        te_fill(col + N_IN, (int8_t)(-off), KP - N_IN);
        x = col;
    }
#if TE_SIMD
    te_widen_groups(x, (uint32_t *)(void *)col16, KP, off, 2); /* compact: one row */
    te_gemm16(col16, out, out, 0, KP, N_OUT, wt, bias, mult, shift, rq, out_zp, lo, hi);
#else
    te_gemm8(x, x, out, out, 0, KP, N_OUT, wt, bias, mult, shift, rq, off, out_zp, lo, hi);
#endif
}

#if TE_SIMD
/* Two adjacent int16 pairs (four values) from a word-aligned address: one LDRD. */
static inline __attribute__((always_inline)) void te_ld2(const int16_t *p, uint32_t *a,
                                                         uint32_t *b) {
    const uint64_t v = *(const te_u64 *)(const void *)p;
    *a = (uint32_t)v;
    *b = (uint32_t)(v >> 32);
}

/* Requantize 2 * acc (fast path, rq = {multiplier, e, r} as scalars; see te_output_fast) or acc
 * (exact path, when !fast). */
typedef struct {
    int32_t fast, qm, qe, qr, m, s;
} te_dw_rq;

static inline __attribute__((always_inline)) int8_t te_dw_out2(int32_t a, te_dw_rq q,
                                                               int32_t out_zp, int32_t lo,
                                                               int32_t hi) {
    if (q.fast) {
        const int32_t t = te_smmlar(a, q.qm, q.qr);
        int32_t y = (t + (a >> 31)) >> q.qe;
#if TE_HAVE_DSP
        y = __ssat(y, 8);
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
    return te_output(a, q.m, q.s, out_zp, lo, hi);
}

/* One output row of a 3x3 depthwise window from rows p0, p1, p2 (int16), outputs ox0 .. OW-1. */
static inline __attribute__((always_inline)) void te_dw3_row_c(
    const int16_t *p0, const int16_t *p1, const int16_t *p2, int8_t *o, int32_t ox0, int32_t OW,
    int32_t S, int32_t C, const uint32_t *wv, int32_t base, te_dw_rq q,
    int32_t out_zp, int32_t lo, int32_t hi) {
    for (int32_t ox = ox0; ox < OW; ++ox) {
        uint32_t a, b;
        int32_t acc = base;
        te_ld2(p0 + S * ox, &a, &b);
        acc = te_smlad(a, wv[0], acc);
        acc = te_smlabt(b, wv[1], acc);
        te_ld2(p1 + S * ox, &a, &b);
        acc = te_smlad(a, wv[2], acc);
        acc = te_smlabt(b, wv[3], acc);
        te_ld2(p2 + S * ox, &a, &b);
        acc = te_smlad(a, wv[4], acc);
        acc = te_smlabt(b, wv[5], acc);
        o[ox * C] = te_dw_out2(acc, q, out_zp, lo, hi);
    }
}

/* 3x3 depthwise convolution (stride 1 or 2) on channel rows widened to int16 in a ring of four
 * rows (ring: 4 * RW halfwords, RW = PW rounded up to even + 2, a literal). Row py of the
 * zero-point padded channel plane is widened into slot py % 4 the first time an output row
 * needs it (each input byte is read once per layer, sign-extended with LDRSB + STRH); the
 * borders of the slots hold the zero point from the start and are never overwritten. Per window
 * row, LDRD gives four neighbouring values as (x0, x1), (x2, x3), and with the weight pairs
 * (w0, w1), (w1, w2): for stride 1, outputs ox and ox + 1 are SMLAD(x01, w01) + SMLABT(x23, w12)
 * and SMLATB(x01, w01) + SMLAD(x23, w12), two output rows at a time (four ring rows, 24 MACs per
 * four outputs); for stride 2, outputs ox and ox + 1 are SMLAD(x01, w01) + SMLABT(x23, w12) and
 * SMLAD(x23, w01) + SMLABT(x45, w12). The rows of a step sit at constant offsets from one
 * pointer into slot 0 in each of the two ring phases (first row in slot 0 or 2). With the fast
 * requantization the weights and the base are taken twice (|2 * acc| < 2^31, checked by the
 * generator), which removes the doubling from te_output_fast. bias already holds
 * bias + off * sum(w) (folded by the generator). In place (out == in) is safe: an output row only
 * overwrites slots of input rows that were already widened. The asm steps (TE_DW3_S1_QUAD,
 * TE_DW3_S1_QUADQ with the requantization and stores: 58 instructions per four outputs, and
 * TE_DW3_S2_ROW: 35 per two) are generated into te_dwk.h. */
TE_KERNEL void te_dw3_ring(const int8_t *in, int8_t *out, int16_t *ring, int32_t H, int32_t W,
                           int32_t C, int32_t OH, int32_t OW, int32_t S, int32_t PT, int32_t PL,
                           int32_t RW, const int8_t *wt, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, const int32_t *rq,
                           int32_t off, int32_t out_zp, int32_t lo, int32_t hi) {
    const int32_t PH = (OH - 1) * S + 3;
    const int32_t PW = (OW - 1) * S + 3;
    const int32_t CH = H < PH - PT ? H : PH - PT;
    const int32_t CW = W < PW - PL ? W : PW - PL;
    const int16_t zp = (int16_t)(-off);
    for (int32_t i = 0; i < 4 * RW; ++i) {
        ring[i] = zp;
    }
    const int32_t dbl = rq ? 2 : 1;
    for (int32_t c = 0; c < C; ++c) {
        const int8_t *w = wt + c * 9;
        const int32_t base = bias[c] * dbl; /* the generator folded in off * sum(w) */
        /* (w0, w1), (w1, w2) of row 0, of row 1, of row 2, then 2 * base and (for the asm row
         * loops) the fast requantization's multiplier, shift and rounding constant */
        uint32_t wv[10];
        for (int32_t k = 0; k < 3; ++k) {
            const int32_t k0 = dbl * w[3 * k], k1 = dbl * w[3 * k + 1], k2 = dbl * w[3 * k + 2];
            wv[2 * k] = (te_pack_pair(k0) & 0xffffu) | (te_pack_pair(k1) << 16);
            wv[2 * k + 1] = (te_pack_pair(k1) & 0xffffu) | (te_pack_pair(k2) << 16);
        }
        wv[6] = (uint32_t)base;
        te_dw_rq q = {0, 0, 0, 0, mult[c], shift[c]};
        if (rq) {
            q.fast = 1;
            q.qm = rq[3 * c];
            q.qe = rq[3 * c + 1];
            q.qr = rq[3 * c + 2];
            wv[7] = (uint32_t)q.qm;
            wv[8] = (uint32_t)q.qe;
            wv[9] = (uint32_t)q.qr;
        }
        int32_t next = 0; /* the next plane row to widen */
        for (int32_t oy = 0; oy < OH;) {
            /* output rows this step: two for stride 1 (when two are left), else one */
            const int32_t rows = (S == 1 && oy + 2 <= OH) ? 2 : 1;
            const int32_t top = oy * S;
            for (; next <= top + 1 + rows; ++next) {
                int16_t *d = ring + (next & 3) * RW + PL;
                const int32_t iy = next - PT;
                if (iy >= 0 && iy < CH) { /* LDRSB and STRH, both post-indexed */
                    const int8_t *src = in + iy * W * C + c;
                    const int16_t *end = d + CW;
#pragma GCC unroll 8
                    while (d < end) {
                        *d++ = *src;
                        src += C;
                    }
                } else {
                    for (int32_t ix = 0; ix < CW; ++ix) {
                        d[ix] = zp;
                    }
                }
            }
            const int16_t *q0 = ring + (top & 3) * RW;
            const int16_t *q1 = ring + ((top + 1) & 3) * RW;
            const int16_t *q2 = ring + ((top + 2) & 3) * RW;
            const int16_t *q3 = ring + ((top + 3) & 3) * RW;
            int8_t *o0 = out + oy * OW * C + c;
            int8_t *o1 = o0 + OW * C;
            int32_t ox = 0;
#if TE_HAVE_DSP && TE_SPECIALIZE
            const int16_t *p = ring; /* slot 0: every row at a non-negative offset */
            uint32_t x, y;
            /* requantized in the asm: the output offsets are literals (not in patch stages) */
            if (rows == 2 && q.fast && __builtin_constant_p(OW * C) && OW >= 2 &&
                (OW + 1) * C <= 4095) {
                const int16_t *pend = p + 2 * (OW / 2);
                if ((top & 3) == 0) {
                    TE_DW3_S1_QUADQ(0, 2 * RW, 4 * RW, 6 * RW);
                } else {
                    TE_DW3_S1_QUADQ(4 * RW, 6 * RW, 0, 2 * RW);
                }
                ox = OW / 2 * 2;
                o1 = o0 + OW * C;
            } else if (rows == 2) { /* top is even: the rows start in slot 0 or slot 2 */
                for (; ox + 2 <= OW; ox += 2) {
                    int32_t a00, a01, a10, a11;
                    if ((top & 3) == 0) {
                        TE_DW3_S1_QUAD(0, 2 * RW, 4 * RW, 6 * RW);
                    } else {
                        TE_DW3_S1_QUAD(4 * RW, 6 * RW, 0, 2 * RW);
                    }
                    o0[0] = te_dw_out2(a00, q, out_zp, lo, hi);
                    o0[C] = te_dw_out2(a01, q, out_zp, lo, hi);
                    o1[0] = te_dw_out2(a10, q, out_zp, lo, hi);
                    o1[C] = te_dw_out2(a11, q, out_zp, lo, hi);
                    o0 += 2 * C;
                    o1 += 2 * C;
                }
            } else if (S == 2 && q.fast && OW >= 2 && C <= 255) { /* top = 2 * oy: slot 0 or 2 */
                const int16_t *pend = p + 4 * (OW / 2);
                if ((top & 3) == 0) {
                    TE_DW3_S2_ROW(0, 2 * RW, 4 * RW);
                } else {
                    TE_DW3_S2_ROW(4 * RW, 6 * RW, 0);
                }
                ox = OW / 2 * 2;
            }
            o0 -= ox * C;
            o1 -= ox * C;
#endif
            te_dw3_row_c(q0, q1, q2, o0, ox, OW, S, C, wv, base, q, out_zp, lo, hi);
            if (rows == 2) {
                te_dw3_row_c(q1, q2, q3, o1, ox, OW, S, C, wv, base, q, out_zp, lo, hi);
            }
            oy += rows;
        }
    }
}
#endif

#if TE_SIMD
/* K x K depthwise convolution (K = 5 or 7, stride 1 or 2, an even output width) on channel rows
 * widened to int16 in a two-copy ring: row py of the zero-point padded plane is written to slots
 * py % K and py % K + K (ring: 2 * K * RW halfwords), so the K rows of an output row are always
 * K consecutive slots from slot top % K, at constant offsets from one pointer. Each output row
 * is one asm loop (TE_DWK_ROW_<K>_<S>, generated in te_dwk.h: per window row one LDM of its
 * K - 1 weight pairs, LDRD of the row's values, K + 1 MACs for two outputs, then the fast
 * requantization and the clamps); without the fast requantization a row runs portable C (as
 * does the host build). In place is safe as in te_dw3_ring. */
TE_KERNEL void te_dwk_ring(const int8_t *in, int8_t *out, int16_t *ring, int32_t H, int32_t W,
                           int32_t C, int32_t OH, int32_t OW, int32_t K, int32_t S, int32_t PT,
                           int32_t PL, int32_t RW, const int8_t *wt, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, const int32_t *rq,
                           int32_t off, int32_t out_zp, int32_t lo, int32_t hi) {
    const int32_t PH = (OH - 1) * S + K;
    const int32_t PW = (OW - 1) * S + K;
    const int32_t CH = H < PH - PT ? H : PH - PT;
    const int32_t CW = W < PW - PL ? W : PW - PL;
    const int16_t zp = (int16_t)(-off);
    for (int32_t i = 0; i < 2 * K * RW; ++i) {
        ring[i] = zp;
    }
    const int32_t dbl = rq ? 2 : 1;
    const int32_t h = (K - 1) / 2;
    for (int32_t c = 0; c < C; ++c) {
        const int8_t *w = wt + c * K * K;
        int32_t w_sum = 0;
        for (int32_t t = 0; t < K * K; ++t) {
            w_sum += w[t];
        }
        const int32_t base = (bias[c] + off * w_sum) * dbl;
        /* per window row: u_j = (w_2j, w_2j+1), then v_j = (w_2j+1, w_2j+2); then 2 * base and
         * the fast requantization's multiplier, shift and rounding constant */
        uint32_t wv[7 * 6 + 4];
        for (int32_t ky = 0; ky < K; ++ky) {
            const int8_t *r = w + ky * K;
            for (int32_t j = 0; j < h; ++j) {
                wv[ky * (K - 1) + j] = (te_pack_pair(dbl * r[2 * j]) & 0xffffu) |
                                       (te_pack_pair(dbl * r[2 * j + 1]) << 16);
                wv[ky * (K - 1) + h + j] = (te_pack_pair(dbl * r[2 * j + 1]) & 0xffffu) |
                                           (te_pack_pair(dbl * r[2 * j + 2]) << 16);
            }
        }
        wv[K * (K - 1)] = (uint32_t)base;
        (void)wv; /* read by the asm row loops only */
        te_dw_rq q = {0, 0, 0, 0, mult[c], shift[c]};
        if (rq) {
            q.fast = 1;
            q.qm = rq[3 * c];
            q.qe = rq[3 * c + 1];
            q.qr = rq[3 * c + 2];
            wv[K * (K - 1) + 1] = (uint32_t)q.qm;
            wv[K * (K - 1) + 2] = (uint32_t)q.qe;
            wv[K * (K - 1) + 3] = (uint32_t)q.qr;
        }
        int32_t next = 0; /* the next plane row to widen */
        for (int32_t oy = 0; oy < OH; ++oy) {
            const int32_t top = oy * S;
            for (; next < top + K; ++next) {
                int16_t *d0 = ring + (next % K) * RW + PL;
                int16_t *d1 = d0 + K * RW;
                const int32_t iy = next - PT;
                if (iy >= 0 && iy < CH) { /* LDRSB, two STRH */
                    const int8_t *src = in + iy * W * C + c;
                    const int16_t *end = d0 + CW;
#pragma GCC unroll 8
                    while (d0 < end) {
                        const int16_t v = *src;
                        *d0++ = v;
                        *d1++ = v;
                        src += C;
                    }
                } else {
                    for (int32_t ix = 0; ix < CW; ++ix) {
                        d0[ix] = zp;
                        d1[ix] = zp;
                    }
                }
            }
            const int16_t *rows = ring + (top % K) * RW;
            int8_t *const orow = out + oy * OW * C + c;
            int32_t ox0 = 0;
#if TE_HAVE_DSP && TE_SPECIALIZE
            if (q.fast && C <= 2047 && OW >= 2) {
                int8_t *o0 = orow;
                const int16_t *p = rows;
                const int16_t *pend = p + (S == 1 ? 2 : 4) * (OW / 2);
                /* An odd width's last output: for stride 2 the pair (OW - 2, OW - 1) is run
                 * again (its first output is rewritten with the same value; p stays word
                 * aligned). For stride 1 that pair would start at an odd column, so the pair
                 * (OW - 1, OW) runs instead: the spare output lands on the next output row's
                 * first pixel, which that row rewrites later (in place, that input pixel is
                 * already in the ring: PT <= K - 2). The last row's odd output runs C below. */
                int32_t pairs = OW / 2;
                if (OW % 2 && (S == 2 || (oy + 1 < OH && (in != out || PT <= K - 2)))) {
                    pairs += 1;
                }
                for (int32_t run = 0; run < 2; ++run) {
                    if (K == 5 && S == 1) {
                        TE_DWK_ROW_5_1(2 * RW);
                    } else if (K == 5) {
                        TE_DWK_ROW_5_2(2 * RW);
                    } else if (S == 1) {
                        TE_DWK_ROW_7_1(2 * RW);
                    } else {
                        TE_DWK_ROW_7_2(2 * RW);
                    }
                    if (run == 1 || pairs == OW / 2) {
                        break;
                    }
                    /* the extra pair: stride 2 restarts at OW - 2, stride 1 goes on at OW - 1 */
                    if (S == 2) {
                        p -= 2;
                        o0 -= C;
                    }
                    pend = p + (S == 1 ? 2 : 4);
                }
                ox0 = pairs == OW / 2 ? OW / 2 * 2 : OW;
            }
#endif
            for (int32_t ox = ox0; ox < OW; ++ox) {
                int32_t acc = base;
                for (int32_t ky = 0; ky < K; ++ky) {
                    const int16_t *r = rows + ky * RW + ox * S;
                    for (int32_t kx = 0; kx < K; ++kx) {
                        acc += r[kx] * (dbl * w[ky * K + kx]);
                    }
                }
                orow[ox * C] = te_dw_out2(acc, q, out_zp, lo, hi);
            }
        }
    }
}
#endif

#if TE_SIMD
#ifndef TE_DWS_MAX_OW
#define TE_DWS_MAX_OW 8
#endif
/* K x K depthwise convolution (K = 3, 5 or 7, stride S) for a tiny output plane (OW <= 8), on the
 * valid taps only. Each channel's input is widened once into plane (CH rows of RW halfwords,
 * column ix at 1 + ix) as x + off, so a tap outside the image is simply not computed (it would
 * add w * (zp + off) = 0) and the accumulator starts at the plain bias. Per output row, the
 * window rows inside the image are a run-time range; per window row, every output column's
 * valid taps are a constant range (OW, K, S, PL are literals, the column loop unrolls), taken
 * as pairs (w_2j, w_2j+1): SMLAD against the input pair read as one word (LDR, any alignment),
 * SMLABB / SMLATT when only the pair's first / second tap is valid. The weights are stored per
 * row in groups of four as (w0, w2, w1, w3) (a shorter tail (w0, w2, w1) or (w0)), so SXTB16 of
 * a word and of the word rotated by 8 give the pairs (w0, w1) and (w2, w3); the array has 4
 * bytes of slack at the end. In place is safe: the channel is copied before it is written. */
TE_KERNEL void te_dw_small(const int8_t *in, int8_t *out, int16_t *plane, int32_t H, int32_t W,
                           int32_t C, int32_t OH, int32_t OW, int32_t K, int32_t S, int32_t PT,
                           int32_t PL, int32_t RW, const int8_t *wt, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, const int32_t *rq,
                           int32_t off, int32_t out_zp, int32_t lo, int32_t hi) {
    const int32_t PH = (OH - 1) * S + K;
    const int32_t PW = (OW - 1) * S + K;
    const int32_t CH = H < PH - PT ? H : PH - PT;
    const int32_t CW = W < PW - PL ? W : PW - PL;
    for (int32_t c = 0; c < C; ++c) {
        const int8_t *src = in + c;
        for (int32_t iy = 0; iy < CH; ++iy) {
            int16_t *d = plane + 1 + iy * RW;
#pragma GCC unroll 16
            for (int32_t ix = 0; ix < CW; ++ix) {
                d[ix] = (int16_t)(src[(iy * W + ix) * C] + off);
            }
        }
        const int8_t *w = wt + c * K * K;
        const int32_t b = bias[c];
        int8_t *o = out + c;
        for (int32_t oy = 0; oy < OH; ++oy) {
            int32_t acc[TE_DWS_MAX_OW];
#pragma GCC unroll 8
            for (int32_t ox = 0; ox < OW; ++ox) {
                acc[ox] = b;
            }
            const int32_t top = oy * S - PT; /* the input row of window row 0 */
            const int32_t ky0 = top < 0 ? -top : 0;
            const int32_t ky1 = CH - top < K ? CH - top : K;
            for (int32_t ky = ky0; ky < ky1; ++ky) {
                const int16_t *r = plane + 1 + (top + ky) * RW - PL; /* r[px]: padded column */
                const int8_t *wr = w + ky * K;
                uint32_t wp[4];
#pragma GCC unroll 2
                for (int32_t m = 0; m < (K + 3) / 4; ++m) {
                    const uint32_t x = te_read_u32(wr + 4 * m);
                    wp[2 * m] = te_sxtb16(x);
                    wp[2 * m + 1] = te_sxtb16_ror8(x);
                }
#pragma GCC unroll 8
                for (int32_t ox = 0; ox < OW; ++ox) {
                    const int32_t kx0 = PL - ox * S > 0 ? PL - ox * S : 0;
                    const int32_t kx1 = CW + PL - ox * S < K ? CW + PL - ox * S : K;
#pragma GCC unroll 4
                    for (int32_t j = kx0 / 2; 2 * j < kx1; ++j) {
                        const uint32_t x = te_read_u32((const int8_t *)(r + ox * S + 2 * j));
                        if (2 * j < kx0) {
                            acc[ox] = te_smlatt(x, wp[j], acc[ox]);
                        } else if (2 * j + 1 >= kx1) {
                            acc[ox] = te_smlabb(x, wp[j], acc[ox]);
                        } else {
                            acc[ox] = te_smlad(x, wp[j], acc[ox]);
                        }
                    }
                }
            }
#pragma GCC unroll 8
            for (int32_t ox = 0; ox < OW; ++ox) {
                o[(oy * OW + ox) * C] = te_output_ch(acc[ox], c, rq, mult, shift, out_zp, lo, hi);
            }
        }
    }
}
#endif

/* Depthwise convolution, channel by channel (weights stored (C, KH, KW)), TinyEngine style.
 *
 * Each channel is first gathered into pad, a zero-padded CHW plane of PH x PW bytes
 * (PH = (OH-1)*SH + KH, PW = (OW-1)*SW + KW, plus 4 bytes of slack for word loads); its border
 * holds the input zero point, which contributes exactly zero, so every window is "inside" and no
 * tap is bounds-checked (fused padding). The input offset's contribution is folded into a
 * per-channel base (bias + off * sum(w)). Because the channel is copied out first, the output can
 * be written straight into its NHWC slots p*C + c, also when out == in (in place: those slots
 * hold only channel c's input, already copied).
 *
 * With TE_SIMD and TE_UNROLL a 3x3 window uses SMLAD on tap pairs: a word load gives four
 * neighbouring pixels a0..a3; SXTB16 splits them into (a0, a2) and (a1, a3), so for stride 1 two
 * outputs need per row two SMLADs with (w0, w2) and two halfword MACs with w1, and for stride 2
 * one SMLAD and one halfword MAC. Otherwise the taps are fully unrolled (TE_UNROLL, 3x3/5x5/7x7)
 * or a plain loop. */
TE_KERNEL void te_depthwise_conv2d(const int8_t *in, int8_t *out, int8_t *pad, int32_t H,
                                   int32_t W, int32_t C, int32_t OH, int32_t OW, int32_t KH,
                                   int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL,
                                   const int8_t *wt, const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift, const int32_t *rq, int32_t off,
                                   int32_t out_zp, int32_t lo, int32_t hi) {
    const int32_t PH = (OH - 1) * SH + KH;
    const int32_t PW = (OW - 1) * SW + KW;
    /* rows / columns of the input inside the padded plane (VALID windows may skip the last) */
    const int32_t CH = H < PH - PT ? H : PH - PT;
    const int32_t CW = W < PW - PL ? W : PW - PL;
    te_fill(pad, (int8_t)(-off), PH * PW + 4);
    int32_t wc[TE_DW_MAX_TAPS];
    for (int32_t c = 0; c < C; ++c) {
        const int8_t *w = wt + c * KH * KW;
        int32_t w_sum = 0;
        for (int32_t t = 0; t < KH * KW; ++t) {
            wc[t] = w[t];
            w_sum += w[t];
        }
        const int32_t base = bias[c] + off * w_sum;
        const int32_t m = mult[c];
        const int32_t s = shift[c];
        const int8_t *src = in + c;
        for (int32_t iy = 0; iy < CH; ++iy) {
            int8_t *dst = pad + (iy + PT) * PW + PL;
            const int8_t *row = src + iy * W * C;
            int32_t ix = 0;
            for (; ix + 4 <= CW; ix += 4) { /* four strided bytes, one word store */
                const int8_t *q = row + ix * C;
                te_write_u32(dst + ix, (uint32_t)(uint8_t)q[0] | (uint32_t)(uint8_t)q[C] << 8 |
                                           (uint32_t)(uint8_t)q[2 * C] << 16 |
                                           (uint32_t)(uint8_t)q[3 * C] << 24);
            }
            for (; ix < CW; ++ix) {
                dst[ix] = row[ix * C];
            }
        }
        int8_t *o = out + c;
#define TE_DW_OUT(acc) \
    (rq ? te_output_fast((acc), rq + 3 * c, lo, hi) : te_output((acc), m, s, out_zp, lo, hi))
#if TE_SIMD && TE_UNROLL
        if (KH == 3 && KW == 3 && (SW == 1 || SW == 2)) {
            const uint32_t wa0 = te_pack_pair(w[0]) & 0xffffu;
            const uint32_t w02_0 = wa0 | (te_pack_pair(w[2]) << 16);
            const uint32_t w02_1 = (te_pack_pair(w[3]) & 0xffffu) | (te_pack_pair(w[5]) << 16);
            const uint32_t w02_2 = (te_pack_pair(w[6]) & 0xffffu) | (te_pack_pair(w[8]) << 16);
            const uint32_t w1_01 = (te_pack_pair(w[1]) & 0xffffu) | (te_pack_pair(w[4]) << 16);
            const uint32_t w1_2 = te_pack_pair(w[7]);
            for (int32_t oy = 0; oy < OH; ++oy) {
                const int8_t *r = pad + oy * SH * PW;
                if (SW == 1) {
                    int32_t ox = 0;
                    for (; ox < OW; ox += 2) {
                        int32_t a0 = base;
                        int32_t a1 = base;
                        uint32_t x = te_read_u32(r + ox);
                        uint32_t e = te_sxtb16(x);
                        uint32_t d = te_sxtb16_ror8(x);
                        a0 = te_smlad(e, w02_0, a0);
                        a0 = te_smlabb(d, w1_01, a0);
                        a1 = te_smlad(d, w02_0, a1);
                        a1 = te_smlatb(e, w1_01, a1);
                        x = te_read_u32(r + PW + ox);
                        e = te_sxtb16(x);
                        d = te_sxtb16_ror8(x);
                        a0 = te_smlad(e, w02_1, a0);
                        a0 = te_smlabt(d, w1_01, a0);
                        a1 = te_smlad(d, w02_1, a1);
                        a1 = te_smlatt(e, w1_01, a1);
                        x = te_read_u32(r + 2 * PW + ox);
                        e = te_sxtb16(x);
                        d = te_sxtb16_ror8(x);
                        a0 = te_smlad(e, w02_2, a0);
                        a0 = te_smlabb(d, w1_2, a0);
                        a1 = te_smlad(d, w02_2, a1);
                        a1 = te_smlatb(e, w1_2, a1);
                        o[0] = TE_DW_OUT(a0);
                        if (ox + 1 < OW) {
                            o[C] = TE_DW_OUT(a1);
                        }
                        o += 2 * C;
                    }
                    o -= (ox - OW) * C; /* an odd OW stepped one pixel too far */
                } else {
                    for (int32_t ox = 0; ox < OW; ++ox) {
                        const int8_t *q = r + 2 * ox;
                        int32_t a = base;
                        uint32_t x = te_read_u32(q);
                        a = te_smlad(te_sxtb16(x), w02_0, a);
                        a = te_smlabb(te_sxtb16_ror8(x), w1_01, a);
                        x = te_read_u32(q + PW);
                        a = te_smlad(te_sxtb16(x), w02_1, a);
                        a = te_smlabt(te_sxtb16_ror8(x), w1_01, a);
                        x = te_read_u32(q + 2 * PW);
                        a = te_smlad(te_sxtb16(x), w02_2, a);
                        a = te_smlabb(te_sxtb16_ror8(x), w1_2, a);
                        o[0] = TE_DW_OUT(a);
                        o += C;
                    }
                }
            }
            continue;
        }
        if ((KW == 5 || KW == 7) && KH <= 7) {
            /* Each window row: taps 0..3 as one word and two SMLADs against (w0, w2), (w1, w3);
             * for 7 taps 4..7 likewise (w7 = 0; the plane's slack covers the extra byte), for 5
             * tap 4 alone. */
            uint32_t wp[7][4];
            for (int32_t ky = 0; ky < KH; ++ky) {
                const int8_t *r = w + ky * KW;
                wp[ky][0] = (te_pack_pair(r[0]) & 0xffffu) | (te_pack_pair(r[2]) << 16);
                wp[ky][1] = (te_pack_pair(r[1]) & 0xffffu) | (te_pack_pair(r[3]) << 16);
                wp[ky][2] = (te_pack_pair(r[4]) & 0xffffu) |
                            (KW == 7 ? te_pack_pair(r[6]) << 16 : 0u);
                wp[ky][3] = KW == 7 ? (te_pack_pair(r[5]) & 0xffffu) : 0u;
            }
            for (int32_t oy = 0; oy < OH; ++oy) {
                const int8_t *r = pad + oy * SH * PW;
                for (int32_t ox = 0; ox < OW; ++ox) {
                    const int8_t *q = r + ox * SW;
                    int32_t a = base;
#pragma GCC unroll 7
                    for (int32_t ky = 0; ky < KH; ++ky) {
                        const uint32_t x = te_read_u32(q + ky * PW);
                        a = te_smlad(te_sxtb16(x), wp[ky][0], a);
                        a = te_smlad(te_sxtb16_ror8(x), wp[ky][1], a);
                        if (KW == 7) {
                            const uint32_t y = te_read_u32(q + ky * PW + 4);
                            a = te_smlad(te_sxtb16(y), wp[ky][2], a);
                            a = te_smlad(te_sxtb16_ror8(y), wp[ky][3], a);
                        } else {
                            a += q[ky * PW + 4] * wc[ky * KW + 4];
                        }
                    }
                    o[0] = TE_DW_OUT(a);
                    o += C;
                }
            }
            continue;
        }
#endif
        for (int32_t oy = 0; oy < OH; ++oy) {
            for (int32_t ox = 0; ox < OW; ++ox) {
                const int8_t *px = pad + oy * SH * PW + ox * SW;
                int32_t acc = base;
#if TE_UNROLL
                if (KH == 3 && KW == 3) {
                    acc += te_dw_taps_3(px, wc, PW, 1);
                } else if (KH == 5 && KW == 5) {
                    acc += te_dw_taps_5(px, wc, PW, 1);
                } else if (KH == 7 && KW == 7) {
                    acc += te_dw_taps_7(px, wc, PW, 1);
                } else
#endif
                {
                    for (int32_t ky = 0; ky < KH; ++ky) {
                        for (int32_t kx = 0; kx < KW; ++kx) {
                            acc += px[ky * PW + kx] * wc[ky * KW + kx];
                        }
                    }
                }
                o[0] = TE_DW_OUT(acc);
                o += C;
            }
        }
#undef TE_DW_OUT
    }
}

/* One ADD input rescaled to the common scale, x2 = 2 * (x + offset) << 20: TF-Lite's
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x2 / 2, m), e) in 32-bit instructions
 * (SMMULR of 2 * x is the rounding high multiply of x; for e >= 1 SMMLAR adds the rounding
 * half and the sign of x2 stands in for the sign of the product, see te_output_fast). */
static inline __attribute__((always_inline)) int32_t te_add_scale(int32_t x2, int32_t m,
                                                                  int32_t e) {
    if (e == 0) {
        return te_smmulr(x2, m);
    }
    return (te_smmlar(x2, m, 1 << (e - 1)) + (x2 >> 31)) >> e;
}

/* Element-wise quantized ADD (TF-Lite semantics); out may alias either input (in place). With rq
 * (the output's te_output_fast parameters; the generator passes it only when the input shifts are
 * <= 0, i.e. e = -shift >= 0) every element takes the 32-bit path, and with the tables ta, tb
 * (indexed by the int8 value) each input's rescaling is one load. */
TE_KERNEL void te_add(const int8_t *a, const int8_t *b, int8_t *out, int32_t N, int32_t a_off,
                      int32_t a_mult, int32_t a_shift, int32_t b_off, int32_t b_mult,
                      int32_t b_shift, int32_t o_mult, int32_t o_shift, const int32_t *rq,
                      const int32_t *ta, const int32_t *tb, int32_t out_zp, int32_t lo,
                      int32_t hi) {
    if (rq && ta) { /* ta[x], tb[x]: te_add_scale of x, for x = -128 .. 127 */
#pragma GCC unroll 4
        for (int32_t i = 0; i < N; ++i) {
            out[i] = te_output_fast(ta[a[i]] + tb[b[i]], rq, lo, hi);
        }
        return;
    }
    if (rq) {
        for (int32_t i = 0; i < N; ++i) {
            const int32_t va = te_add_scale((a[i] + a_off) * (1 << 21), a_mult, -a_shift);
            const int32_t vb = te_add_scale((b[i] + b_off) * (1 << 21), b_mult, -b_shift);
            out[i] = te_output_fast(va + vb, rq, lo, hi);
        }
        return;
    }
    for (int32_t i = 0; i < N; ++i) {
        const int32_t va = te_requantize((a[i] + a_off) * (1 << 20), a_mult, a_shift);
        const int32_t vb = te_requantize((b[i] + b_off) * (1 << 20), b_mult, b_shift);
        out[i] = te_output(va + vb, o_mult, o_shift, out_zp, lo, hi);
    }
}

/* Average (is_max == 0) or max pooling; the average's count excludes padding and rounds half
 * away from zero, as TF-Lite. */
TE_KERNEL void te_pool(const int8_t *in, int8_t *out, int32_t H, int32_t W, int32_t C, int32_t OH,
                       int32_t OW, int32_t FH, int32_t FW, int32_t SH, int32_t SW, int32_t PT,
                       int32_t PL, int32_t lo, int32_t hi, int is_max) {
#if TE_SIMD
    if (!is_max && OH == 1 && OW == 1 && FH == H && FW == W && PT == 0 && PL == 0 &&
        C % 4 == 0 && H * W <= 255) {
        /* global average: four channels at a time, one LDR and two SXTAB16 per pixel into
         * halfword sums (|sum| <= 255 * 128 fits), then TF-Lite's rounding division */
        const int32_t n = H * W;
        for (int32_t c = 0; c < C; c += 4) {
            uint32_t se = 0, so = 0;
            const int8_t *px = in + c;
            for (int32_t i = 0; i < n; ++i) {
                const uint32_t v = te_read_u32(px);
                se = te_sxtab16(se, v);
                so = te_sxtab16_ror8(so, v);
                px += C;
            }
            const int32_t sums[4] = {(int16_t)(se & 0xffffu), (int16_t)(so & 0xffffu),
                                     (int16_t)(se >> 16), (int16_t)(so >> 16)};
            for (int32_t k = 0; k < 4; ++k) {
                int32_t acc = sums[k];
                acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                acc = acc < lo ? lo : acc;
                acc = acc > hi ? hi : acc;
                out[c + k] = (int8_t)acc;
            }
        }
        return;
    }
#endif
    for (int32_t oy = 0; oy < OH; ++oy) {
        const int32_t iy0 = oy * SH - PT;
        const int32_t y0 = iy0 < 0 ? 0 : iy0;
        const int32_t y1 = iy0 + FH > H ? H : iy0 + FH;
        for (int32_t ox = 0; ox < OW; ++ox) {
            const int32_t ix0 = ox * SW - PL;
            const int32_t x0 = ix0 < 0 ? 0 : ix0;
            const int32_t x1 = ix0 + FW > W ? W : ix0 + FW;
            const int32_t count = (y1 - y0) * (x1 - x0);
            for (int32_t c = 0; c < C; ++c) {
                int32_t acc = is_max ? -128 : 0;
                for (int32_t iy = y0; iy < y1; ++iy) {
                    const int8_t *px = in + (iy * W) * C + c;
                    for (int32_t ix = x0; ix < x1; ++ix) {
                        const int32_t v = px[ix * C];
                        if (is_max) {
                            acc = v > acc ? v : acc;
                        } else {
                            acc += v;
                        }
                    }
                }
                if (!is_max && count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                acc = acc < lo ? lo : acc;
                acc = acc > hi ? hi : acc;
                *out++ = (int8_t)acc;
            }
        }
    }
}

/* PAD in H and W with the zero point (only when it could not be fused into a convolution). */
TE_KERNEL void te_pad(const int8_t *in, int8_t *out, int32_t H, int32_t W, int32_t C,
                      int32_t OH, int32_t OW, int32_t PT, int32_t PL, int32_t value) {
    for (int32_t oy = 0; oy < OH; ++oy) {
        for (int32_t ox = 0; ox < OW; ++ox) {
            const int32_t iy = oy - PT;
            const int32_t ix = ox - PL;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                const int8_t *src = in + (iy * W + ix) * C;
                for (int32_t c = 0; c < C; ++c) {
                    out[c] = src[c];
                }
            } else {
                te_fill(out, (int8_t)value, C);
            }
            out += C;
        }
    }
}

#endif /* KERNELS_TE_H */
