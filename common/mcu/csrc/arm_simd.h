/* Dual 16-bit MAC helpers (ARMv7E-M DSP extension) with bit-identical portable fallbacks.
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP, e.g. Cortex-M4/M7) these map to the ACLE
 * intrinsics SXTB16, SADD16 and SMLAD from <arm_acle.h>; elsewhere (the host build) they are plain
 * C with exactly the same results, so the host harness exercises the very same SIMD code path.
 */
#ifndef ARM_SIMD_H
#define ARM_SIMD_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TE_HAVE_DSP 1
#else
#define TE_HAVE_DSP 0
#endif

/* Rotate right by n (1..31); compilers turn this into a single ROR. */
static inline uint32_t te_ror(uint32_t x, uint32_t n) { return (x >> n) | (x << (32u - n)); }

/* A 4-byte load from any address (Cortex-M7 and x86 allow unaligned word loads). */
struct te_unaligned_u32 {
    uint32_t v;
} __attribute__((packed));

static inline uint32_t te_read_u32(const int8_t *p) {
    return ((const struct te_unaligned_u32 *)(const void *)p)->v;
}

/* A 4-byte store to any address. */
static inline void te_write_u32(int8_t *p, uint32_t v) {
    ((struct te_unaligned_u32 *)(void *)p)->v = v;
}

#if TE_HAVE_DSP
/* Sign-extend bytes 0 and 2 into two halfwords. */
static inline uint32_t te_sxtb16(uint32_t x) { return __sxtb16(x); }
/* Halfword-wise add (wrapping). */
static inline uint32_t te_sadd16(uint32_t a, uint32_t b) { return __sadd16(a, b); }
/* acc + a.lo * b.lo + a.hi * b.hi (signed halfwords). */
static inline int32_t te_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)__smlad(a, b, (uint32_t)acc);
}
/* SXTB16 of x rotated right by 8 (bytes 1 and 3), one instruction. */
static inline uint32_t te_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* (a * b + 2^31) >> 32: the rounded high word of the 64-bit product (SMMULR). */
static inline int32_t te_smmulr(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* r + ((a * b + 2^31) >> 32): SMMULR with an accumulator added to the high word (SMMLAR). */
static inline int32_t te_smmlar(int32_t a, int32_t b, int32_t r) {
    int32_t y;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(a), "r"(b), "r"(r));
    return y;
}
/* Halfword-wise acc + SXTB16(x): bytes 0 and 2 of x sign-extended and added (SXTAB16). */
static inline uint32_t te_sxtab16(uint32_t acc, uint32_t x) { return __sxtab16(acc, x); }
/* The same for bytes 1 and 3 (SXTAB16 with ROR #8). */
static inline uint32_t te_sxtab16_ror8(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}
/* acc + a.lo * b.lo (signed halfwords, SMLABB). */
static inline int32_t te_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)__smlabb((int32_t)a, (int32_t)b, acc);
}
/* acc + a.hi * b.lo (signed halfwords, SMLATB). */
static inline int32_t te_smlatb(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)__smlatb((int32_t)a, (int32_t)b, acc);
}
/* acc + a.lo * b.hi (signed halfwords, SMLABT). */
static inline int32_t te_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)__smlabt((int32_t)a, (int32_t)b, acc);
}
/* acc + a.hi * b.hi (signed halfwords, SMLATT). */
static inline int32_t te_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)__smlatt((int32_t)a, (int32_t)b, acc);
}
#else
static inline uint32_t te_sxtb16(uint32_t x) {
    uint32_t lo = (uint32_t)(int32_t)(int8_t)(x & 0xffu) & 0xffffu;
    uint32_t hi = (uint32_t)(int32_t)(int8_t)((x >> 16) & 0xffu) & 0xffffu;
    return lo | (hi << 16);
}
static inline uint32_t te_sadd16(uint32_t a, uint32_t b) {
    uint32_t lo = (a + b) & 0xffffu;
    uint32_t hi = ((a >> 16) + (b >> 16)) & 0xffffu;
    return lo | (hi << 16);
}
static inline int32_t te_smlad(uint32_t a, uint32_t b, int32_t acc) {
    int32_t p0 = (int32_t)(int16_t)(a & 0xffffu) * (int32_t)(int16_t)(b & 0xffffu);
    int32_t p1 = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
static inline uint32_t te_sxtb16_ror8(uint32_t x) { return te_sxtb16(te_ror(x, 8)); }
static inline uint32_t te_sxtab16(uint32_t acc, uint32_t x) { return te_sadd16(acc, te_sxtb16(x)); }
static inline uint32_t te_sxtab16_ror8(uint32_t acc, uint32_t x) {
    return te_sadd16(acc, te_sxtb16_ror8(x));
}
static inline int32_t te_smmulr(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
}
static inline int32_t te_smmlar(int32_t a, int32_t b, int32_t r) {
    return (int32_t)((((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32) + r);
}
static inline int32_t te_lo16(uint32_t a) { return (int32_t)(int16_t)(a & 0xffffu); }
static inline int32_t te_hi16(uint32_t a) { return (int32_t)(int16_t)(a >> 16); }
static inline int32_t te_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_lo16(b)));
}
static inline int32_t te_smlatb(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(te_hi16(a) * te_lo16(b)));
}
static inline int32_t te_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lo16(a) * te_hi16(b)));
}
static inline int32_t te_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(te_hi16(a) * te_hi16(b)));
}
#endif

/* Byte-wise signed maximum of four int8 lanes (SSUB8 sets the GE flags, SEL picks a or b). */
static inline uint32_t te_max8x4(uint32_t a, uint32_t b) {
#if TE_HAVE_DSP
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
#else
    uint32_t r = 0;
    for (uint32_t k = 0; k < 32u; k += 8u) {
        const int8_t x = (int8_t)((a >> k) & 0xffu);
        const int8_t y = (int8_t)((b >> k) & 0xffu);
        r |= ((uint32_t)(uint8_t)(x > y ? x : y)) << k;
    }
    return r;
#endif
}

/* Two halfwords both equal to v (for adding an input offset to a pair). */
static inline uint32_t te_pack_pair(int32_t v) {
    uint32_t h = (uint32_t)v & 0xffffu;
    return h | (h << 16);
}

#endif /* ARM_SIMD_H */
