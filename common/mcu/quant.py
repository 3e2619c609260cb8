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


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 ``(scale, zero_point)`` covering ``[lo, hi]`` (always including 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        return 1.0, 0
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
