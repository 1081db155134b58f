"""TFLM's integer TANH and PRELU reference kernels (tensorflow/lite/kernels/internal/reference/integer_ops/tanh.h,
reference/prelu.h), bit for bit.

int8 TANH rescales the input to Q4.27, evaluates gemmlowp's fixed-point tanh (exp of -2|x|, then (1 - e) /
(1 + e) by Newton-Raphson) and rounds the Q0.31 result to the output's fixed 1/128 scale. int16 TANH uses
the int16 sigmoid table (tanh(x) = 2 sigmoid(2x) - 1) with linear interpolation between its entries; its
output scale is fixed at 2^-15.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.execute import fixedpoint as fp

INT32_MAX = (1 << 31) - 1

#: TFLM's sigmoid_table_uint16 (tensorflow/lite/kernels/internal/common.h): sigmoid(i / 24) in 0.16 fixed point
#: for i = 0..255, as TFLM ships it (tuned entries, not a plain rounding of the formula); the int16 LOGISTIC and
#: TANH kernels interpolate in it.
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], dtype=np.int64)  # fmt: skip


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp (1 - a) / (1 + a) for a Q0.31 value in [0, 1): the Newton-Raphson reciprocal of
    :func:`fixedpoint.one_over_one_plus_x_for_x_in_0_1` in Q2.29, then (x - 1) rescaled to Q0.31."""
    half_denominator = fp.rounding_half_sum(a, INT32_MAX)
    x = fp._add32(1515870810, fp.saturating_rounding_doubling_high_mul(half_denominator, -1010580540), "48/17 - ...")
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus = fp._add32(one_q2, -fp.saturating_rounding_doubling_high_mul(half_denominator, x), "1 - d x")
        step = fp.saturating_rounding_multiply_by_pot(fp.saturating_rounding_doubling_high_mul(x, one_minus), 2)
        x = fp._add32(x, step, "Newton step")
    return fp.saturating_rounding_multiply_by_pot(x - one_q2, 2)


def tanh_fixed_point(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh of a Q<integer_bits> value, in Q0.31: -tanh(-|a|) is (1 - e) / (1 + e) with
    e = exp(-2|a|) (the raw value read with one more integer bit), the sign put back, exactly 0 at 0."""
    a = np.asarray(a, np.int64)
    negative_abs = np.where(a < 0, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(fp.exp_on_negative_values(negative_abs, integer_bits + 1))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def tanh_int8_params(input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, input_range_radius) of TFLM's int8 TANH: the input scale times 2^27
    (Q4.27) split by frexp, M = round(q 2^31) (TfLiteRound: half away from zero)."""
    q, left_shift = math.frexp(float(input_scale) * float(1 << 27))
    multiplier = fp.round_half_away(q * (1 << 31))
    return multiplier, left_shift, fp.calculate_input_radius(4, left_shift)


def tanh_int8(x, *, input_zero_point: int, input_multiplier: int, input_left_shift: int, input_range_radius: int):
    """int8 TANH; the output is read at scale 1/128, zero point 0."""
    v = np.asarray(x, np.int64) - int(input_zero_point)
    inner = np.clip(v, -input_range_radius + 1, input_range_radius - 1)  # (saturated lanes are overwritten below)
    q4 = fp.multiply_by_quantized_multiplier(inner, input_multiplier, input_left_shift, kernel="tanh")
    y = np.clip(fp.rounding_divide_by_pot(tanh_fixed_point(q4, 4), 24), -128, 127)
    y = np.where(v <= -input_range_radius, -128, np.where(v >= input_range_radius, 127, y))
    return y.astype(np.int8)


def _checked_log2(scale: float) -> tuple[bool, int]:
    """TFLite CheckedLog2: (whether the scale is a power of two within 1e-3 in log2, the rounded log2)."""
    log = math.log(scale) / math.log(2.0)
    rounded = round(log)
    return abs(log - rounded) < 1e-3, int(rounded)


def tanh_int16_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) of TFLM's int16 TANH Prepare. A power-of-two input scale of 2^-12 or
    2^-11 takes the multiplier 0 (3 << shift at run time); otherwise the scale times 3 * 4096 is doubled until
    above 32767 / 2 and truncated. The output scale must be 2^-15."""
    pot, log2 = _checked_log2(float(input_scale))
    left_shift = 12 + log2
    if pot and left_shift in (0, 1):
        multiplier = 0
    else:
        real = float(input_scale) * 4096.0 * 3.0
        left_shift = 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)
    out_pot, out_log2 = _checked_log2(float(output_scale))
    if not out_pot or out_log2 != -15:
        raise ValueError(f"int16 TANH needs the output scale 2^-15, not {output_scale}")
    return multiplier, left_shift


def tanh_int16(x, *, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """int16 TANH: the input rescaled to the table's 1/(3 * 4096) grid, |x| looked up and interpolated in the
    sigmoid table (tanh = 2 sigmoid(2x) - 1 folded into the constants), the sign restored, back to int16."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    round_ = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    v = (np.asarray(x, np.int64) * input_multiplier + round_) >> input_left_shift
    a = np.abs(v)
    uh = a >> 8
    index = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE_UINT16[index], SIGMOID_TABLE_UINT16[index + 1]
    result = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


def prelu(x, alpha, *, input_zero_point: int, alpha_zero_point: int, output_zero_point: int, multiplier_1: int,
          shift_1: int, multiplier_2: int, shift_2: int, output_dtype) -> np.ndarray:  # fmt: skip
    """PRELU (reference_ops::BroadcastPrelu4DSlow): x - zp_in at or above zero is rescaled by (M1, s1), below
    zero multiplied by alpha - zp_alpha and rescaled by (M2, s2); plus the output zero point, saturated."""
    v = np.asarray(x, np.int64) - int(input_zero_point)
    a = np.asarray(alpha, np.int64) - int(alpha_zero_point)
    v, a = np.broadcast_arrays(v, a)
    positive = fp.multiply_by_quantized_multiplier(np.where(v >= 0, v, 0), multiplier_1, shift_1, kernel="prelu")
    negative = fp.multiply_by_quantized_multiplier(np.where(v < 0, v * a, 0), multiplier_2, shift_2, kernel="prelu")
    info = np.iinfo(output_dtype)
    y = np.where(v >= 0, positive, negative) + int(output_zero_point)
    return np.clip(y, info.min, info.max).astype(output_dtype)
