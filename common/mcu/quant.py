"""TF-Lite's integer arithmetic, bit for bit, in numpy.

An int8 network computes in int32 and rescales every accumulator to the int8 output with a
fixed-point multiplier: ``real_multiplier = input_scale * weight_scale / output_scale`` is stored
as a 32-bit ``quantized_multiplier`` and a power-of-two ``shift`` (:func:`quantize_multiplier`),
and applied with "double rounding" (:func:`multiply_by_quantized_multiplier`: a rounding
doubling high multiply, then a rounding right shift), exactly as TF-Lite's reference kernels
(``tensorflow/lite/kernels/internal/common.h``) and TF-Lite Micro do. Every function here works
element-wise on numpy arrays (int64 inside, so nothing overflows silently) and is checked against
the tflite-micro interpreter in the tests.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real ~= quantized_multiplier * 2^(shift - 31)`` with a Q31 multiplier in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)  # real = fraction * 2^shift, fraction in [0.5, 1)
    q = round(fraction * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), int(shift)


def requant_params(
    in_scale: float, w_scale: np.ndarray, out_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(multiplier, shift)`` arrays for ``in_scale * w_scale / out_scale``."""
    pairs = [
        quantize_multiplier(float(np.float64(in_scale) * np.float64(s) / np.float64(out_scale)))
        for s in np.atleast_1d(w_scale)
    ]
    return np.array([m for m, _ in pairs], dtype=np.int64), np.array(
        [s for _, s in pairs], dtype=np.int64
    )


