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
 * products), TE_UNROLL (fully unrolled 3x3/5x5/7x7 depthwise taps, from te_dw_unrolled.h).
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

/* Largest depthwise kernel (taps) the local weight copy holds; the generator checks it. */
#ifndef TE_DW_MAX_TAPS
#define TE_DW_MAX_TAPS 49
#endif

/* Inner products of one or two input rows (pixels) with two weight rows (output channels):
 * acc[i][j] += sum_k (x_i[k] + off) * w_j[k]. With TE_SIMD, four int8 values are loaded as one
 * word and split into two sign-extended halfword pairs with SXTB16 (bytes 0,2 and, after a ROR by
 * 8, bytes 1,3); inputs and weights are split identically so the pairs line up and each SMLAD
 * does two multiply-accumulates. The input offset is added to a pair with SADD16 (skipped when it
 * has been folded into the bias, off == 0). */
static inline __attribute__((always_inline)) void te_dot(const int8_t *x0, const int8_t *x1,
                                                         const int8_t *w0, const int8_t *w1,
                                                         int32_t k_len, int32_t off,
                                                         int two_px, int32_t acc[4]) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int32_t k = 0;
#if TE_SIMD
    const uint32_t off2 = te_pack_pair(off);
    for (; k + 4 <= k_len; k += 4) {
        const uint32_t xa = te_read_u32(x0 + k);
        uint32_t xa_e = te_sxtb16(xa);
        uint32_t xa_o = te_sxtb16(te_ror(xa, 8));
        if (off != 0) {
            xa_e = te_sadd16(xa_e, off2);
            xa_o = te_sadd16(xa_o, off2);
        }
        const uint32_t wa = te_read_u32(w0 + k);
        const uint32_t wa_e = te_sxtb16(wa);
        const uint32_t wa_o = te_sxtb16(te_ror(wa, 8));
        const uint32_t wb = te_read_u32(w1 + k);
        const uint32_t wb_e = te_sxtb16(wb);
        const uint32_t wb_o = te_sxtb16(te_ror(wb, 8));
        a00 = te_smlad(xa_e, wa_e, a00);
        a00 = te_smlad(xa_o, wa_o, a00);
        a10 = te_smlad(xa_e, wb_e, a10);
        a10 = te_smlad(xa_o, wb_o, a10);
        if (two_px) {
            const uint32_t xb = te_read_u32(x1 + k);
            uint32_t xb_e = te_sxtb16(xb);
            uint32_t xb_o = te_sxtb16(te_ror(xb, 8));
            if (off != 0) {
                xb_e = te_sadd16(xb_e, off2);
                xb_o = te_sadd16(xb_o, off2);
            }
            a01 = te_smlad(xb_e, wa_e, a01);
            a01 = te_smlad(xb_o, wa_o, a01);
            a11 = te_smlad(xb_e, wb_e, a11);
            a11 = te_smlad(xb_o, wb_o, a11);
        }
    }
