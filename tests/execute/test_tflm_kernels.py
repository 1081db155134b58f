"""The fast paths of the TFLM kernels against plain integer loops written from the reference kernels' definitions.

The kernels route integer sums through float BLAS (whole or in nibbles), pool over padded strided views, keep
per-filter caches and requantize in prepared float blocks; each path is forced here and compared, exactly, with an int64 computation that
follows the reference kernel's loop structure.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.execute import tflm_kernels as k


def _reference_conv_acc(x, zp, w, stride, padding, dilation):
    """sum over in-image taps of (x - zp) * w, one output pixel at a time (ConvPerChannel's loops)."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + 2 * pw - ((kw - 1) * dw + 1)) // sw + 1
    acc = np.zeros((n, oh, ow, o), np.int64)
    xs = x.astype(np.int64) - zp
    w64 = w.astype(np.int64)
    for y in range(oh):
        for xo in range(ow):
            for fy in range(kh):
                for fx in range(kw):
                    iy, ix = y * sh - ph + fy * dh, xo * sw - pw + fx * dw
                    if 0 <= iy < h and 0 <= ix < wd:
                        acc[:, y, xo, :] += xs[:, iy, ix, :] @ w64[:, fy, fx, :].T
    return acc


def _heavy_filter(rng, o, kh, kw, c):
    """int8 filter rows whose subset sums with a 255-wide input exceed 2^24: one float32 matmul is not exact."""
    w = rng.integers(-127, 128, size=(o, kh, kw, c)).astype(np.int8)
    w[:, :, :, : c // 2] = np.abs(w[:, :, :, : c // 2].astype(np.int16)).astype(np.int8)  # many positive taps
    return w


def test_filter_cache_serves_inputs_of_other_ranges():
    """A cache filled on one input must not change the result on another (it holds nothing of the input)."""
    rng = np.random.default_rng(11)
    w = _heavy_filter(rng, 4, 3, 3, 128)
    cache = k.FilterCache()
    params = dict(stride=(1, 1), dilation=(1, 1), padding=(1, 1), output_hw=None)
    for lo, hi in ((-3, 4), (-128, 128), (0, 2)):
        x = rng.integers(lo, hi, size=(1, 5, 5, 128)).astype(np.int8)
        got = k._conv_accumulate(x, -128, w, 1, cache=cache, **params)
        want = _reference_conv_acc(x, -128, w, (1, 1), (1, 1), (1, 1))
        np.testing.assert_array_equal(np.asarray(got).astype(np.int64), want)


def test_conv2d_with_and_without_cache_agree():
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(2, 7, 7, 64)).astype(np.int8)
    w = rng.integers(-127, 128, size=(16, 3, 3, 64)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=16)
    params = dict(
        output_multiplier=np.full(16, 1 << 30), output_shift=np.full(16, -9), input_zero_point=-3,
        output_zero_point=5, stride=(2, 2), padding=(1, 1),
    )  # fmt: skip
    cache = k.FilterCache()
    first = k.conv2d(x, w, bias, **params, filter_cache=cache)
    again = k.conv2d(x, w, bias, **params, filter_cache=cache)
    plain = k.conv2d(x, w, bias, **params)
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, plain)


def _reference_pool(x, kh, kw, sh, sw, ph, pw, oh, ow, reduce):
    """Each window's in-image taps, reduced (the reference kernels skip out-of-image taps)."""
    n, h, w, c = x.shape
    out = np.zeros((n, oh, ow, c), np.int64)
    for y in range(oh):
        for xo in range(ow):
            y0, x0 = y * sh - ph, xo * sw - pw
            win = x[:, max(y0, 0) : min(y0 + kh, h), max(x0, 0) : min(x0 + kw, w), :].astype(np.int64)
            out[:, y, xo, :] = reduce(win.reshape(n, -1, c))
    return out


