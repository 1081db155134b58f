"""TensorFlow Lite Micro reference integer kernels as pure numpy functions (tflm mode of the integer executor).

Each kernel takes numpy arrays in TFLite layouts and explicit quantisation parameters and knows nothing of
graphs: activations NHWC; conv filters OHWI; depthwise filters [1, H, W, C * multiplier]; fully-connected
weights [out, in]; int4 weights arrive unpacked (see :func:`unpack_int4`). Quantisation parameters are the
runtime's own: zero points (not TFLite's negated "offsets"), int32 multipliers with left-positive shifts
(see ``fixedpoint``), activation clamps in the output's integer domain.

Accumulation happens in int64 numpy arrays, so nothing wraps silently. Where the runtime accumulates in
int32 (int8 kernels, 16x8 kernels with an int32 bias) an accumulator outside int32 raises
:class:`AccumulatorOverflow`: the C code would wrap (two's complement) or be undefined there. The check is on
the complete accumulator (sum of products plus bias): wrapping addition is associative, so an intermediate
partial sum leaving the range and coming back gives the same bits on the target as here.
"""

from __future__ import annotations

import numpy as np

from simulator.execute import fixedpoint as fp
from simulator.execute.exact_sums import F32_EXACT, row_sign_sums, subset_sum_bound
from simulator.execute.fixedpoint import INT32_MAX, INT32_MIN, FixedPointOverflow, check_range


class AccumulatorOverflow(FixedPointOverflow):
    """A kernel's accumulator left the range the runtime accumulates in (int32 for int8 kernels)."""


_DTYPES = {np.dtype(np.int8): np.int8, np.dtype(np.int16): np.int16}


def _dtype_limits(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _pair(value) -> tuple[int, int]:
    if np.ndim(value) == 0:
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def unpack_int4(packed, count: int | None = None) -> np.ndarray:
    """Unpack int4 values stored two per byte, low nibble first, sign-extended, into int8.

    ``count`` drops the padding nibble of an odd-sized tensor (default: every nibble).
    """
    raw = np.asarray(packed).astype(np.int64).ravel() & 0xFF
    nibbles = np.stack([raw & 0xF, raw >> 4], axis=-1).ravel()
    if count is not None:
        if count > nibbles.size:
            raise ValueError(f"{count} int4 values asked from {raw.size} bytes")
        nibbles = nibbles[:count]
    return np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.int8)


def pack_int4(values) -> np.ndarray:
    """Inverse of unpack_int4: int4 values (in [-8, 7]) to bytes, low nibble first, odd counts zero-padded."""
    v = np.asarray(values).astype(np.int64).ravel()
    if v.size and (v.min() < -8 or v.max() > 7):
        raise ValueError("int4 values must lie in [-8, 7]")
    v = v & 0xF
    if v.size % 2:
        v = np.append(v, 0)
    packed = v[0::2] | (v[1::2] << 4)
    return np.where(packed >= 128, packed - 256, packed).astype(np.int8)


def compute_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1):
    """TFLite's output size and leading padding for SAME / VALID: returns (out_size, pad_before, pad_extra).

    The total padding is split with the smaller half before; ``pad_extra`` (0 or 1) is the odd remainder that
    goes after. Reference kernels only use ``pad_before`` and the output size.
    """
    effective = (filter_size - 1) * dilation + 1
    padding = padding.upper()
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out = (in_size + stride - effective) // stride
    else:
        raise ValueError(f"padding must be SAME or VALID, not {padding!r}")
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2, total % 2


def _out_size(in_size: int, k: int, stride: int, dilation: int, pad: int) -> int:
    return (in_size + 2 * pad - ((k - 1) * dilation + 1)) // stride + 1


def _windows(x: np.ndarray, kernel_hw, stride, dilation, padding, output_hw, fill):
    """Gather sliding windows: (N, OH, OW, KH, KW, C) values plus the (OH, OW, KH, KW) in-image mask.

    Out-of-image taps read ``fill``; the mask tells kernels that count taps (average pooling) which were real.
    """
    n, h, w, c = x.shape
    kh, kw = kernel_hw
    (sh, sw), (dh, dw), (ph, pw) = _pair(stride), _pair(dilation), _pair(padding)
    if output_hw is None:
        output_hw = (_out_size(h, kh, sh, dh, ph), _out_size(w, kw, sw, dw, pw))
    oh, ow = _pair(output_hw)
    rows = (np.arange(oh) * sh - ph)[:, None] + np.arange(kh)[None, :] * dh
    cols = (np.arange(ow) * sw - pw)[:, None] + np.arange(kw)[None, :] * dw
    row_ok = (rows >= 0) & (rows < h)
    col_ok = (cols >= 0) & (cols < w)
    patches = x[:, np.clip(rows, 0, h - 1)[:, None, :, None], np.clip(cols, 0, w - 1)[None, :, None, :], :]
    valid = row_ok[:, None, :, None] & col_ok[None, :, None, :]
    patches = np.where(valid[None, ..., None], patches, fill)
    return patches, valid


_F64_EXACT = 1 << 53


def _int_range(x: np.ndarray, zero_point: int) -> tuple[int, int]:
    """(min(x - zp, 0), max(x - zp, 0)) over ``x``."""
    if x.size == 0:
        return 0, 0
    return min(int(x.min()) - zero_point, 0), max(int(x.max()) - zero_point, 0)


class FilterCache:
    """What a kernel derives from one constant filter (its range, positive / negative row sums, float copies),
    kept by the caller between calls so that repeated runs of a layer pay for it once.

    A cache belongs to one filter in one layout: the caller must not share it between filters. It holds no
    result of an input, so a run with any input reads the same values a fresh cache would compute."""

    def __init__(self) -> None:
        self._values: dict = {}

    def get(self, key, compute):
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def as_float(self, w: np.ndarray, ft) -> np.ndarray:
        return self.get(("float", np.dtype(ft).name, w.shape), lambda: w.astype(ft))


def _exact_float_type(x_lohi: tuple[int, int], w: np.ndarray, taps: int, pos_neg=None, cache: dict | None = None):
    """A float type in which every partial sum of ``sum (x - zp) * w`` over ``taps`` products is an exact
    integer (BLAS may sum in any order, blocked or fused): float32 while the bound stays below 2^24, float64
    below 2^53, else None. Returns ``(type, w in that type)``; ``w`` is (rows, taps) integers.

    Any intermediate value is a sum over a subset of the products; with x - zp in [lo, hi] (lo <= 0 <= hi) and
    P, N the sums of a row's positive and negative weights, it lies in [-(|lo| P + hi N), hi P + |lo| N]. The
    cruder ``taps * max|x - zp| * max|w|`` is tried first because it costs nothing.

    ``cache`` (see :class:`FilterCache`) keeps what depends on ``w`` alone between calls."""
    cache = FilterCache() if cache is None else cache
    x_lo, x_hi = x_lohi
    x_range = max(-x_lo, x_hi)
    if w.size == 0:
        return np.float32, cache.as_float(w, np.float32)
    w_range = cache.get("w_range", lambda: max(abs(int(w.min())), abs(int(w.max()))))
    crude = taps * x_range * w_range
    if crude < F32_EXACT:
        return np.float32, cache.as_float(w, np.float32)
    if crude < _F64_EXACT:
        pos_neg = cache.get("pos_neg", lambda: row_sign_sums(w)) if pos_neg is None else pos_neg
        if w_range <= 1 << 24 and subset_sum_bound(x_lo, x_hi, pos_neg) < F32_EXACT:  # (integers exact in float32)
            return np.float32, cache.as_float(w, np.float32)
        return np.float64, cache.as_float(w, np.float64)
    l1 = cache.get("l1", lambda: int(np.abs(w.astype(np.int64)).sum(axis=1).max()))
    if x_range * l1 < _F64_EXACT:
        return np.float64, cache.as_float(w, np.float64)
    return None, None


def _strided_windows(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """Read-only (N, OH, OW, KH, KW, C) view of the windows of an already padded NHWC array."""
    (sh, sw), (dh, dw) = stride, dilation
    n, _, _, c = xp.shape
    s = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False
    )