def _trunc_div(x: np.ndarray, d: int) -> np.ndarray:
    """C integer division (rounds toward zero)."""
    return np.where(x >= 0, x // d, -((-x) // d))


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div(ab + nudge, 1 << 31)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: divide by 2^exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """TF-Lite's MultiplyByQuantizedMultiplier (double rounding), element-wise."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.asarray(x, dtype=np.int64) * (np.int64(1) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TF-Lite's CalculateActivationRangeQuantized for int8 outputs."""
    lo, hi = -128, 127
    if activation == "relu":
        lo = max(lo, zero_point + round(0.0 / scale))
    elif activation == "relu6":
        lo = max(lo, zero_point + round(0.0 / scale))
        hi = min(hi, zero_point + round(6.0 / scale))
    elif activation != "none":
        raise ValueError(f"unsupported fused activation {activation!r}")
    return int(lo), int(hi)


MIN_RANGE = 1e-3  # a (near-)dead activation still gets a scale TF-Lite can work with


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 ``(scale, zero_point)`` covering ``[lo, hi]`` (always including 0).

    The range is at least :data:`MIN_RANGE` wide: TF-Lite Micro refuses a tensor whose scale is
    so small that a fused ReLU6's bound, 6 / scale, overflows int32.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < MIN_RANGE:
        hi = lo + MIN_RANGE
    scale = (hi - lo) / 255.0
    zero_point = round(-128 - lo / scale)
    return float(scale), int(np.clip(zero_point, -128, 127))


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 weights (range [-127, 127], zero point 0) and their scales."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    absmax = np.abs(w).max(axis=reduce)
    scales = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


# ------------------------------------------------------------------ softmax (gemmlowp fixed point)
# TF-Lite's int8 softmax (reference_ops::Softmax, which TF-Lite Micro runs for int8 -> int8)
# computes exp() and 1/x in 32-bit fixed point with gemmlowp's routines. Below, a value "Qn" is
# an int32 raw number with n integer bits (real = raw / 2^(31-n)). Every helper works element-wise
# on int64 arrays holding int32 values and reproduces gemmlowp's saturation and rounding.
_SOFTMAX_DIFF_BITS = 5  # kScaledDiffIntegerBits: input differences are Q5
_SOFTMAX_ACCUM_BITS = 12  # kAccumulationIntegerBits: the sum of exps is Q12


def _wrap32(x: np.ndarray) -> np.ndarray:
    """int32 two's-complement wrap-around (gemmlowp's int32 + and - do not saturate)."""
    return ((np.asarray(x, dtype=np.int64) + 2**31) % 2**32) - 2**31


def _srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return saturating_rounding_doubling_high_mul(a, b)


def _saturating_shift(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>."""
    x = np.asarray(x, dtype=np.int64)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    if exponent == 0:
        return x
    threshold = (1 << (31 - exponent)) - 1
    y = x << exponent
    y = np.where(x > threshold, INT32_MAX, y)
    return np.where(x < -threshold, INT32_MIN, y)


def _exp_on_interval(a: np.ndarray) -> np.ndarray:
    """exp(a) for a Q0 ``a`` in [-1/4, 0): Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0
    one_third = 715827883
    x = _wrap32(a + (1 << 28))  # a + 1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _saturating_shift(x4, -2)
    poly = _saturating_shift(_wrap32(_srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return _wrap32(constant_term + _srdhm(constant_term, _wrap32(x + poly)))


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """gemmlowp's exp_on_negative_values for a Q5 input; the result is Q0."""
    frac_bits = 31 - _SOFTMAX_DIFF_BITS
    one_quarter = 1 << (frac_bits - 2)
    a = np.asarray(a, dtype=np.int64)
    a_mod = _wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval(_saturating_shift(a_mod, _SOFTMAX_DIFF_BITS))
    remainder = _wrap32(a_mod - a)
    # exp(-2^k) for k = -2..4, applied for each set bit of the remainder (a barrel shifter).
    for k, mult in zip(
        range(-2, 5),
        (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242),
        strict=True,
    ):
        if k < _SOFTMAX_DIFF_BITS:
            bit = 1 << (frac_bits + k)
            result = np.where(remainder & bit, _srdhm(result, mult), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's one_over_one_plus_x_for_x_in_0_1: Newton-Raphson division, Q0 in and out."""
    s = np.asarray(a, dtype=np.int64) + INT32_MAX
    half_denominator = _trunc_div(s + np.where(s >= 0, 1, -1), 2)
    x = _wrap32(1515870810 + _srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d (Q2)
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus = _wrap32(one_q2 - _srdhm(half_denominator, x))
        x = _wrap32(x + _saturating_shift(_srdhm(x, one_minus), 2))
    return _saturating_shift(x, 1)  # ExactMulByPot<-1> then Rescale<0>


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """``(input_multiplier, input_left_shift, diff_min)`` as TF-Lite's PreprocessSoftmaxScaling."""
    real = min(beta * input_scale * (1 << (31 - _SOFTMAX_DIFF_BITS)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError("softmax input scale too small for TF-Lite's int8 softmax")
    max_rescaled = (
        1.0 * ((1 << _SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - _SOFTMAX_DIFF_BITS)) / (1 << shift)
    )
    return multiplier, shift, -math.floor(max_rescaled)


def softmax_int8(x: np.ndarray, beta: float, input_scale: float) -> np.ndarray:
    """Int8 softmax over the last axis; the output has scale 1/256 and zero point -128."""
    multiplier, shift, diff_min = softmax_params(beta, input_scale)
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = _srdhm(np.where(valid, diff, 0) * (1 << shift), multiplier)
    exps = exp_on_negative_values(scaled)
    total = np.where(valid, _saturating_shift(exps, -_SOFTMAX_ACCUM_BITS), 0).sum(
        axis=-1, keepdims=True
    )
    total = _wrap32(total)
    # GetReciprocal: normalise the sum to [1, 2) and invert it.
    bits = np.array([32 - int(v).bit_length() for v in total.reshape(-1)]).reshape(total.shape)
    num_bits_over_unit = _SOFTMAX_ACCUM_BITS - bits
    shifted = _wrap32(
        ((total.astype(np.uint64) << bits.astype(np.uint64)) & 0xFFFFFFFF).astype(np.int64)
        - (1 << 31)
    )
    scale = _one_over_one_plus_x(shifted)
    y = rounding_divide_by_pot(_srdhm(scale, exps), num_bits_over_unit + 31 - 8) - 128
    return np.where(valid, np.clip(y, -128, 127), -128).astype(np.int8)