def _round_half_away_mean(win):
    total, count = win.sum(axis=1), win.shape[1]
    return np.where(total >= 0, (total + count // 2) // count, -((-total + count // 2) // count))


@pytest.mark.parametrize(
    "kernel, stride, padding, out_hw",
    [((3, 3), (2, 2), (1, 1), (4, 4)), ((2, 2), (2, 2), (0, 0), (3, 4)), ((3, 2), (1, 2), (1, 0), (7, 4))],
)
def test_pools_equal_in_image_taps(kernel, stride, padding, out_hw):
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, size=(2, 7, 8, 5)).astype(np.int8)
    args = dict(stride=stride, padding=padding, output_hw=out_hw)
    geometry = (*kernel, *stride, *padding, *out_hw)
    np.testing.assert_array_equal(
        k.max_pool2d(x, kernel, **args), _reference_pool(x, *geometry, lambda v: v.max(axis=1))
    )
    np.testing.assert_array_equal(
        k.average_pool2d(x, kernel, **args), _reference_pool(x, *geometry, _round_half_away_mean)
    )


def test_average_pool_half_ties_round_away_from_zero():
    # windows of two values: (1 + 2) / 2 = 1.5 -> 2 and (-1 - 2) / 2 = -1.5 -> -2 (RHAZ), not 2 and -1 (RHU)
    x = np.array([1, 2, -1, -2], np.int8).reshape(1, 1, 4, 1)
    got = k.average_pool2d(x, (1, 2), stride=(1, 2))
    np.testing.assert_array_equal(got.ravel(), [2, -2])


@pytest.mark.parametrize("channels", [1, 7])
def test_blocked_requantization_equals_the_fixed_point_primitives(channels):
    """The float64 block path (float accumulators from BLAS plus an int64 bias) against MBQM on int64, with ties
    of both signs (multiples of 2^(r-1)), zero right shifts, the widest shift and values near 2^22 (beyond it a
    block takes the int64 path)."""
    from simulator.execute import fixedpoint as fp

    rng = np.random.default_rng(17)
    shifts = np.array([-1, 0, -31, -7, -12, -3, -20][:channels])
    multipliers = np.array([1 << 30, (1 << 31) - 1, 1518500250, 1 << 30, 1234567890, 1 << 30, 1999999999][:channels])
    values = np.concatenate(
        [
            rng.integers(-(1 << 21), 1 << 21, size=4000),
            np.arange(-64, 65) * 2**11,  # ties after the SRDHM step for the power-of-two multipliers
            np.array([-(1 << 22) + 1001, (1 << 22) - 1001, 0, 1, -1]),  # with the bias: just inside 2^22
        ]
    )
    acc = np.resize(values, (values.size // channels + 1) * channels).reshape(-1, channels)
    bias = rng.integers(-1000, 1000, size=channels)
    # an int32 output type: nothing clamps, so every rounding shows
    single = channels == 1
    got = k._requantize_biased(
        acc.astype(np.float32 if single else np.float64), bias, multipliers[0] if single else multipliers,
        shifts[0] if single else shifts, 3, None, None, np.int32, kernel="requantize",
    )  # fmt: skip
    total = acc.astype(np.int64) + bias
    want = fp.multiply_by_quantized_multiplier(total, multipliers, shifts) + 3
    np.testing.assert_array_equal(got, want)
    assert np.abs(want).max() > 1 << 18  # (values are not all clamped or tiny)


def test_depthwise_accumulators_equal_per_channel_loops():
    rng = np.random.default_rng(29)
    x = rng.integers(-128, 128, size=(1, 45, 40, 24)).astype(np.int8)
    w = rng.integers(-127, 128, size=(1, 3, 3, 48)).astype(np.int8)  # depth multiplier 2
    got = k._depthwise_accumulate(x, 5, w, 2, (1, 1), (1, 1), (1, 1), None)
    for oc in range(48):  # output channel ic * 2 + m filters input channel ic
        ic = oc // 2
        want = _reference_conv_acc(x[..., ic : ic + 1], 5, w[..., oc].reshape(1, 3, 3, 1), (1, 1), (1, 1), (1, 1))
        np.testing.assert_array_equal(got[..., oc].astype(np.int64), want[..., 0])


def test_channel_requantization_equals_the_fixed_point_primitives():
    """ChannelRequant (accumulators channels first, float64 SRDHM, float32 RDBPOT) against MBQM on int64: ties of
    both signs, shifts 0, 1, 22, 23, 24 and 31 (beyond 23 the result is 0), clamps, cropped rows."""
    from simulator.execute import fixedpoint as fp

    rng = np.random.default_rng(31)
    shifts = np.array([0, -1, -7, -22, -23, -24, -31, -12])
    multipliers = np.array([1 << 30, 1 << 30, 1518500250, 1 << 30, (1 << 31) - 1, 1 << 30, 1 << 30, 1234567891])
    channels, rows, row, kept = shifts.size, 9, 13, 11
    acc = rng.integers(-(1 << 21), 1 << 21, size=(channels, rows * row))
    acc[:, :64] = np.arange(-32, 32) * (1 << 6) + 1  # odd multiples near the ties of M = 2^30
    acc[:, 64:66] = [(1 << 21) - 1, -(1 << 21) + 1]
    bias = rng.integers(-(1 << 20), 1 << 20, size=channels)
    bound = int(np.abs(acc).max())
    for low, high in ((None, None), (-100, 90)):
        requant = k.ChannelRequant.build(bias, multipliers, shifts, -3, low, high, np.int32, bound, channels)
        assert requant is not None
        out = np.empty((channels, rows, kept), np.int32)
        requant(acc.astype(np.float32 if bound < 1 << 24 else np.float64), out, row)
        want = fp.multiply_by_quantized_multiplier(acc + bias[:, None], multipliers[:, None], shifts[:, None]) - 3
        want = np.clip(want, -(1 << 31) if low is None else low, (1 << 31) - 1 if high is None else high)
        np.testing.assert_array_equal(out, want.reshape(channels, rows, row)[:, :, :kept])
        assert low is not None or len(np.unique(out[1])) > 90  # (unclamped, shift 1: 99 distinct values)


def test_channel_requantization_refuses_what_it_cannot_prove():
    ones = np.ones(2, np.int64)
    assert k.ChannelRequant.build(None, ones << 30, -ones, 0, None, None, np.int8, (1 << 22) - 1, 2) is not None
    assert k.ChannelRequant.build(None, ones << 30, -ones, 0, None, None, np.int8, 1 << 22, 2) is None  # bound
    assert k.ChannelRequant.build(ones, ones << 30, -ones, 0, None, None, np.int8, (1 << 22) - 1, 2) is None  # +bias
    assert k.ChannelRequant.build(None, ones << 30, ones, 0, None, None, np.int8, 10, 2) is None  # a left shift


def test_affine_quantize_rounds_float32_quotients_half_away_and_saturates():
    # scale 0.5, zero point -1: 0.25 / 0.5 = 0.5 -> 1 -> 0; -0.25 -> -0.5 -> -1 -> -2; 0.75 -> 1.5 -> 2 -> 1;
    # +-1000 -> +-2000 -> saturate at 127 / -128
    x = np.array([0.25, -0.25, 0.75, 1000.0, -1000.0], np.float32)
    y = k.affine_quantize(x, scale=0.5, zero_point=-1, output_dtype=np.int8)
    assert y.dtype == np.int8 and y.tolist() == [0, -2, 1, 127, -128]
    # int16: 3.0 / 2^-12 = 12288; 10.0 / 2^-12 = 40960 saturates at 32767
    y16 = k.affine_quantize(np.array([3.0, 10.0, -10.0], np.float32), scale=2.0**-12, zero_point=0,
                            output_dtype=np.int16)  # fmt: skip
    assert y16.dtype == np.int16 and y16.tolist() == [12288, 32767, -32768]


def test_affine_quantize_divides_in_float32():
    # float32(0.1) = 0.100000001490116..., 0.25 / it = 2.49999996274... exactly; the float32 quotient is the
    # nearest float32, 2.5 (float32 spacing there is 2^-22 ~ 2.4e-7), which rounds away to 3. A float64
    # quotient keeps 2.4999999627 and gives 2.
    y = k.affine_quantize(np.array([0.25, -0.25], np.float32), scale=float(np.float32(0.1)), zero_point=0,
                          output_dtype=np.int8)  # fmt: skip
    assert y.tolist() == [3, -3]


def test_affine_quantize_refuses_quotients_beyond_int32():
    # 1e30 / 0.5 does not fit the int32 cast TFLM makes (undefined in C; x86 gives INT32_MIN)
    with pytest.raises(k.FixedPointOverflow, match="quantize"):
        k.affine_quantize(np.array([1e30], np.float32), scale=0.5, zero_point=0, output_dtype=np.int8)
    with pytest.raises(k.FixedPointOverflow, match="NaN"):
        k.affine_quantize(np.array([np.nan], np.float32), scale=0.5, zero_point=0, output_dtype=np.int8)


def test_requantize_by_hand():
    # s_in / s_out = 0.5 / 0.25 = 2 exactly: (x - 3) * 2 - 5, saturated to int8
    # x = 3 -> -5; 10 -> 9; -100 -> -211 -> -128; 70 -> 129 -> 127
    y = k.requantize(np.array([3, 10, -100, 70], np.int8), multiplier=1 << 30, shift=2, input_zero_point=3,
                     output_zero_point=-5, output_dtype=np.int8)  # fmt: skip
    assert y.dtype == np.int8 and y.tolist() == [-5, 9, -128, 127]
    # int16 -> int16 by 2^-10 / 2^-8 = 0.25 (multiplier 2^30, shift -1): 400 -> 100, -400 -> -100, 7 -> 1.75 -> 2;
    # 5 -> 1.25 comes out 2, by TFLM's double rounding: the doubling high multiply gives 5 * 2^30 / 2^31 = 2.5,
    # rounded half up to 3, then the right shift by 1 gives 1.5, rounded away to 2
    y16 = k.requantize(np.array([400, -400, 7, 5], np.int16), multiplier=1 << 30, shift=-1, input_zero_point=0,
                       output_zero_point=0, output_dtype=np.int16)  # fmt: skip
    assert y16.dtype == np.int16 and y16.tolist() == [100, -100, 2, 2]


def test_dequantize_is_the_correctly_rounded_float32_product():
    # scale 0.5, zero point -1: (-128 + 1) * 0.5 = -63.5; (0 + 1) * 0.5 = 0.5; 128 * 0.5 = 64
    y = k.dequantize(np.array([-128, 0, 127], np.int8), scale=0.5, zero_point=-1)
    assert y.dtype == np.float32 and y.tolist() == [-63.5, 0.5, 64.0]
    # 3 * float32(0.1) = 0.30000000447... exactly, whose nearest float32 is float32(0.3) = 0.30000001192...
    # (the float32 below it, 0.29999998212, is further away)
    assert k.dequantize(np.array([3], np.int8), scale=float(np.float32(0.1)), zero_point=0)[0] == np.float32(0.3)