def _padded_windows(x: np.ndarray, zero_point: int, ft, kernel_hw, stride, dilation, padding, output_hw):
    """(x - zero_point) in float type ``ft``, zero-padded, as an (N, OH, OW, KH, KW, C) window view.

    Equals :func:`_windows` with fill 0 (taps outside the image read 0 after the zero point is subtracted);
    returns None where it does not apply (negative padding)."""
    n, h, w, c = x.shape
    kh, kw = kernel_hw
    (sh, sw), (dh, dw), (ph, pw) = _pair(stride), _pair(dilation), _pair(padding)
    if ph < 0 or pw < 0 or sh < 1 or sw < 1 or dh < 1 or dw < 1:
        return None
    if output_hw is None:
        output_hw = (_out_size(h, kh, sh, dh, ph), _out_size(w, kw, sw, dw, pw))
    oh, ow = _pair(output_hw)
    if oh < 0 or ow < 0:
        return None
    after_h = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - h - ph)
    after_w = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pw)
    xp = np.zeros((n, h + ph + after_h, w + pw + after_w, c), ft)
    np.subtract(x, ft(zero_point), out=xp[:, ph : ph + h, pw : pw + w, :], casting="unsafe")
    return _strided_windows(xp, kh, kw, (sh, sw), (dh, dw), oh, ow)


def _within(values, lo: int, hi: int) -> bool:
    """Whether every value lies in [lo, hi] (min / max: no temporaries; check_range then names the culprit)."""
    values = np.asarray(values)
    return values.size == 0 or (int(values.min()) >= lo and int(values.max()) <= hi)


_CHUNK = 1 << 14  # elements per requantization block: the int64 temporaries stay in cache
_F64_FAST = 1 << 22  # |x 2^left| below this: the requantization is exact in float64 (x M + 2^30 < 2^53)


