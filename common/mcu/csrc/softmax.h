/* TF-Lite's int8 softmax (reference_ops::Softmax, as TF-Lite Micro runs it): exp() and 1/x in
 * 32-bit fixed point with gemmlowp's routines. A "Qn" value is an int32 with n integer bits.
 * Output scale 1/256, zero point -128. Shared by both kernel flavours. */
#ifndef TE_SOFTMAX_H
#define TE_SOFTMAX_H

#include <stdint.h>

#define TE_SM_DIFF_BITS 5   /* input differences are Q5 */
#define TE_SM_ACCUM_BITS 12 /* the sum of exps is Q12 */

static inline int32_t te_sm_wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t te_sm_wrap_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingDoublingHighMul. */
static inline int32_t te_sm_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t sum = ab + (ab >= 0 ? ((int64_t)1 << 30) : (int64_t)(1 - (1 << 30)));
    return (int32_t)((sum >= 0 ? sum : sum + (((int64_t)1 << 31) - 1)) >> 31);
}

/* gemmlowp RoundingDivideByPOT for 0 <= e; e >= 32 rounds every int32 to 0. */
static inline int32_t te_sm_rdbp(int32_t x, int32_t e) {
    if (e >= 32) {
        return 0;
    }
    if (e == 0) {
        return x;
    }
    int32_t mask = (int32_t)((1u << e) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e>. */
static inline int32_t te_sm_sat_shift(int32_t x, int32_t e) {
    if (e <= 0) {
        return te_sm_rdbp(x, -e);
    }
    int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a Q0 a in [-1/4, 0): Taylor expansion around -1/8. */
static inline int32_t te_sm_exp_on_interval(int32_t a) {
    const int32_t constant_term = 1895147668;
    const int32_t one_third = 715827883;
    int32_t x = te_sm_wrap_add(a, 1 << 28);
    int32_t x2 = te_sm_srdhm(x, x);
    int32_t x3 = te_sm_srdhm(x2, x);
    int32_t x4 = te_sm_srdhm(x2, x2);
    int32_t x4_over_4 = te_sm_sat_shift(x4, -2);
    int32_t poly = te_sm_sat_shift(
        te_sm_wrap_add(te_sm_srdhm(te_sm_wrap_add(x4_over_4, x3), one_third), x2), -1);
    return te_sm_wrap_add(constant_term, te_sm_srdhm(constant_term, te_sm_wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: Q5 in, Q0 out. */
static inline int32_t te_sm_exp_on_negative_values(int32_t a) {
    static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308,
                                     39332535,   720401,     242};
    const int32_t frac_bits = 31 - TE_SM_DIFF_BITS;
    const int32_t one_quarter = 1 << (frac_bits - 2);
    int32_t a_mod = te_sm_wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = te_sm_exp_on_interval(te_sm_sat_shift(a_mod, TE_SM_DIFF_BITS));
    int32_t remainder = te_sm_wrap_sub(a_mod, a);
    for (int32_t k = -2; k < TE_SM_DIFF_BITS; ++k) {
        uint32_t bit = 1u << (frac_bits + k);
        if ((uint32_t)remainder & bit) {
            result = te_sm_srdhm(result, mults[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Newton-Raphson division, Q0 in and out. */
static inline int32_t te_sm_one_over_one_plus_x(int32_t a) {
    int64_t s = (int64_t)a + INT32_MAX;
    int64_t t = s + (s >= 0 ? 1 : -1);
    int32_t half_denominator = (int32_t)(t >= 0 ? t >> 1 : -((-t) >> 1));
    int32_t x = te_sm_wrap_add(1515870810, te_sm_srdhm(half_denominator, -1010580540));
    const int32_t one_q2 = 1 << 29;
    for (int i = 0; i < 3; ++i) {
        int32_t one_minus = te_sm_wrap_sub(one_q2, te_sm_srdhm(half_denominator, x));
        x = te_sm_wrap_add(x, te_sm_sat_shift(te_sm_srdhm(x, one_minus), 2));
    }
    return te_sm_sat_shift(x, 1);
}

static inline int32_t te_sm_clz(uint32_t v) {
    int32_t n = 0;
    while (n < 32 && !(v & 0x80000000u)) {
        v <<= 1;
        ++n;
    }
    return n;
}

/* Softmax over the last axis of rows x depth int8 values (rows are independent). */
static inline void te_softmax(const int8_t *in, int8_t *out, int32_t rows, int32_t depth,
                              int32_t multiplier, int32_t shift, int32_t diff_min) {
    for (int32_t r = 0; r < rows; ++r, in += depth, out += depth) {
        int32_t max = -128;
        for (int32_t i = 0; i < depth; ++i) {
            max = in[i] > max ? in[i] : max;
        }
        uint32_t total = 0;
        for (int32_t i = 0; i < depth; ++i) {
            int32_t diff = in[i] - max;
            if (diff >= diff_min) {
                int32_t scaled = te_sm_srdhm((int32_t)((uint32_t)diff << shift), multiplier);
                total += (uint32_t)te_sm_sat_shift(te_sm_exp_on_negative_values(scaled),
                                                   -TE_SM_ACCUM_BITS);
            }
        }
        int32_t bits = te_sm_clz(total);
        int32_t num_bits_over_unit = TE_SM_ACCUM_BITS - bits;
        int32_t shifted = (int32_t)((total << bits) - 0x80000000u);
        int32_t scale = te_sm_one_over_one_plus_x(shifted);
        for (int32_t i = 0; i < depth; ++i) {
            int32_t diff = in[i] - max;
            int32_t y = -128;
            if (diff >= diff_min) {
                int32_t scaled = te_sm_srdhm((int32_t)((uint32_t)diff << shift), multiplier);
                int32_t e = te_sm_exp_on_negative_values(scaled);
                y = te_sm_rdbp(te_sm_srdhm(scale, e), num_bits_over_unit + 31 - 8) - 128;
                y = y < -128 ? -128 : y;
                y = y > 127 ? 127 : y;
            }
            out[i] = (int8_t)y;
        }
    }
}

#endif /* TE_SOFTMAX_H */