#endif
    for (; k < k_len; ++k) {
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

/* Gather the receptive field of output pixel p (ky, kx, c order, matching the weights) into col;
 * taps outside the image get the input zero point, i.e. a real zero (fused padding). */
static inline __attribute__((always_inline)) void te_im2col(
    const int8_t *in, int8_t *col, int32_t p, int32_t H, int32_t W, int32_t C, int32_t OW,
    int32_t KH, int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL, int32_t in_zp) {
    const int32_t oy = p / OW;
    const int32_t ox = p - oy * OW;
    const int32_t iy0 = oy * SH - PT;
    const int32_t ix0 = ox * SW - PL;
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

/* Convolution as a GEMM over output pixels, two pixels x two output channels at a time.
 * A 1x1 stride-1 unpadded convolution reads the input pixels in place (no im2col); any other
 * reads each pixel's receptive field through a 2-pixel im2col buffer (col, 2*KH*KW*CIN bytes). */
TE_KERNEL void te_conv2d(const int8_t *in, int8_t *out, int8_t *col, int32_t H, int32_t W,
                         int32_t CIN, int32_t OH, int32_t OW, int32_t COUT, int32_t KH, int32_t KW,
                         int32_t SH, int32_t SW, int32_t PT, int32_t PL, const int8_t *wt,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int32_t off, int32_t in_zp, int32_t out_zp, int32_t lo, int32_t hi) {
    const int32_t k_len = KH * KW * CIN;
    const int direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && OH == H &&
                       OW == W;
    const int32_t n_px = OH * OW;
    for (int32_t p = 0; p < n_px; p += 2) {
        const int two_px = p + 1 < n_px;
        const int8_t *x0;
        const int8_t *x1;
        if (direct) {
            x0 = in + p * CIN;
            x1 = x0 + CIN;
        } else {
            te_im2col(in, col, p, H, W, CIN, OW, KH, KW, SH, SW, PT, PL, in_zp);
            if (two_px) {
                te_im2col(in, col + k_len, p + 1, H, W, CIN, OW, KH, KW, SH, SW, PT, PL, in_zp);
            }
            x0 = col;
            x1 = col + k_len;
        }
        int8_t *o0 = out + p * COUT;
        int8_t *o1 = o0 + COUT;
        for (int32_t oc = 0; oc < COUT; oc += 2) {
            const int two_ch = oc + 1 < COUT;
            const int8_t *w0 = wt + oc * k_len;
            const int8_t *w1 = two_ch ? w0 + k_len : w0;
            const int32_t b1 = two_ch ? bias[oc + 1] : 0;
            int32_t acc[4] = {bias[oc], bias[oc], b1, b1};
            if (two_px) {
                te_dot(x0, x1, w0, w1, k_len, off, 1, acc);
            } else {
                te_dot(x0, x0, w0, w1, k_len, off, 0, acc);
            }
            o0[oc] = te_output(acc[0], mult[oc], shift[oc], out_zp, lo, hi);
            if (two_px) {
                o1[oc] = te_output(acc[1], mult[oc], shift[oc], out_zp, lo, hi);
            }
            if (two_ch) {
                o0[oc + 1] = te_output(acc[2], mult[oc + 1], shift[oc + 1], out_zp, lo, hi);
                if (two_px) {
                    o1[oc + 1] = te_output(acc[3], mult[oc + 1], shift[oc + 1], out_zp, lo, hi);
                }
            }
        }
    }
}

/* Fully connected: one input row against the weight rows, two outputs at a time. */
TE_KERNEL void te_fully_connected(const int8_t *in, int8_t *out, int32_t N_IN, int32_t N_OUT,
                                  const int8_t *wt, const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int32_t off, int32_t out_zp, int32_t lo,
                                  int32_t hi) {
    for (int32_t o = 0; o < N_OUT; o += 2) {
        const int two_ch = o + 1 < N_OUT;
        const int8_t *w0 = wt + o * N_IN;
        const int8_t *w1 = two_ch ? w0 + N_IN : w0;
        int32_t acc[4] = {bias[o], 0, two_ch ? bias[o + 1] : 0, 0};
        te_dot(in, in, w0, w1, N_IN, off, 0, acc);
        out[o] = te_output(acc[0], mult[o], shift[o], out_zp, lo, hi);
        if (two_ch) {
            out[o + 1] = te_output(acc[2], mult[o + 1], shift[o + 1], out_zp, lo, hi);
        }
    }
}

/* Depthwise convolution, channel by channel (weights stored (C, KH, KW)).
 *
 * In place (scratch != 0, out == in): channel c of the output is computed into scratch
 * (OH*OW bytes) and then written into the channel's NHWC slots p*C + c, which only channel c's
 * computation ever reads, so the output overwrites the input without a second tensor (also for
 * stride 2, whose output is smaller). Out of place (scratch == 0) it writes the output directly.
 * Windows fully inside the image use the unrolled taps (offset term precomputed per channel);
 * border windows use a bounds-checked loop (fused padding). */
TE_KERNEL void te_depthwise_conv2d(const int8_t *in, int8_t *out, int8_t *scratch, int32_t H,
                                   int32_t W, int32_t C, int32_t OH, int32_t OW, int32_t KH,
                                   int32_t KW, int32_t SH, int32_t SW, int32_t PT, int32_t PL,
                                   const int8_t *wt, const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift, int32_t off, int32_t out_zp, int32_t lo,
                                   int32_t hi) {
    const int32_t row = W * C;
    int32_t wc[TE_DW_MAX_TAPS];
    for (int32_t c = 0; c < C; ++c) {
        /* the channel's taps in locals: the stores below cannot alias them */
        int32_t w_sum = 0;
        for (int32_t t = 0; t < KH * KW; ++t) {
            wc[t] = wt[c * KH * KW + t];
            w_sum += wc[t];
        }
        const int32_t base = bias[c] + off * w_sum;
        const int32_t m = mult[c];
        const int32_t s = shift[c];
        const int8_t *in_c = in + c;
        for (int32_t oy = 0; oy < OH; ++oy) {
            const int32_t iy0 = oy * SH - PT;
            for (int32_t ox = 0; ox < OW; ++ox) {
                const int32_t ix0 = ox * SW - PL;
                int32_t acc;
                const int inside = iy0 >= 0 && iy0 + KH <= H && ix0 >= 0 && ix0 + KW <= W;
#if TE_UNROLL
                if (inside && KH == 3 && KW == 3) {
                    acc = base + te_dw_taps_3(in_c + iy0 * row + ix0 * C, wc, row, C);
                } else if (inside && KH == 5 && KW == 5) {
                    acc = base + te_dw_taps_5(in_c + iy0 * row + ix0 * C, wc, row, C);
                } else if (inside && KH == 7 && KW == 7) {
                    acc = base + te_dw_taps_7(in_c + iy0 * row + ix0 * C, wc, row, C);
                } else
#endif
                    if (inside) {
                    acc = base;
                    const int8_t *px = in_c + iy0 * row + ix0 * C;
                    for (int32_t ky = 0; ky < KH; ++ky) {
                        for (int32_t kx = 0; kx < KW; ++kx) {
                            acc += px[ky * row + kx * C] * wc[ky * KW + kx];
                        }
                    }
                } else {
                    acc = bias[c];
                    for (int32_t ky = 0; ky < KH; ++ky) {
                        const int32_t iy = iy0 + ky;
                        if (iy < 0 || iy >= H) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < KW; ++kx) {
                            const int32_t ix = ix0 + kx;
                            if (ix < 0 || ix >= W) {
                                continue;
                            }
                            acc += (in_c[iy * row + ix * C] + off) * wc[ky * KW + kx];
                        }
                    }
                }
                const int8_t y = te_output(acc, m, s, out_zp, lo, hi);
                if (scratch) {
                    scratch[oy * OW + ox] = y;
                } else {
                    out[(oy * OW + ox) * C + c] = y;
                }
            }
        }
        if (scratch) {
            for (int32_t p = 0; p < OH * OW; ++p) {
                out[p * C + c] = scratch[p];
            }
        }
    }
}

/* Element-wise quantized ADD (TF-Lite semantics); out may alias either input (in place). */
TE_KERNEL void te_add(const int8_t *a, const int8_t *b, int8_t *out, int32_t N, int32_t a_off,
                      int32_t a_mult, int32_t a_shift, int32_t b_off, int32_t b_mult,
                      int32_t b_shift, int32_t o_mult, int32_t o_shift, int32_t out_zp, int32_t lo,
                      int32_t hi) {
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