def _requantize_int32_fast(acc, multiplier, shift, output_zero_point, amin, amax, lo, hi, out_dtype, bias=None):
    """Accumulators -> output integers with fixedpoint.multiply_by_quantized_multiplier's double rounding (SRDHM,
    then RDBPOT), the zero point and the clamps, computed block by block in place on int64. ``acc`` must lie in
    int32 already; per-channel parameters broadcast along the last axis. Returns None where the slow path must
    run: unusual parameters, or a left shift leaving int32 (the slow path raises the runtime's error).

    A float ``acc`` (exact integers from BLAS) gets the int64 ``bias`` (per last-axis channel) added exactly in
    float64 block by block; a sum outside int32 returns None too."""
    m = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    if m.size == 0 or s.size == 0 or m.min() < 0 or m.max() > INT32_MAX or s.min() < -31 or s.max() > 30:
        return None
    if m.ndim > 1 or s.ndim > 1 or acc.ndim == 0:
        return None
    channels = max(m.size, s.size)
    if channels > 1 and (acc.shape[-1] != channels or m.size not in (1, channels) or s.size not in (1, channels)):
        return None
    if channels == 1:
        m, s = m.reshape(()), s.reshape(())
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    any_left, any_right = bool(left.any()), bool(right.any())
    # RDBPOT(x, e) = (x + 2^(e-1) - [x < 0]) >> e for e >= 1 (round half away from zero), x for e = 0
    half = (np.int64(1) << right) >> 1
    neg_mask = None if bool((right > 0).all()) else (right > 0).astype(np.int64)
    float_acc = acc.dtype.kind == "f"
    if float_acc:
        b = np.zeros(acc.shape[-1], np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
        if b.size != acc.shape[-1] or (b.size and int(np.abs(b).max()) >= 1 << 52):
            return None
        if channels == 1 and b.size > 1:
            channels = b.size
        if channels > 1 and b.size != channels:
            return None
        bias_f = b.astype(np.float64).reshape(1, -1) if channels > 1 else b.astype(np.float64).reshape(1, 1)
        m_f31 = np.ldexp(m.astype(np.float64), -31)  # exact: M < 2^31
        pow_left = np.ldexp(1.0, left)
        pow_right = np.ldexp(1.0, -right)
        half_f = np.broadcast_to(half.astype(np.float64), (channels,)) if channels > 1 else half.astype(np.float64)
    elif bias is not None:
        return None
    acc2 = acc.reshape(-1, channels)
    out = np.empty(acc2.shape, out_dtype)
    rows = max(1, _CHUNK // channels)
    zp = np.int64(output_zero_point)
    one_clip = lo <= amin <= amax <= hi
    if float_acc:
        buf_f = np.empty((rows, channels), np.float64)
        away = np.empty(buf_f.shape, np.float64)
    buf_v = np.empty((rows, channels), np.int64)
    buf_t = np.empty((rows, channels), np.int64)
    for start in range(0, acc2.shape[0], rows):
        x = acc2[start : start + rows]
        k = x.shape[0]
        v, t = buf_v[:k], buf_t[:k]
        if float_acc:
            f = buf_f[:k]
            np.add(x, bias_f, out=f)
            f_lo, f_hi = f.min(), f.max()
            if f_lo < INT32_MIN or f_hi > INT32_MAX:
                return None
            if f_lo > -_F64_FAST and f_hi < _F64_FAST:
                # every step below is exact in float64: |x 2^left| < 2^22 keeps x 2^left M + 2^30 below
                # 2^53, and the divisions are by powers of two, followed by floor
                if any_left:
                    f *= pow_left
                    if f.min() < INT32_MIN or f.max() > INT32_MAX:
                        return None
                    if not (f.min() > -_F64_FAST and f.max() < _F64_FAST):
                        np.copyto(t, f, casting="unsafe")
                        np.multiply(t, m, out=v)
                        _finish_int(v, t, half, right, neg_mask, any_right)
                        _store(out, start, k, v, zp, amin, amax, lo, hi, one_clip)
                        continue
                # SRDHM: floor(x M 2^-31 + 1/2); x M 2^-31 and its sum with 1/2 are exact (numerators
                # below 2^53)
                f *= m_f31
                f += 0.5
                np.floor(f, out=f)
                if any_right:
                    # RDBPOT: (u + 2^(r-1) - [u < 0]) >> r = trunc((u + copysign(2^(r-1), u)) 2^-r),
                    # half away from zero; channels with r = 0 add a signed zero and divide by one
                    g = away[:k]
                    np.copysign(half_f, f, out=g)
                    f += g
                    f *= pow_right
                    np.trunc(f, out=f)
                _store(out, start, k, f, zp, amin, amax, lo, hi, one_clip)
                continue
            np.copyto(t, f, casting="unsafe")  # exact integers
            x = t
        if any_left:
            np.left_shift(x, left, out=t)
            if t.min() < INT32_MIN or t.max() > INT32_MAX:
                return None
            np.multiply(t, m, out=v)
        else:
            np.multiply(x, m, out=v)
        _finish_int(v, t, half, right, neg_mask, any_right)
        _store(out, start, k, v, zp, amin, amax, lo, hi, one_clip)
    return out.reshape(acc.shape)


class ChannelRequant:
    """The int32 requantization of a layer whose accumulators arrive channels first, (channels, positions), as
    exact integers in float, with everything that depends on the layer alone computed once.

    It applies where a static bound proves ``|acc + bias| < 2^22`` for every input and every shift is a right
    shift (r = -shift >= 0). Then, per element:

    * SRDHM in float64: ``u = floor(acc (M 2^-31) + (bias M 2^-31 + 1/2))``; both products and the sum are
      exact (numerators below 2^53), so this is ``floor(((acc + bias) M + 2^30) / 2^31)``, and |u| <= 2^22;
    * RDBPOT in float32, where u is exact: with v = u 2^-r (exact, r capped at 23: a larger r gives 0 either
      way, as |u| < 2^(r-1)), round half away from zero is ``trunc(2 v) - trunc(v)``: for v = k + phi
      (k = trunc(v)), trunc(2 v) = 2 k + trunc(2 phi), and trunc(2 phi) is +-1 exactly when |phi| >= 1/2;
    * the clamps (less the zero point), and the zero point added as the result is stored.

    No value is range-checked at run time: the bound already keeps the int32 accumulator in range."""

    def __init__(self, m31, offset, pow_right, zero_point, low, high):
        self.m31, self.offset, self.pow_right, self.pow_right_2 = m31, offset, pow_right, pow_right * 2
        self.zero_point, self.low, self.high = zero_point, low, high

    @classmethod
    def build(
        cls, bias, multiplier, shift, output_zero_point: int, activation_min, activation_max, out_dtype,
        acc_bound: int, channels: int,
    ) -> ChannelRequant | None:  # fmt: skip
        """None where it does not apply: a bound of 2^22 or more, a left shift, a multiplier outside [0, 2^31)."""
        m = np.broadcast_to(np.asarray(multiplier, np.int64).reshape(-1), (channels,))
        s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), (channels,))
        b = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
        if b.size != channels or m.min() < 0 or m.max() > INT32_MAX or s.max() > 0 or s.min() < -31:
            return None
        if acc_bound + (int(np.abs(b).max()) if b.size else 0) >= _F64_FAST:
            return None
        lo, hi = _dtype_limits(out_dtype)
        zp = int(output_zero_point)
        m31 = np.ldexp(m.astype(np.float64), -31).reshape(-1, 1)
        return cls(
            m31=m31,
            offset=b.astype(np.float64).reshape(-1, 1) * m31 + 0.5,
            pow_right=np.ldexp(np.float32(1.0), -np.minimum(-s, 23)).astype(np.float32).reshape(-1, 1),
            zero_point=np.float32(zp),
            low=np.float32(max(lo, lo if activation_min is None else int(activation_min)) - zp),
            high=np.float32(min(hi, hi if activation_max is None else int(activation_max)) - zp),
        )

    def __call__(self, acc: np.ndarray, out: np.ndarray, row: int | None = None) -> None:
        """Requantize ``acc`` (channels, positions) into ``out`` (channels, ...); with ``row``, ``acc``'s
        positions are rows of ``row`` values of which the first ``out.shape[-1]`` are kept."""
        channels, positions = acc.shape
        step = max(1, _CHUNK // max(positions, 1))
        f_buf = np.empty((min(step, channels), positions), np.float64)
        u_buf = np.empty(f_buf.shape, np.float32)
        g_buf = np.empty(f_buf.shape, np.float32)
        for start in range(0, channels, step):
            end = min(start + step, channels)
            f, u, g = f_buf[: end - start], u_buf[: end - start], g_buf[: end - start]
            np.multiply(acc[start:end], self.m31[start:end], out=f)
            f += self.offset[start:end]
            np.floor(f, out=u, casting="same_kind")  # exact: |u| <= 2^22
            np.multiply(u, self.pow_right_2[start:end], out=g)
            np.trunc(g, out=g)
            u *= self.pow_right[start:end]
            np.trunc(u, out=u)
            np.subtract(g, u, out=u)  # RHAZ(v) = trunc(2 v) - trunc(v)
            np.clip(u, self.low, self.high, out=u)
            target = out[start:end]
            values = u if row is None else u.reshape(end - start, -1, row)[:, :, : target.shape[-1]]
            np.add(values.reshape(target.shape), self.zero_point, out=target, casting="unsafe")


def _finish_int(v, t, half, right, neg_mask, any_right) -> None:
    """SRDHM's rounding and RDBPOT in place on the int64 products ``v`` = x M (see _requantize_int32_fast)."""
    # SRDHM: the C code nudges by 2^30 (1 - 2^30 for a negative product) and divides by 2^31 truncating;
    # both cases are floor((a b + 2^30) / 2^31). The saturating (-2^31)^2 cannot occur (M < 2^31).
    v += np.int64(1 << 30)
    v >>= 31
    if any_right:
        np.right_shift(v, 63, out=t)  # -1 for negatives
        if neg_mask is not None:
            t &= neg_mask  # 1 for negatives with a right shift
            v -= t
        else:
            v += t
        v += half
        v >>= right


def _store(out, start, k, v, zp, amin, amax, lo, hi, one_clip) -> None:
    """+ zero point, the clamps, the cast into ``out[start : start + k]`` (in place on ``v``)."""
    v += zp
    np.clip(v, amin, amax, out=v)
    if not one_clip:
        np.clip(v, lo, hi, out=v)
    out[start : start + k] = v


def _requantize(
    acc,
    multiplier,
    shift,
    output_zero_point,
    activation_min,
    activation_max,
    out_dtype,
    *,
    kernel,
    accumulator="int32",
    single_rounding=False,
):
    """Accumulator -> output integers: range check, MBQM, + zero point, clamp, cast."""
    if accumulator == "int32":
        if not _within(acc, INT32_MIN, INT32_MAX):
            check_range(
                acc, INT32_MIN, INT32_MAX, kernel, "the int32 accumulator (sum of products + bias)",
                exc=AccumulatorOverflow,
            )  # fmt: skip
        if not single_rounding and isinstance(acc, np.ndarray) and acc.dtype == np.int64:
            lo, hi = _dtype_limits(out_dtype)
            amin = lo if activation_min is None else int(activation_min)
            amax = hi if activation_max is None else int(activation_max)
            out = _requantize_int32_fast(acc, multiplier, shift, output_zero_point, amin, amax, lo, hi, out_dtype)
            if out is not None:
                return out
        scaled = fp.multiply_by_quantized_multiplier(
            acc, multiplier, shift, single_rounding=single_rounding, kernel=kernel
        )
    elif accumulator == "int64":
        check_range(acc, -(1 << 63), (1 << 63) - 1, kernel, "the int64 accumulator", exc=AccumulatorOverflow)
        scaled = fp.multiply_by_quantized_multiplier_int64(acc, multiplier, shift, kernel=kernel)
    else:
        raise ValueError(f"accumulator must be 'int32' or 'int64', not {accumulator!r}")
    return _clamp_cast(scaled + int(output_zero_point), activation_min, activation_max, out_dtype)


def _requantize_biased(
    acc,
    bias: np.ndarray,
    multiplier,
    shift,
    output_zero_point,
    activation_min,
    activation_max,
    out_dtype,
    *,
    kernel,
    accumulator="int32",
    single_rounding=False,
):
    """:func:`_requantize` of ``acc + bias``; ``acc`` holds exact integers (float from BLAS, or int64). The int32
    double-rounding case adds the bias and converts block by block; anything else, and any accumulator outside
    int32, goes through the int64 sum and :func:`_requantize` (which raises the runtime's error)."""
    if acc.dtype.kind == "f" and accumulator == "int32" and not single_rounding:
        lo, hi = _dtype_limits(out_dtype)
        amin = lo if activation_min is None else int(activation_min)
        amax = hi if activation_max is None else int(activation_max)
        out = _requantize_int32_fast(
            acc, multiplier, shift, output_zero_point, amin, amax, lo, hi, out_dtype, bias=bias
        )
        if out is not None:
            return out
    acc = acc.astype(np.int64)
    acc += bias
    return _requantize(
        acc,
        multiplier,
        shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel=kernel,
        accumulator=accumulator,
        single_rounding=single_rounding,
    )


def _default_accumulator(x: np.ndarray, bias) -> str:
    """int8 kernels accumulate in int32; 16x8 kernels in the bias type (int64 unless the bias is int32)."""
    if x.dtype == np.int8:
        return "int32"
    if bias is not None and np.asarray(bias).dtype == np.int32:
        return "int32"
    return "int64"


def _out_dtype(x: np.ndarray, output_dtype):
    if output_dtype is not None:
        return np.dtype(output_dtype).type
    if x.dtype not in _DTYPES:
        raise TypeError(f"integer kernels take int8 or int16 activations, not {x.dtype}")
    return _DTYPES[x.dtype]


def _bias(bias, channels: int) -> np.ndarray:
    if bias is None:
        return np.zeros(channels, dtype=np.int64)
    b = np.asarray(bias).astype(np.int64).ravel()
    if b.size != channels:
        raise ValueError(f"bias has {b.size} values for {channels} output channels")
    return b


# --------------------------------------------------------------------------------------------------------------
# Convolutions and fully connected
# --------------------------------------------------------------------------------------------------------------


def _conv_accumulate(
    x, zero_point: int, w, groups: int, stride, dilation, padding, output_hw, split: bool = True, pos_neg=None,
    cache: FilterCache | None = None,
) -> np.ndarray:  # fmt: skip
    """Exact ``sum (x - zp) * w`` of a (grouped) NHWC conv with an OHWI filter: im2col windows and one BLAS
    matmul in a float type where every partial sum is an exact integer (int64 einsum where none is). The result
    holds integers, as float or int64.

    Where float32 is not exact but 8-bit ``x - zp = 16 h + l`` (l in [0, 15]) makes both halves exact, they run
    as one float32 batch of 2N images (BLAS at twice the float64 rate) and ``16 acc_h + acc_l`` is formed in
    float64."""
    cache = FilterCache() if cache is None else cache
    o, kh, kw, cg = w.shape
    taps = kh * kw * cg
    og = o // groups
    x_lo, x_hi = _int_range(x, zero_point)
    rows = w.reshape(o, -1)
    if split and x.dtype.itemsize == 1 and max(-x_lo, x_hi) >= 32 and rows.size:
        w_range = cache.get("w_range", lambda: max(abs(int(rows.min())), abs(int(rows.max()))))
        if taps * max(-x_lo, x_hi) * w_range >= F32_EXACT and w_range <= F32_EXACT:
            pos_neg = cache.get("pos_neg", lambda: row_sign_sums(rows))
        if (
            pos_neg is not None
            and subset_sum_bound(x_lo, x_hi, pos_neg) >= F32_EXACT
            and max(subset_sum_bound(x_lo >> 4, x_hi >> 4, pos_neg), subset_sum_bound(0, 15, pos_neg)) < F32_EXACT
        ):
            xs = x.astype(np.int16) - np.int16(zero_point)
            halves = np.concatenate([xs >> 4, xs & 15])
            acc = _conv_accumulate(
                halves, 0, w, groups, stride, dilation, padding, output_hw, split=False, pos_neg=pos_neg, cache=cache
            )
            if acc.dtype == np.float32:
                n = x.shape[0]
                out = acc[:n].astype(np.float64)
                out *= 16.0
                out += acc[n:]
                return out
    ft, wf = _exact_float_type((x_lo, x_hi), rows, taps, pos_neg, cache)
    windows = None if ft is None else _padded_windows(x, zero_point, ft, (kh, kw), stride, dilation, padding, output_hw)
    if windows is None:
        patches, _ = _windows(x.astype(np.int64) - zero_point, (kh, kw), stride, dilation, padding, output_hw, 0)
        n, oh, ow = patches.shape[:3]
        patches = patches.reshape(n * oh * ow, kh, kw, groups, cg)
        wg = w.astype(np.int64).reshape(groups, og, kh, kw, cg)
        return np.einsum("pyxgc,goyxc->pgo", patches, wg).reshape(n, oh, ow, o)
    n, oh, ow = windows.shape[:3]
    rows = n * oh * ow
    if groups == 1:
        cols = windows.reshape(rows, taps)  # im2col (a copy unless the windows are the pixels themselves)
        acc = cols @ wf.T
    else:
        cols = windows.reshape(rows, kh, kw, groups, cg).transpose(3, 0, 1, 2, 4).reshape(groups, rows, taps)
        wg = wf.reshape(groups, og, taps)
        acc = np.matmul(cols, wg.transpose(0, 2, 1)).transpose(1, 0, 2)
    return acc.reshape(n, oh, ow, o)


def _depthwise_accumulate(
    x, zero_point: int, w, mult: int, stride, dilation, padding, output_hw, cache: FilterCache | None = None
) -> np.ndarray:
    """Exact depthwise accumulators (integers, as float or int64): one vectorised multiply-add per filter tap."""
    cache = FilterCache() if cache is None else cache
    _, kh, kw, oc = w.shape
    c = x.shape[3]
    ft, _ = _exact_float_type(_int_range(x, zero_point), w.reshape(1, -1), kh * kw, cache=cache)
    windows = None if ft is None else _padded_windows(x, zero_point, ft, (kh, kw), stride, dilation, padding, output_hw)
    if windows is None:
        patches, _ = _windows(x.astype(np.int64) - zero_point, (kh, kw), stride, dilation, padding, output_hw, 0)
        n, oh, ow = patches.shape[:3]
        wm = w.astype(np.int64).reshape(kh, kw, c, mult)
        return np.einsum("nhwyxc,yxcm->nhwcm", patches, wm).reshape(n, oh, ow, oc)
    n, oh, ow = windows.shape[:3]
    wf = cache.as_float(w.reshape(kh, kw, c, mult), ft)
    acc = np.empty((n, oh, ow, c, mult), ft)
    tmp = np.empty_like(acc)
    for tap in range(kh * kw):
        fy, fx = divmod(tap, kw)
        np.multiply(windows[:, :, :, fy, fx, :, None], wf[fy, fx], out=tmp if tap else acc)
        if tap:
            acc += tmp
    return acc.reshape(n, oh, ow, oc)


def _matmul_accumulate(rows, zero_point: int, w, cache: FilterCache | None = None) -> np.ndarray:
    """Exact ``(rows - zp) @ w.T`` (``w`` [out, depth] integers; float or int64) through BLAS where exact."""
    depth = w.shape[1]
    wi = np.asarray(w)
    ft, wf = _exact_float_type(_int_range(rows, zero_point), wi, depth, cache=cache)
    if ft is None:
        return (rows.astype(np.int64) - zero_point) @ wi.astype(np.int64).T
    return (rows.astype(ft) - ft(zero_point)) @ wf.T


def conv2d(
    input,
    filter,
    bias=None,
    *,
    output_multiplier,
    output_shift,
    input_zero_point=0,
    output_zero_point=0,
    stride=1,
    padding=0,
    dilation=1,
    output_hw=None,
    activation_min=None,
    activation_max=None,
    accumulator=None,
    output_dtype=None,
    single_rounding=False,
    filter_cache: FilterCache | None = None,
):
    """CONV_2D (reference_integer_ops ConvPerChannel): int8 or 16x8, per-channel requantisation, groups.

    ``input`` (N, H, W, C); ``filter`` (O, KH, KW, C / groups) int8; ``bias`` (O,) int32 (int64 for 16x8);
    ``padding`` is the leading (top, left) padding (see :func:`compute_padding`), taps outside the image are
    skipped, which equals padding with the input zero point. Groups = C / filter depth; output channel o
    belongs to group o // (O / groups).

    ``accumulator`` ("int32" / "int64") defaults to int32 for int8 input and, for 16x8, to the bias type
    (int64 unless the bias is int32). TFLite picks it from the model's bias type, so pass it explicitly for a
    bias-less 16x8 layer. ``single_rounding`` mimics TFLITE_SINGLE_ROUNDING builds. ``filter_cache``, a
    :class:`FilterCache` the caller keeps for this filter (as do the other weighted kernels), spares repeated
    runs the filter's preparation.
    """
    x = np.asarray(input)
    w = np.asarray(filter)
    out_dtype = _out_dtype(x, output_dtype)
    accumulator = accumulator or _default_accumulator(x, bias)
    o, kh, kw, cg = w.shape
    c = x.shape[3]
    if c % cg or o % (c // cg):
        raise ValueError(f"conv2d: input depth {c} and filter {w.shape} do not form whole groups")
    groups = c // cg
    acc = _conv_accumulate(
        x, int(input_zero_point), w, groups, stride, dilation, padding, output_hw, cache=filter_cache
    )
    return _requantize_biased(
        acc,
        _bias(bias, o),
        output_multiplier,
        output_shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel="conv2d",
        accumulator=accumulator,
        single_rounding=single_rounding,
    )


def depthwise_conv2d(
    input,
    filter,
    bias=None,
    *,
    output_multiplier,
    output_shift,
    input_zero_point=0,
    output_zero_point=0,
    stride=1,
    padding=0,
    dilation=1,
    output_hw=None,
    activation_min=None,
    activation_max=None,
    accumulator=None,
    output_dtype=None,
    single_rounding=False,
    filter_cache: FilterCache | None = None,
):
    """DEPTHWISE_CONV_2D (DepthwisePerChannel): output channel ``ic * multiplier + m`` filters input ``ic``.

    ``filter`` is [1, KH, KW, C * multiplier]; the multiplier is inferred from its depth.
    """
    x = np.asarray(input)
    w = np.asarray(filter)
    out_dtype = _out_dtype(x, output_dtype)
    accumulator = accumulator or _default_accumulator(x, bias)
    _, kh, kw, oc = w.shape
    c = x.shape[3]
    if oc % c:
        raise ValueError(f"depthwise_conv2d: filter depth {oc} is not a multiple of the input depth {c}")
    mult = oc // c
    acc = _depthwise_accumulate(
        x, int(input_zero_point), w, mult, stride, dilation, padding, output_hw, cache=filter_cache
    )
    return _requantize_biased(
        acc,
        _bias(bias, oc),
        output_multiplier,
        output_shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel="depthwise_conv2d",
        accumulator=accumulator,
        single_rounding=single_rounding,
    )


def fully_connected(
    input,
    weights,
    bias=None,
    *,
    output_multiplier,
    output_shift,
    input_zero_point=0,
    weights_zero_point=0,
    output_zero_point=0,
    activation_min=None,
    activation_max=None,
    accumulator=None,
    output_dtype=None,
    single_rounding=False,
    filter_cache: FilterCache | None = None,
):
    """FULLY_CONNECTED: ``weights`` [out, depth]; the input is flattened to (batches, depth).

    The multiplier/shift may be per tensor (scalars) or per output channel. ``weights_zero_point`` is the
    legacy (uint8-era) filter offset; int8 weights have zero point 0.
    """
    x = np.asarray(input)
    w = np.asarray(weights).astype(np.int64) - int(weights_zero_point)
    out_dtype = _out_dtype(x, output_dtype)
    accumulator = accumulator or _default_accumulator(x, bias)
    o, depth = w.shape
    if x.size % depth:
        raise ValueError(f"fully_connected: input of {x.size} values is not whole rows of depth {depth}")
    acc = _matmul_accumulate(x.reshape(-1, depth), int(input_zero_point), w, cache=filter_cache)
    return _requantize_biased(
        acc,
        _bias(bias, o),
        output_multiplier,
        output_shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel="fully_connected",
        accumulator=accumulator,
        single_rounding=single_rounding,
    )


def transpose_conv2d(
    input,
    filter,
    bias=None,
    *,
    output_multiplier,
    output_shift,
    output_hw,
    input_zero_point=0,
    output_zero_point=0,
    stride=1,
    padding=0,
    activation_min=None,
    activation_max=None,
    accumulator=None,
    output_dtype=None,
    single_rounding=False,
):
    """TRANSPOSE_CONV (reference_integer_ops TransposeConv): every input pixel scatters ``filter`` into the output.

    ``filter`` is OHWI ([out_ch, KH, KW, in_ch]); ``padding`` is the leading (top, left) padding TFLite derives
    as for a forward convolution from output to input; contributions outside the output are dropped.
    """
    x = np.asarray(input)
    w = np.asarray(filter).astype(np.int64)
    out_dtype = _out_dtype(x, output_dtype)
    accumulator = accumulator or _default_accumulator(x, bias)
    n, ih, iw, c = x.shape
    o, kh, kw, wc = w.shape
    if wc != c:
        raise ValueError(f"transpose_conv2d: filter depth {wc} differs from input depth {c}")
    (sh, sw), (ph, pw), (oh, ow) = _pair(stride), _pair(padding), _pair(output_hw)
    xs = x.astype(np.int64) - int(input_zero_point)
    acc = np.zeros((n, oh, ow, o), dtype=np.int64)
    for fy in range(kh):
        out_y = np.arange(ih) * sh - ph + fy
        ok_y = (out_y >= 0) & (out_y < oh)
        for fx in range(kw):
            out_x = np.arange(iw) * sw - pw + fx
            ok_x = (out_x >= 0) & (out_x < ow)
            if not ok_y.any() or not ok_x.any():
                continue
            contrib = np.einsum("nyxc,oc->nyxo", xs[:, ok_y][:, :, ok_x], w[:, fy, fx, :])
            acc[:, out_y[ok_y][:, None], out_x[ok_x][None, :], :] += contrib
    acc = acc + _bias(bias, o)
    return _requantize(
        acc,
        output_multiplier,
        output_shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel="transpose_conv2d",
        accumulator=accumulator,
        single_rounding=single_rounding,
    )


def batch_matmul(
    lhs,
    rhs,
    *,
    adj_x=False,
    adj_y=False,
    lhs_zero_point=0,
    rhs_zero_point=0,
    output_zero_point=0,
    output_multiplier,
    output_shift,
    activation_min=None,
    activation_max=None,
    accumulator=None,
    output_dtype=None,
):
    """BATCH_MATMUL: ``lhs @ rhs`` over broadcast leading dimensions, ``adj_x`` / ``adj_y`` transpose the last two.

    int8 accumulates in int32, int16 in int64 (TFLite's reference BatchMatMul), both with one per-tensor
    multiplier.
    """
    a = np.asarray(lhs)
    b = np.asarray(rhs)
    out_dtype = _out_dtype(a, output_dtype)
    accumulator = accumulator or ("int32" if a.dtype == np.int8 else "int64")
    a64 = a.astype(np.int64) - int(lhs_zero_point)
    b64 = b.astype(np.int64) - int(rhs_zero_point)
    if adj_x:
        a64 = np.swapaxes(a64, -1, -2)
    if adj_y:
        b64 = np.swapaxes(b64, -1, -2)
    acc = np.matmul(a64, b64)
    return _requantize(
        acc,
        output_multiplier,
        output_shift,
        output_zero_point,
        activation_min,
        activation_max,
        out_dtype,
        kernel="batch_matmul",
        accumulator=accumulator,
    )


# --------------------------------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------------------------------


def _srdhm_rdbpot_inplace(v: np.ndarray, t: np.ndarray, multiplier: int, right: int) -> None:
    """v <- RDBPOT(SRDHM(v, multiplier), right) in place, for int32 v (in int64), 0 <= multiplier < 2^31:
    floor((v M + 2^30) / 2^31) (the C nudge-and-truncate, both signs), then (v + 2^(r-1) - [v < 0]) >> r."""
    v *= np.int64(multiplier)
    v += np.int64(1 << 30)
    v >>= 31
    if right:
        np.right_shift(v, 63, out=t)
        v += t
        v += np.int64(1 << (right - 1))
        v >>= right


def _add_fast(x1, x2, zp1, zp2, zp_out, left_shift, p1, p2, p_out, activation_min, activation_max, out_dtype):
    """:func:`add` on equal shapes, block by block in place (int64 temporaries in cache); None where the
    general code must run (parameters it rejects, values leaving int32: it raises the runtime's errors)."""
    params = []
    for m, s in (p1, p2, p_out):
        if np.ndim(m) or np.ndim(s):
            return None
        m, s = int(m), int(s)
        if not (0 <= m <= INT32_MAX and -31 <= s <= 0):
            return None
        params.append((m, -s))
    if not 0 <= left_shift <= 31 or x1.size == 0:
        return None
    for x, zp in ((x1, zp1), (x2, zp2)):
        if ((int(x.min()) - zp) << left_shift) < INT32_MIN or ((int(x.max()) - zp) << left_shift) > INT32_MAX:
            return None
    lo, hi = _dtype_limits(out_dtype)
    amin = lo if activation_min is None else int(activation_min)
    amax = hi if activation_max is None else int(activation_max)
    f1, f2 = x1.reshape(-1), x2.reshape(-1)
    out = np.empty(f1.shape, out_dtype)
    a = np.empty(min(_CHUNK, f1.size), np.int64)
    b = np.empty_like(a)
    t = np.empty_like(a)
    for start in range(0, f1.size, _CHUNK):
        block = slice(start, start + _CHUNK)
        k = f1[block].size
        va, vb, vt = a[:k], b[:k], t[:k]
        np.subtract(f1[block], zp1, out=va, dtype=np.int64)
        va <<= left_shift
        np.subtract(f2[block], zp2, out=vb, dtype=np.int64)
        vb <<= left_shift
        _srdhm_rdbpot_inplace(va, vt, *params[0])
        _srdhm_rdbpot_inplace(vb, vt, *params[1])
        va += vb
        if va.min() < INT32_MIN or va.max() > INT32_MAX:
            return None
        _srdhm_rdbpot_inplace(va, vt, *params[2])
        va += zp_out
        np.clip(va, amin, amax, out=va)
        np.clip(va, lo, hi, out=va)
        out[block] = va
    return out.reshape(x1.shape)


def add(
    input1,
    input2,
    *,
    input1_zero_point=0,
    input2_zero_point=0,
    output_zero_point=0,
    left_shift=20,
    input1_multiplier,
    input1_shift,
    input2_multiplier,
    input2_shift,
    output_multiplier,
    output_shift,
    activation_min=None,
    activation_max=None,
    output_dtype=None,
):
    """ADD (reference_integer_ops Add), with numpy broadcasting.

    Each input minus its zero point is shifted left by ``left_shift`` (20 for int8, 15 for int16), rescaled
    to a common scale (twice the larger input scale), summed, and the sum rescaled to the output; every
    rescale is a smaller-than-one MBQM (see ``fixedpoint.add_params``).
    """
    x1 = np.asarray(input1)
    x2 = np.asarray(input2)
    out_dtype = _out_dtype(x1, output_dtype)
    if x1.shape == x2.shape:
        fast = _add_fast(
            x1, x2, int(input1_zero_point), int(input2_zero_point), int(output_zero_point), int(left_shift),
            (input1_multiplier, input1_shift), (input2_multiplier, input2_shift), (output_multiplier, output_shift),
            activation_min, activation_max, out_dtype,
        )  # fmt: skip
        if fast is not None:
            return fast
    kernel = "add"
    a = (x1.astype(np.int64) - int(input1_zero_point)) << int(left_shift)
    b = (x2.astype(np.int64) - int(input2_zero_point)) << int(left_shift)
    check_range(a, INT32_MIN, INT32_MAX, kernel, "input1 << left_shift")
    check_range(b, INT32_MIN, INT32_MAX, kernel, "input2 << left_shift")
    sa = fp.multiply_by_quantized_multiplier_smaller_than_one_exp(a, input1_multiplier, input1_shift, kernel=kernel)
    sb = fp.multiply_by_quantized_multiplier_smaller_than_one_exp(b, input2_multiplier, input2_shift, kernel=kernel)
    total = sa + sb
    check_range(total, INT32_MIN, INT32_MAX, kernel, "the scaled sum", exc=AccumulatorOverflow)
    scaled = fp.multiply_by_quantized_multiplier_smaller_than_one_exp(
        total, output_multiplier, output_shift, kernel=kernel
    )
    return _clamp_cast(scaled + int(output_zero_point), activation_min, activation_max, out_dtype)


def mul(
    input1,
    input2,
    *,
    input1_zero_point=0,
    input2_zero_point=0,
    output_zero_point=0,
    output_multiplier,
    output_shift,
    activation_min=None,
    activation_max=None,
    output_dtype=None,
):
    """MUL (reference_integer_ops MulElementwise): MBQM((x1 - zp1) * (x2 - zp2)) + zp_out, broadcasting."""
    x1 = np.asarray(input1)
    x2 = np.asarray(input2)
    out_dtype = _out_dtype(x1, output_dtype)
    prod = (x1.astype(np.int64) - int(input1_zero_point)) * (x2.astype(np.int64) - int(input2_zero_point))
    check_range(prod, INT32_MIN, INT32_MAX, "mul", "the int32 product", exc=AccumulatorOverflow)
    scaled = fp.multiply_by_quantized_multiplier(prod, output_multiplier, output_shift, kernel="mul")
    return _clamp_cast(scaled + int(output_zero_point), activation_min, activation_max, out_dtype)


def maximum(input1, input2) -> np.ndarray:
    """MAXIMUM on raw integers (TFLite requires both inputs and the output to share one quantisation)."""
    return np.maximum(np.asarray(input1), np.asarray(input2))


def minimum(input1, input2) -> np.ndarray:
    """MINIMUM on raw integers (same quantisation everywhere)."""
    return np.minimum(np.asarray(input1), np.asarray(input2))


def _clamp_cast(values, activation_min, activation_max, out_dtype):
    lo, hi = _dtype_limits(out_dtype)
    amin = lo if activation_min is None else int(activation_min)
    amax = hi if activation_max is None else int(activation_max)
    if lo <= amin <= amax <= hi and isinstance(values, np.ndarray) and values.dtype == np.int64:
        # the two clamps are one when the activation range lies inside the type's
        return np.clip(values, amin, amax, out=values).astype(out_dtype)
    return np.clip(np.clip(values, amin, amax), lo, hi).astype(out_dtype)


# --------------------------------------------------------------------------------------------------------------
# Pooling, data movement
# --------------------------------------------------------------------------------------------------------------


def _pool_geometry(x: np.ndarray, filter_hw, stride, padding, output_hw):
    """((kh, kw), (sh, sw), (ph, pw), (oh, ow)) of a pooling window, or None where the padded strided view does
    not apply (negative padding, a stride below 1)."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(filter_hw), _pair(stride), _pair(padding)
    if ph < 0 or pw < 0 or sh < 1 or sw < 1 or kh < 1 or kw < 1:
        return None
    _, h, w, _ = x.shape
    if output_hw is None:
        output_hw = (_out_size(h, kh, sh, 1, ph), _out_size(w, kw, sw, 1, pw))
    oh, ow = _pair(output_hw)
    if oh < 1 or ow < 1:
        return None
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


def _padded_taps(x: np.ndarray, geometry, fill, dtype):
    """The (N, OH, OW, KH, KW, C) window view of ``x`` in ``dtype``, padded with ``fill`` (no copy per tap)."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geometry
    n, h, w, c = x.shape
    after_h = max(0, (oh - 1) * sh + kh - h - ph)
    after_w = max(0, (ow - 1) * sw + kw - w - pw)
    xp = np.full((n, h + ph + after_h, w + pw + after_w, c), fill, dtype)
    xp[:, ph : ph + h, pw : pw + w, :] = x
    return _strided_windows(xp, kh, kw, (sh, sw), (1, 1), oh, ow)


def _in_image_counts(size: int, kernel: int, stride: int, pad: int, out: int) -> np.ndarray:
    """How many taps of each output position's window fall inside [0, size) along one axis."""
    first = np.arange(out) * stride - pad
    return np.clip(first + kernel, 0, size) - np.clip(first, 0, size)


def average_pool2d(input, filter_hw, *, stride=1, padding=0, output_hw=None, activation_min=None, activation_max=None):
    """AVERAGE_POOL_2D: sum of the raw in-image values, divided by their count rounding half away from zero.

    Input and output share scale and zero point, so no zero point is subtracted; padded taps are not counted.
    The sum runs tap by tap over a zero-padded view (padding adds nothing); the count of in-image taps is the
    product of the per-axis counts, as the window is a rectangle clipped to the image.
    """
    x = np.asarray(input)
    out_dtype = _out_dtype(x, None)
    geometry = _pool_geometry(x, filter_hw, stride, padding, output_hw)
    if geometry is None:
        patches, valid = _windows(x.astype(np.int64), _pair(filter_hw), stride, 1, padding, output_hw, 0)
        total = patches.sum(axis=(3, 4))
        count = valid.sum(axis=(2, 3))[None, :, :, None].astype(np.int64)
    else:
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = geometry
        taps = _padded_taps(x, geometry, 0, np.int64)
        total = taps[:, :, :, 0, 0].copy()
        for fy in range(kh):
            for fx in range(kw):
                if fy or fx:
                    total += taps[:, :, :, fy, fx]
        rows = _in_image_counts(x.shape[1], kh, sh, ph, oh)
        cols = _in_image_counts(x.shape[2], kw, sw, pw, ow)
        count = (rows[:, None] * cols[None, :])[None, :, :, None].astype(np.int64)
    if (count == 0).any():
        raise ValueError("average_pool2d: a window has no in-image tap (TFLite fails the op)")
    check_range(total, INT32_MIN, INT32_MAX, "average_pool2d", "the int32 sum", exc=AccumulatorOverflow)
    half = count // 2
    num = np.where(total > 0, total + half, total - half)
    avg = np.where(num >= 0, num // count, -((-num) // count))  # C division truncates
    return _clamp_cast(avg, activation_min, activation_max, out_dtype)


def max_pool2d(input, filter_hw, *, stride=1, padding=0, output_hw=None, activation_min=None, activation_max=None):
    """MAX_POOL_2D: maximum over the in-image taps, then the activation clamp.

    Taps run over a view padded with the type's minimum: the reference starts each window at that minimum
    and skips out-of-image taps, so padding with it changes no maximum (an empty window stays at it too)."""
    x = np.asarray(input)
    out_dtype = _out_dtype(x, None)
    geometry = _pool_geometry(x, filter_hw, stride, padding, output_hw)
    if geometry is None:
        patches, _ = _windows(x.astype(np.int64), _pair(filter_hw), stride, 1, padding, output_hw, -(1 << 40))
        return _clamp_cast(patches.max(axis=(3, 4)), activation_min, activation_max, out_dtype)
    (kh, kw) = geometry[0]
    taps = _padded_taps(x, geometry, np.iinfo(x.dtype).min, x.dtype)
    best = taps[:, :, :, 0, 0].copy()
    for fy in range(kh):
        for fx in range(kw):
            if fy or fx:
                np.maximum(best, taps[:, :, :, fy, fx], out=best)
    return _clamp_cast(best, activation_min, activation_max, out_dtype)


def pad(input, paddings, pad_value=0) -> np.ndarray:
    """PAD / PADV2: ``paddings`` is one (before, after) pair per dimension; quantised pads use the zero point."""
    x = np.asarray(input)
    return np.pad(x, [tuple(int(v) for v in p) for p in paddings], mode="constant", constant_values=pad_value)


def transpose(input, perm) -> np.ndarray:
    """TRANSPOSE: output dimension i is input dimension perm[i]."""
    return np.ascontiguousarray(np.transpose(np.asarray(input), [int(p) for p in perm]))


# --------------------------------------------------------------------------------------------------------------
# Softmax
# --------------------------------------------------------------------------------------------------------------


def softmax_int8(input, *, input_multiplier, input_left_shift, diff_min, output_dtype=np.int8) -> np.ndarray:
    """TFLM quantized SOFTMAX for int8 input (int8 or int16 output), over the last axis, in gemmlowp fixed point.

    ``x - max`` is rescaled to Q5.26 (differences below ``diff_min`` are dropped: their output is the
    minimum), exp() in Q0.31, the exps summed in Q12.19, the sum inverted (GetReciprocal) and each exp scaled
    by it; the result is offset by the output type's minimum (zero point -128 / -32768, scale 2^-bits).
    """
    x = np.asarray(input).astype(np.int64)
    out_dtype = np.dtype(output_dtype).type
    out_bits = np.dtype(out_dtype).itemsize * 8
    lo, hi = _dtype_limits(out_dtype)
    kernel = "softmax_int8"
    diff = x - x.max(axis=-1, keepdims=True)
    used = diff >= int(diff_min)
    rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(
        np.where(used, diff, 0), input_multiplier, input_left_shift, kernel=kernel
    )
    exps = fp.exp_on_negative_values(rescaled, 5)
    sum_of_exps = np.where(used, fp.rounding_divide_by_pot(exps, 12), 0).sum(axis=-1)
    check_range(sum_of_exps, INT32_MIN, INT32_MAX, kernel, "the Q12.19 sum of exps", exc=AccumulatorOverflow)
    scale, bits_over_unit = fp.get_reciprocal(sum_of_exps, 12)
    exponent = bits_over_unit + 31 - out_bits
    if np.any(exponent > 31):
        raise FixedPointOverflow(
            kernel,
            "the output shift (RoundingDivideByPOT exponent)",
            int(exponent.max()),
            int((exponent > 31).sum()),
            (0, 31),
        )
    unsat = fp.rounding_divide_by_pot(
        fp.saturating_rounding_doubling_high_mul(scale[..., None], exps), exponent[..., None]
    )
    out = np.clip(unsat + lo, lo, hi)
    return np.where(used, out, lo).astype(out_dtype)


def softmax_int16(input, *, input_multiplier, input_shift, exp_lut=None, one_over_one_plus_x_lut=None) -> np.ndarray:
    """TFLite SoftmaxInt16 over the last axis: table-driven exp and reciprocal (513-entry interpolated LUTs).

    ``x - max`` is scaled so [-10, 0] maps to [-65535, 0] and recentred into int16 for the exp table (Q0.15
    results), the exps summed in Q16.15, the sum normalised to [1, 2) for the 1/(1+x) table, and each exp
    multiplied by the reciprocal with one rounding shift. Output scale 2^-15, zero point 0, range [0, 32767].
    """
    x = np.asarray(input).astype(np.int64)
    exp_lut = fp.exp_lut_int16() if exp_lut is None else np.asarray(exp_lut, dtype=np.int64)
    recip_lut = (
        fp.one_over_one_plus_x_lut_int16()
        if one_over_one_plus_x_lut is None
        else np.asarray(one_over_one_plus_x_lut, dtype=np.int64)
    )
    diff = x - x.max(axis=-1, keepdims=True)
    scaled = fp.multiply_by_quantized_multiplier(diff, input_multiplier, input_shift, kernel="softmax_int16")
    sym = np.clip(scaled + 32767, fp.INT16_MIN, fp.INT16_MAX)
    exps = fp.int16_lut_lookup(sym, exp_lut)
    sum_of_exps = exps.sum(axis=-1)
    check_range(sum_of_exps, INT32_MIN, INT32_MAX, "softmax_int16", "the Q16.15 sum of exps", exc=AccumulatorOverflow)
    headroom_plus_one = fp.count_leading_zeros32(sum_of_exps)
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), fp.INT16_MIN, fp.INT16_MAX)
    reciprocal = fp.int16_lut_lookup(sym_sum, recip_lut)
    right_shift = (31 - headroom_plus_one)[..., None]
    result = (exps * reciprocal[..., None] + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(result, 0, fp.INT16_MAX).astype(np.int16)


# --------------------------------------------------------------------------------------------------------------
# SVDF
# --------------------------------------------------------------------------------------------------------------


def svdf(
    input,
    state,
    weights_feature,
    weights_time,
    bias=None,
    *,
    rank,
    input_zero_point=0,
    state_zero_point=0,
    output_zero_point=0,
    feature_multiplier,
    feature_shift,
    output_multiplier,
    output_shift,
    state_min=None,
    state_max=None,
    activation_min=None,
    activation_max=None,
):
    """One step of the integer SVDF (TFLM EvalIntegerSvdfReference); returns ``(output, new_state)``.

    ``input`` (batches, input_size) int8; ``state`` (batches, filters, memory) int16 or int8, oldest first;
    ``weights_feature`` (filters, input_size) int8; ``weights_time`` (filters, memory) of the state's type;
    ``bias`` (units,) int32 with units = filters / rank. The state drops its oldest column; the feature
    projection, requantised and clamped to the state range, becomes the newest; the time filter is a dot
    product over memory, ``rank`` filters are summed per unit, biased and requantised to int8.
    """
    x = np.asarray(input).astype(np.int64)
    s = np.asarray(state)
    state_dtype = s.dtype.type
    lo, hi = _dtype_limits(state_dtype)
    smin = lo if state_min is None else int(state_min)
    smax = hi if state_max is None else int(state_max)
    wf = np.asarray(weights_feature).astype(np.int64)
    wt = np.asarray(weights_time).astype(np.int64)
    batches, filters, memory = s.shape
    if filters % rank:
        raise ValueError(f"svdf: {filters} filters are not a multiple of rank {rank}")
    units = filters // rank
    kernel = "svdf"
    feature = (x.reshape(batches, -1) - int(input_zero_point)) @ wf.T
    check_range(feature, INT32_MIN, INT32_MAX, kernel, "the feature accumulator", exc=AccumulatorOverflow)
    feature = np.clip(
        fp.multiply_by_quantized_multiplier(feature, feature_multiplier, feature_shift, kernel=kernel), smin, smax
    )
    new_state = np.concatenate([s[:, :, 1:].astype(np.int64), (feature + int(state_zero_point))[:, :, None]], axis=2)
    check_range(new_state, lo, hi, kernel, "the new state value")
    time = np.einsum("bfm,fm->bf", new_state - int(state_zero_point), wt)
    check_range(time, INT32_MIN, INT32_MAX, kernel, "the time accumulator", exc=AccumulatorOverflow)
    acc = time.reshape(batches, units, rank).sum(axis=2) + _bias(bias, units)
    out = _requantize(
        acc, output_multiplier, output_shift, output_zero_point, activation_min, activation_max, np.int8, kernel=kernel
    )
    return out, new_state.astype(state_dtype)


# --------------------------------------------------------------------------------------------------------------
# Logistic, hard-swish, mean
# --------------------------------------------------------------------------------------------------------------

_INT8_LEVELS = np.arange(-128, 128, dtype=np.int64)


def _int8_table(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply an elementwise int8 -> int8 map given as its 256 outputs (the map of int8 level -128 + i is
    ``table[i]``): exact, since an int8 input can only take those 256 values."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise TypeError(f"expected an int8 tensor, got {x.dtype}")
    return table[x.astype(np.int16) + 128]


def logistic_int8(input, *, input_zero_point, input_multiplier, input_left_shift, input_range_radius) -> np.ndarray:
    """TFLM int8 LOGISTIC: output scale 1/256, zero point -128 (fixed by TFLite).

    ``x - zp`` beyond the radius saturates; inside it is rescaled to Q4.27, gemmlowp's fixed-point logistic
    gives Q0.31, and a rounding division by 2^23 brings it to 1/256 steps before the -128 offset."""
    x = _INT8_LEVELS - int(input_zero_point)
    inside = (x > -int(input_range_radius)) & (x < int(input_range_radius))
    q4 = fp.multiply_by_quantized_multiplier(
        np.where(inside, x, 0), input_multiplier, input_left_shift, kernel="logistic"
    )
    y = np.clip(fp.rounding_divide_by_pot(fp.logistic_fixed_point(q4, 4), 23) - 128, -128, 127)
    y = np.where(inside, y, np.where(x > 0, 127, -128))
    return _int8_table(input, y.astype(np.int8))


def hard_swish_int8(
    input, *, input_zero_point, output_zero_point, output_multiplier, output_exponent, reluish_multiplier,
    reluish_exponent,
) -> np.ndarray:  # fmt: skip
    """TFLM int8 HARD_SWISH, x * relu6(x + 3) / 6 in 16-bit fixed point (TFLite's reference_ops::HardSwish).

    ``x - zp`` times 128 goes (a) to the output scale by the int16 output multiplier and (b) to a "reluish"
    value on which +-3.0 is +-2^15 (saturating), mapped to [0, 1]; their truncating doubling product,
    divided by 2^-output_exponent with rounding, plus the output zero point is the result. Parameters come
    from ``fixedpoint.hard_swish_params``."""
    if not 0 <= -int(output_exponent) <= 15 or -int(reluish_exponent) > 15:
        raise ValueError("hard_swish_int8: a right shift beyond 15 bits has no int16 meaning")
    hires = (_INT8_LEVELS - int(input_zero_point)) * 128
    preshift_output = fp.saturating_rounding_doubling_high_mul_int16(hires, int(output_multiplier))
    reluish = hires
    if reluish_exponent > 0:
        reluish = fp.saturating_left_shift_int16(reluish, int(reluish_exponent) - 1)
    reluish = fp.saturating_rounding_doubling_high_mul_int16(reluish, int(reluish_multiplier))
    if reluish_exponent > 0:
        reluish = fp.saturating_left_shift_int16(reluish, 1)
    elif reluish_exponent < 0:
        reluish = fp.rounding_divide_by_pot(reluish, -int(reluish_exponent))
    reluish = (reluish + (1 << 15)) >> 1
    product = fp.saturating_doubling_high_mul_int16(reluish, preshift_output)
    y = fp.rounding_divide_by_pot(product, -int(output_exponent)) + int(output_zero_point)
    y = ((y + (1 << 15)) & 0xFFFF) - (1 << 15)  # the C code adds the zero point in int16
    return _int8_table(input, np.clip(y, -128, 127).astype(np.int8))


def _reduced_sum(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> tuple[np.ndarray, int]:
    """(int32 sum over ``axes``, number of values summed); a sum outside int32 raises (TFLM would wrap)."""
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if count == 0:
        raise ValueError("mean: an empty reduction")
    total = x.astype(np.int64).sum(axis=axes, keepdims=keepdims)
    check_range(total, INT32_MIN, INT32_MAX, "mean", "the int32 sum", exc=AccumulatorOverflow)
    return total, count


def mean_same_quant(input, axes, *, keepdims: bool = True) -> np.ndarray:
    """TFLM int8 MEAN when input and output share scale and zero point: the raw sum divided by the count
    with C's truncating division (no rounding, no zero-point correction)."""
    x = np.asarray(input)
    total, count = _reduced_sum(x, tuple(axes), keepdims)
    return (np.sign(total) * (np.abs(total) // count)).astype(x.dtype)


def mean_requantize(
    input, axes, *, input_zero_point, output_zero_point, output_multiplier, output_shift, keepdims: bool = True
) -> np.ndarray:
    """TFLM int8 MEAN with distinct parameters (reference_ops::QuantizedMeanOrSum).

    The multiplier of s_in / s_out absorbs 1/N: it is shifted left by min(floor(log2 N), 32, 31 + shift),
    divided by N (truncating) and the shift lowered to match; then ``sum - zp_in * N`` is requantised as
    usual and offset by the output zero point."""
    x = np.asarray(input)
    total, count = _reduced_sum(x, tuple(axes), keepdims)
    extra = min(count.bit_length() - 1, 32, 31 + int(output_shift))
    multiplier = (int(output_multiplier) << extra) // count
    centred = total - int(input_zero_point) * count
    check_range(centred, INT32_MIN, INT32_MAX, "mean", "the zero-point corrected sum", exc=AccumulatorOverflow)
    y = fp.multiply_by_quantized_multiplier(centred, multiplier, int(output_shift) - extra, kernel="mean")
    return np.clip(y + int(output_zero_point), *_dtype_limits(x.dtype)).astype(x.dtype)


# --------------------------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE
# --------------------------------------------------------------------------------------------------------------


def affine_quantize(input, *, scale: float, zero_point: int, output_dtype) -> np.ndarray:
    """QUANTIZE of float input (reference_ops::AffineQuantize): ``x / scale`` in float32 (the input and the
    scale are float32 there), rounded half away from zero (std::round), cast to int32, plus the zero point,
    saturated to the output type. The rounding runs on the float32 quotient widened to float64, where
    ``|q| + 0.5`` is exact. A quotient beyond int32 makes the C cast undefined (x86 gives INT32_MIN, and
    adding a negative zero point then wraps: tflite-micro on x86 turns both +-1e30 into 127 at zero point -1):
    that raises instead of guessing."""
    with np.errstate(over="ignore"):  # an infinite quotient is refused just below, as the overflow it is
        quotient = (np.asarray(input, np.float32) / np.float32(scale)).astype(np.float64)
    rounded = np.copysign(np.floor(np.abs(quotient) + 0.5), quotient)
    if np.any(np.isnan(rounded)):
        raise FixedPointOverflow("quantize", "x / scale (NaN)", INT32_MIN, int(np.isnan(rounded).sum()),
                                 (INT32_MIN, INT32_MAX))  # fmt: skip
    check_range(rounded, INT32_MIN, INT32_MAX, "quantize", "round(x / scale) cast to int32")
    lo, hi = _dtype_limits(output_dtype)
    return np.clip(rounded.astype(np.int64) + int(zero_point), lo, hi).astype(output_dtype)


def requantize(input, *, multiplier: int, shift: int, input_zero_point: int, output_zero_point: int, output_dtype):
    """QUANTIZE of integer input (reference_ops::Requantize): ``MBQM(x - zp_in) + zp_out``, saturated. The
    multiplier is QuantizeMultiplier(double(s_in) / double(s_out)); equal parameters give back the input."""
    x = np.asarray(input, np.int64) - int(input_zero_point)
    y = fp.multiply_by_quantized_multiplier(x, multiplier, shift, kernel="quantize (requantize)")
    lo, hi = _dtype_limits(output_dtype)
    return np.clip(y + int(output_zero_point), lo, hi).astype(output_dtype)


def dequantize(input, *, scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE to float32 (reference_ops::Dequantize): ``float(double(scale) * (q - zp))``. For int8 / int16
    input the double product is exact (at most 17 + 24 significant bits), so this is the correctly rounded
    float32 product, the same as ``(q - zp) * scale`` in float32."""
    return ((np.asarray(input, np.int64) - int(zero_point)) * np.float64(np.float32(scale))).astype(np.float32)
