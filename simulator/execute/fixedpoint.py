"""Fixed-point primitives of TensorFlow Lite (Micro) integer kernels, vectorised in numpy.

Every function works on int64 arrays holding the values the C code keeps in int32 (or int64), so products of
two int32 values are exact and nothing wraps behind our back. Where the C code would overflow (undefined
behaviour, or silent wrap on the target) we raise :class:`FixedPointOverflow` instead of guessing.

The rounding vocabulary of the module:

* SRDHM, ``saturating_rounding_doubling_high_mul``: round-half-up of ``a * b / 2^31`` (gemmlowp).
* RDBPOT, ``rounding_divide_by_pot``: round-half-away-from-zero of ``x / 2^e`` (gemmlowp).
* MBQM, ``multiply_by_quantized_multiplier``: ``x * M * 2^shift / 2^31``; TFLite's default build rounds twice
  (SRDHM then RDBPOT), ``TFLITE_SINGLE_ROUNDING`` builds round once (half up).

Shift convention throughout: a positive shift is a left shift (multiply by ``2^shift``), as in TFLite's
``QuantizeMultiplier``; CMSIS-NN test data uses the same sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from simulator.errors import EdgesimError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1


class FixedPointOverflow(EdgesimError):
    """A value left the integer range the runtime's C code computes it in (it would wrap or be undefined there).

    ``kernel`` names the kernel or primitive, ``worst`` is the most extreme offending value.
    """

    def __init__(self, kernel: str, what: str, worst: int | float, count: int, limits: tuple[int, int]):
        self.kernel = kernel
        self.worst = _extreme(worst)
        self.count = int(count)
        super().__init__(
            f"{kernel}: {what} left the range [{limits[0]}, {limits[1]}] in {count} element(s) (worst {worst}); "
            "the runtime would wrap or hit undefined behaviour here"
        )


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def check_range(values: np.ndarray, lo: int, hi: int, kernel: str, what: str, exc=FixedPointOverflow) -> None:
    """Raise ``exc`` (a FixedPointOverflow subclass) when any of ``values`` is outside ``[lo, hi]``."""
    values = np.asarray(values)
    if values.size == 0:
        return
    bad = (values < lo) | (values > hi)
    if bad.any():
        offending = values[bad]
        worst = offending.max() if offending.max() > hi else offending.min()
        raise exc(kernel, what, _extreme(worst), int(bad.sum()), (lo, hi))


def _extreme(value) -> int | float:
    """An offending value as an exact integer, or as the float it is when it has no integer (a float32 input
    of 1e300 arrives as inf; ``int(inf)`` would raise OverflowError instead of naming the overflow)."""
    value = float(value) if isinstance(value, float | np.floating) else value
    return value if isinstance(value, float) and not math.isfinite(value) else int(value)


def round_half_away(value: float) -> int:
    """std::round / TfLiteRound on a double: halves go away from zero (Python's round() goes to even)."""
    a = abs(value)
    f = math.floor(a)
    r = f + 1 if a - f >= 0.5 else f
    return int(math.copysign(r, value)) if r else 0


# --------------------------------------------------------------------------------------------------------------
# Multiplier derivation
# --------------------------------------------------------------------------------------------------------------


def quantize_multiplier(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real ~= M * 2^shift / 2^31`` with ``M`` in [2^30, 2^31).

    frexp splits ``real`` into q in [0.5, 1) and an exponent; ``M = round_half_away(q * 2^31)``. A rounding up to
    exactly 2^31 is folded into the exponent. Multipliers below about 2^-31 are flushed to ``(0, 0)`` (TFLite
    does so to keep right shifts <= 31). Single-rounding builds also cap the shift at 30.
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return INT32_MAX, 30
    return q_fixed, shift


def quantize_multipliers(reals, *, single_rounding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array (per-channel scales): returns int64 arrays (M, shift)."""
    pairs = [quantize_multiplier(r, single_rounding=single_rounding) for r in np.ravel(np.asarray(reals, float))]
    shape = np.shape(reals)
    m = np.array([p[0] for p in pairs], dtype=np.int64).reshape(shape)
    s = np.array([p[1] for p in pairs], dtype=np.int64).reshape(shape)
    return m, s


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: as quantize_multiplier, for reals in (0, 1) (shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    m, s = quantize_multiplier(real)
    if s > 0:
        raise ValueError(f"multiplier {real} gave a left shift {s}")
    return m, s


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne: as quantize_multiplier, for reals > 1 (shift >= 0)."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real} is not > 1")
    m, s = quantize_multiplier(real)
    if s < 0:
        raise ValueError(f"multiplier {real} gave a right shift {s}")
    return m, s


def conv_per_channel_multipliers(input_scale: float, filter_scales, output_scale: float):
    """Per-output-channel (M, shift) of conv / depthwise / per-channel FC: the product is formed in double."""
    reals = [float(input_scale) * float(s) / float(output_scale) for s in np.ravel(filter_scales)]
    return quantize_multipliers(reals)


def fully_connected_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """Per-tensor FC (M, shift): TFLite rounds the input*filter scale product to float32 before dividing."""
    product = float(np.float32(np.float32(input_scale) * np.float32(filter_scale)))
    return quantize_multiplier(product / float(output_scale))


def add_params(scale1: float, scale2: float, scale_out: float, *, left_shift: int = 20) -> dict[str, int]:
    """Requantisation parameters of TFLite's quantized ADD (left_shift 20 for int8, 15 for int16).

    Both inputs are brought onto twice the larger input scale, at ``left_shift`` extra fractional bits, summed,
    and the sum is rescaled to the output scale.
    """
    twice_max = 2.0 * max(float(scale1), float(scale2))
    m1, s1 = quantize_multiplier_smaller_than_one_exp(float(scale1) / twice_max)
    m2, s2 = quantize_multiplier_smaller_than_one_exp(float(scale2) / twice_max)
    mo, so = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * float(scale_out)))
    return {
        "left_shift": left_shift,
        "input1_multiplier": m1,
        "input1_shift": s1,
        "input2_multiplier": m2,
        "input2_shift": s2,
        "output_multiplier": mo,
        "output_shift": so,
    }


def mul_multiplier(scale1: float, scale2: float, scale_out: float) -> tuple[int, int]:
    """(M, shift) of quantized MUL: s1 * s2 / s_out in double."""
    return quantize_multiplier(float(scale1) * float(scale2) / float(scale_out))


def softmax_int8_params(input_scale: float, beta: float = 1.0, *, input_integer_bits: int = 5) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) of TFLM's int8 softmax (PreprocessSoftmaxScaling).

    The input difference is scaled to a Q5.26 value; ``diff_min`` is the most negative difference whose
    rescaled value still fits, every smaller one contributes exp() = 0.
    """
    real = min(float(beta) * float(input_scale) * (1 << (31 - input_integer_bits)), (1 << 31) - 1.0)
    m, left_shift = quantize_multiplier_greater_than_one(real)
    return m, left_shift, -calculate_input_radius(input_integer_bits, left_shift)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """Largest input difference (in input units) that rescales to within the fixed-point range (floored)."""
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return int(math.floor(max_input_rescaled))


def softmax_int16_params(input_scale: float, beta: float = 1.0) -> tuple[int, int]:
    """(M, shift) of TFLite's int16 softmax: the input difference is mapped so [-10, 0] spans [-65535, 0]."""
    return quantize_multiplier(float(input_scale) * float(beta) / (10.0 / 65535.0))


def fused_activation_range(activation: str | None, scale: float, zero_point: int, dtype) -> tuple[int, int]:
    """(act_min, act_max) of a fused NONE / RELU / RELU6 / RELU_N1_TO_1 in the output's integer domain.

    TFLite quantises the bounds as it quantises data, in float32: ``zp + round_half_away(f / scale)``, and
    intersects them with the type's range.
    """
    info = np.iinfo(dtype)
    qmin, qmax = int(info.min), int(info.max)

    def q(f: float) -> int:
        return int(zero_point) + round_half_away(float(np.float32(f) / np.float32(scale)))

    bounds = {None: (None, None), "NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0)}
    bounds["RELU_N1_TO_1"] = (-1.0, 1.0)
    key = activation.upper() if isinstance(activation, str) else activation
    if key not in bounds:
        raise ValueError(f"unknown fused activation {activation!r}")
    lo, hi = bounds[key]
    return (qmin if lo is None else max(qmin, q(lo))), (qmax if hi is None else min(qmax, q(hi)))


# --------------------------------------------------------------------------------------------------------------
# gemmlowp primitives
# --------------------------------------------------------------------------------------------------------------


def _trunc_shift(v: np.ndarray, n: int) -> np.ndarray:
    """C integer division by 2^n (truncation towards zero) on int64."""
    return np.where(v >= 0, v >> n, -((-v) >> n))


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """SRDHM: the high 32 bits of ``2 * a * b``, rounded half up; the one overflow (-2^31)^2 saturates.

    Both operands are int32 values. The 64-bit product is nudged by +2^30 (or 1 - 2^30 when negative) and
    divided by 2^31 with C's truncating division, which together round ``a*b/2^31`` half up.
    """
    a = _i64(a)
    b = _i64(b)
    check_range(a, INT32_MIN, INT32_MAX, "saturating_rounding_doubling_high_mul", "operand a")
    check_range(b, INT32_MIN, INT32_MAX, "saturating_rounding_doubling_high_mul", "operand b")
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _trunc_shift(ab + nudge, 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """RDBPOT: ``x / 2^exponent`` rounded half away from zero (ties of negatives go down).

    gemmlowp compares the dropped bits with half of the divisor, the threshold raised by one for negative x.
    TFLite asserts ``0 <= exponent <= 31``; here the int64 arithmetic stays exact up to 62, so wider exponents
    return the true rounded quotient (which for int32 ``x`` and exponent >= 32 is 0, or -1 for exactly -2^31
    at 32). Kernels that must match the C code check the exponent themselves.
    """
    x = _i64(x)
    e = _i64(exponent)
    if np.any(e < 0) or np.any(e > 62):
        raise ValueError(f"rounding_divide_by_pot exponent out of [0, 62]: {exponent}")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT: saturating left shift for exponent > 0, RDBPOT for < 0."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = x << exponent
    shifted = np.where(x > threshold, np.int64(INT32_MAX), shifted)
    return np.where(x < -threshold, np.int64(INT32_MIN), shifted)


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero."""
    total = _i64(a) + _i64(b)
    sign = np.where(total >= 0, np.int64(1), np.int64(-1))
    return _trunc_shift(total + sign, 1)


def _add32(a, b, what: str) -> np.ndarray:
    total = _i64(a) + _i64(b)
    check_range(total, INT32_MIN, INT32_MAX, "gemmlowp fixed point", what)
    return total


# --------------------------------------------------------------------------------------------------------------
# Multiply by quantized multiplier
# --------------------------------------------------------------------------------------------------------------


def multiply_by_quantized_multiplier(
    x, multiplier, shift, *, single_rounding: bool = False, kernel: str = "multiply_by_quantized_multiplier"
) -> np.ndarray:
    """MBQM for int32 ``x``: ``x * multiplier * 2^shift / 2^31`` as TFLite computes it.

    Default (TFLite Micro, CMSIS-NN default build): left-shift x by max(shift, 0) (in int32; an overflow there
    raises), SRDHM by the multiplier (round half up), then RDBPOT by max(-shift, 0) (round half away): two
    roundings. ``single_rounding`` reproduces TFLITE_SINGLE_ROUNDING: one 64-bit product, one half-up
    rounding. Shifts must lie in [-31, 30] (what quantize_multiplier produces).
    """
    x = _i64(x)
    m = _i64(multiplier)
    s = _i64(shift)
    check_range(x, INT32_MIN, INT32_MAX, kernel, "the input of the requantisation")
    if np.any(m < 0) or np.any(m > INT32_MAX):
        raise ValueError(f"{kernel}: quantized multiplier outside [0, 2^31 - 1]")
    if np.any(s < -31) or np.any(s > 30):
        raise ValueError(f"{kernel}: shift outside [-31, 30] (TFLite never produces one; it flushes to (0, 0))")
    if single_rounding:
        total = 31 - s
        result = (x * m + (np.int64(1) << (total - 1))) >> total
        check_range(result, INT32_MIN, INT32_MAX, kernel, "the requantised value")
        return result
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = x << left
    check_range(shifted, INT32_MIN, INT32_MAX, kernel, "x * 2^shift (left shift before the multiply)")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift, **kw) -> np.ndarray:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp: SRDHM then RDBPOT by -left_shift (left_shift <= 0)."""
    if np.any(_i64(left_shift) > 0):
        raise ValueError("smaller-than-one multiplier with a positive shift")
    return multiply_by_quantized_multiplier(x, multiplier, left_shift, **kw)


def multiply_by_quantized_multiplier_greater_than_one(
    x, multiplier, left_shift, *, kernel: str = "multiply_by_quantized_multiplier_greater_than_one"
) -> np.ndarray:
    """MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x * 2^left_shift, M), no right shift."""
    x = _i64(x)
    shifted = x << _i64(left_shift)
    check_range(shifted, INT32_MIN, INT32_MAX, kernel, "x * 2^left_shift")
    return saturating_rounding_doubling_high_mul(shifted, multiplier)


def reduce_multiplier(multiplier) -> np.ndarray:
    """The 16-bit multiplier of the int64 MBQM: the top 16 bits of M rounded, capped at 0x7FFF."""
    m = _i64(multiplier)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, np.int64(0x7FFF))


def multiply_by_quantized_multiplier_int64(
    x, multiplier, shift, *, kernel: str = "multiply_by_quantized_multiplier_int64"
) -> np.ndarray:
    """MBQM for int64 accumulators (16x8 kernels with int64 bias): one rounding, 16-bit multiplier.

    TFLite reduces M to 16 bits (``reduce_multiplier``) so that ``x * M`` fits in 64 bits for |x| < 2^47, then
    shifts right by ``15 - shift`` with a half-up rounding constant. x outside [-2^47, 2^47) or a result
    outside int32 raise (the C code asserts / truncates).
    """
    x = _i64(x)
    s = _i64(shift)
    check_range(x, -(1 << 47), (1 << 47) - 1, kernel, "the int64 accumulator")
    if np.any(s < -31) or np.any(s > 7):
        raise ValueError(f"{kernel}: shift outside [-31, 7]")
    total = 15 - s
    result = (x * reduce_multiplier(multiplier) + (np.int64(1) << (total - 1))) >> total
    check_range(result, INT32_MIN, INT32_MAX, kernel, "the requantised value")
    return result


# --------------------------------------------------------------------------------------------------------------
# gemmlowp transcendental functions (TFLM int8 softmax, logistic, tanh)
# --------------------------------------------------------------------------------------------------------------

# exp(-2^k) in Q0.31 for k = -2 .. 4: the barrel shifter of exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a Q0.31 value in [-1/4, 0): a 4th-order Taylor polynomial around -1/8, in Q0.31."""
    a = _i64(a)
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = _add32(a, 1 << 28, "a + 1/8")
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_doubling_high_mul(_add32(x4_over_4, x3, "x^4/4 + x^3"), constant_1_over_3)
    poly = saturating_rounding_multiply_by_pot(_add32(poly, x2, "polynomial"), -1)
    correction = saturating_rounding_doubling_high_mul(constant_term, _add32(x, poly, "x + polynomial"))
    return _add32(constant_term, correction, "exp(-1/8) * (1 + ...)")


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) in Q0.31 for a <= 0 given in Q<integer_bits>.<31-integer_bits>.

    The argument is split into a part in [-1/4, 0) (polynomial) and multiples of powers of two, whose
    exponentials are multiplied in from a table; exp(0) is exactly the Q0.31 maximum.
    """
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder & (np.int64(1) << (frac_bits + exponent))) != 0
            result = np.where(bit, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0: exp() is 0 in Q0.31 below it
        result = np.where(a < clamp, np.int64(0), result)
    return np.where(a == 0, np.int64(INT32_MAX), result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp 1 / (1 + a) for a Q0.31 value in [0, 1): three Newton-Raphson steps in Q2.29, result Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _add32(1515870810, saturating_rounding_doubling_high_mul(half_denominator, -1010580540), "48/17 - 32/17 d")
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = _add32(one_q2, -half_denominator_times_x, "1 - d x")
        step = saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, one_minus), 2)
        x = _add32(x, step, "Newton step")
    return saturating_rounding_multiply_by_pot(x, 1)


def count_leading_zeros32(x) -> np.ndarray:
    """Leading zero bits of x seen as uint32 (32 for zero)."""
    x = _i64(x) & 0xFFFFFFFF
    bit_length = np.zeros(x.shape, dtype=np.int64)
    for k in range(32):
        bit_length += x >= (np.int64(1) << k)
    return 32 - bit_length


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: 1/x for a positive Q<digits> value, as a Q0.31 scale and a count of extra bits.

    x is normalised to [1, 2) by its leading-zero count; ``one_over_one_plus_x`` of the fractional part gives
    the scale, and ``num_bits_over_unit`` says how far x was above 1.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


# --------------------------------------------------------------------------------------------------------------
# int16 lookup tables (TFLite int16 softmax)
# --------------------------------------------------------------------------------------------------------------


def gen_int16_lut(
    func: Callable[[float], float],
    input_min: float,
    input_max: float,
    output_min: float = -1.0,
    output_max: float = 1.0,
) -> np.ndarray:
    """TFLite gen_lut for int16 inputs: 512 segments + 1 slope entry, in double precision.

    Each entry is the sampled value minus half the error the linear interpolation would make at the segment
    midpoint, so interpolated lookups are centred on the true curve.
    """
    nb_steps = 512
    step = (input_max - input_min) / nb_steps
    half_step = step / 2.0
    scaling = 65536.0 / (output_max - output_min)
    table = np.zeros(nb_steps + 1, dtype=np.int64)
    for i in range(nb_steps):
        val = func(input_min + i * step)
        val_midpoint = func(input_min + i * step + half_step)
        val_next = func(input_min + (i + 1) * step)
        sample_val = round_half_away(val * scaling)
        midpoint_interp_val = round_half_away((val_next * scaling + round_half_away(val * scaling)) / 2.0)
        midpoint_val = round_half_away(val_midpoint * scaling)
        bias = round_half_away((midpoint_interp_val - midpoint_val) / 2.0)
        table[i] = min(max(sample_val - bias, INT16_MIN), INT16_MAX)
    table[nb_steps] = min(max(round_half_away(func(input_max) * scaling), INT16_MIN), INT16_MAX)
    return table


def int16_lut_lookup(value, lut: np.ndarray) -> np.ndarray:
    """Linear interpolation in a 513-entry int16 table: the top 9 bits pick the segment, the low 7 interpolate."""
    value = _i64(value)
    lut = _i64(lut)
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = lut[index]
    slope = lut[index + 1] - base
    return base + ((slope * offset + 64) >> 7)


def exp_lut_int16() -> np.ndarray:
    """The exp() table of int16 softmax: exp on [-10, 0]."""
    return gen_int16_lut(math.exp, -10.0, 0.0)


def one_over_one_plus_x_lut_int16() -> np.ndarray:
    """The 1/(1+x) table of int16 softmax: on [0, 1]."""
    return gen_int16_lut(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# int8 LOGISTIC and HARD_SWISH (TFLM reference kernels)
# --------------------------------------------------------------------------------------------------------------


def logistic_fixed_point(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1 / (1 + exp(-a)) in Q0.31 for a Q<integer_bits> value of any sign.

    The positive branch is 1 / (1 + exp(-|a|)); a negative input takes its complement against the Q0.31
    "one" (INT32_MAX, as 1.0 itself is not representable), and exactly zero gives one half."""
    a = _i64(a)
    positive = a > 0
    on_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-np.abs(a), integer_bits))
    result = np.where(positive, on_positive, INT32_MAX - on_positive)
    return np.where(a == 0, np.int64(1 << 30), result)


def logistic_int8_params(input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, input_range_radius) of TFLM's int8 LOGISTIC.

    The input is rescaled to Q4.27: ``input_scale * 2^27`` split by frexp with ``M = round_half_away(q 2^31)``
    and no fold of a rounding up to 2^31 (TFLM's Prepare does it by hand, unlike QuantizeMultiplier); inputs at
    or beyond the radius saturate to the ends of int8."""
    q, left_shift = math.frexp(float(input_scale) * float(1 << 27))
    multiplier = round_half_away(q * (1 << 31))
    if multiplier > INT32_MAX or not 0 <= left_shift <= 30:
        raise EdgesimError(f"logistic: input scale {input_scale} gives a multiplier TFLM cannot represent")
    return multiplier, left_shift, calculate_input_radius(4, left_shift)


def downscale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier: the top 16 bits of a Q0.31 multiplier, rounded, capped."""
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (int(multiplier) + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> dict[str, int]:
    """HardSwishParams of TFLM's int8 HARD_SWISH: int16 multipliers and exponents of two rescalings.

    The input is moved to a "hi-res" scale s_in / 128; from there the output multiplier goes to the output
    scale and the "reluish" multiplier to a scale on which 3.0 is 32768. Both ratios are float32 divisions
    (TFLite computes them on floats before widening to double)."""
    hires = np.float32(1.0 / 128.0) * np.float32(input_scale)
    output_m, output_e = quantize_multiplier(float(np.float32(hires / np.float32(output_scale))))
    reluish_m, reluish_e = quantize_multiplier(float(np.float32(hires / np.float32(3.0 / 32768.0))))
    if output_e > 0:
        raise EdgesimError(
            f"hard-swish: output scale {output_scale} is below input scale / 128 ({input_scale} / 128); "
            "TFLite requires a non-positive output exponent"
        )
    return {
        "output_multiplier": downscale_int32_to_int16_multiplier(output_m),
        "output_exponent": output_e,
        "reluish_multiplier": downscale_int32_to_int16_multiplier(reluish_m),
        "reluish_exponent": reluish_e,
    }


def saturating_rounding_doubling_high_mul_int16(a, b) -> np.ndarray:
    """gemmlowp SRDHM for int16: ``a * b / 2^15`` rounded half up; (-2^15)^2 saturates to INT16_MAX."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 14), np.int64(1 - (1 << 14)))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), np.int64(INT16_MAX), _trunc_shift(ab + nudge, 15))


def saturating_doubling_high_mul_int16(a, b) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul (ARM SQDMULH): ``a * b / 2^15`` truncated towards zero."""
    a, b = _i64(a), _i64(b)
    return np.where((a == INT16_MIN) & (b == INT16_MIN), np.int64(INT16_MAX), _trunc_shift(a * b, 15))


def saturating_left_shift_int16(x, amount: int) -> np.ndarray:
    """TFLite SaturatingLeftShift: ``x * 2^amount`` clamped to int16."""
    return np.clip(_i64(x) << amount, INT16_MIN, INT16_MAX)
