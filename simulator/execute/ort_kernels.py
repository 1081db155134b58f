"""onnxruntime's (x86 CPU, MLAS) quantized kernels as pure numpy functions (the ``ort`` mode of the integer executor).

Each function takes integer arrays in ONNX layouts (NCHW activations, OIHW conv weights) and explicit
quantisation parameters, and reproduces what onnxruntime computes bit for bit:

* Conv / MatMul / Gemm (``QLinearConv``, ``QLinearMatMul``, ``QGemm``): exact integer accumulation of
  ``(x - zp_x) * (w - zp_w)`` plus the int32 bias, then MLAS's requantization in float32:
  ``float(acc) * scale`` with ``scale = float32(float32(s_x * s_w[c]) / s_y)``, clamped to the output range
  minus the zero point, rounded half to even (``cvtps2dq``) and shifted by the zero point.
  Products go through BLAS in float64: int8 x int8 sums are exact there far beyond any real layer.
* ``QLinearAdd``: the AVX2 kernel: ``fma(a, s_a/s_c, fma(b, s_b/s_c, zp_c - (s_a/s_c*zp_a + s_b/s_c*zp_b)))``
  on the raw 8-bit values in float32, rounded half to even and saturated.
* ``QLinearGlobalAveragePool``: integer sum minus ``zp_x * N``, times ``s_x / (s_y * N)`` in float32.
* ``QLinearAveragePool`` (general windows): dequantize to float32, sum the in-image taps in order, divide by
  the count, then ``nearbyint(y / s_y + zp_y)``.
* ``QLinearSoftmax``: onnxruntime's float lookup table of ``exp`` and float32 sums.
* ``QLinearMul``: the exact integer product ``(a - zp_a) (b - zp_b)`` times ``s_a s_b / s_c``, plus ``zp_c``, in
  float32 (SSE2, no fma), ``cvtps2dq`` and saturation.
* ``QLinearSigmoid`` / ``QLinearLeakyRelu``: a 256-entry table, the float function applied to every dequantized level.
* float Sigmoid and Tanh: MLAS's FMA3 rational approximations (:func:`mlas_logistic`, :func:`mlas_tanh`).
* QuantizeLinear / DequantizeLinear: float32 division (resp. product), round half to even, saturate.

Every accumulator that leaves int32 raises :class:`AccumulatorOverflow` with the layer named by the caller
(the runtime would wrap).
"""

from __future__ import annotations

import math

import numpy as np

from simulator.execute.exact_sums import F32_EXACT, row_sign_sums, subset_sum_bound
from simulator.execute.fixedpoint import INT32_MAX, INT32_MIN, FixedPointOverflow

F32 = np.float32
F64 = np.float64


class AccumulatorOverflow(FixedPointOverflow):
    """An int32 accumulator of an onnxruntime kernel left the int32 range (the runtime would wrap)."""


def _limits(dtype) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def check_int32(acc: np.ndarray, kernel: str) -> None:
    if acc.size == 0:
        return
    lo, hi = int(acc.min()), int(acc.max())
    if lo < INT32_MIN or hi > INT32_MAX:
        worst = lo if lo < INT32_MIN else hi
        count = int(np.count_nonzero((acc < INT32_MIN) | (acc > INT32_MAX)))
        raise AccumulatorOverflow(kernel, "accumulator", worst, count, (INT32_MIN, INT32_MAX))


# --------------------------------------------------------------------------------------------------------------
# float32 primitives
# --------------------------------------------------------------------------------------------------------------


def fma32(a, b, c) -> np.ndarray:
    """``fma(a, b, c)`` of float32 values with a single rounding to float32 (vfmadd*ps).

    The product of two float32 is exact in float64; the sum is computed with TwoSum so that the exact
    result is ``s + e``; rounding ``s`` to float32 is then correct except where ``s`` is exactly halfway
    between two float32 values and ``e`` says on which side the exact value lies.
    """
    a, b, c = (np.asarray(v, F32) for v in (a, b, c))
    p = a.astype(F64) * b.astype(F64)
    c64 = np.broadcast_to(c.astype(F64), p.shape) if p.ndim else c.astype(F64)
    s = p + c64
    bb = s - p
    e = (p - (s - bb)) + (c64 - bb)
    r = s.astype(F32)
    r64 = r.astype(F64)
    other = np.nextafter(r, np.where(s > r64, F32(np.inf), F32(-np.inf)).astype(F32))
    tie = (s != r64) & ((s - r64) == (other.astype(F64) - s)) & (e != 0)
    if np.any(tie):
        up = np.maximum(r, other)
        down = np.minimum(r, other)
        r = np.where(tie, np.where(e > 0, up, down), r)
    return np.asarray(r, F32)


def round_saturate(y: np.ndarray, zero_point: int, dtype) -> np.ndarray:
    """MLAS's requantize tail: clamp float32 ``y`` to ``[qmin - zp, qmax - zp]``, round half to even, add zp."""
    lo, hi = _limits(dtype)
    y = np.clip(np.asarray(y, F32), F32(lo - zero_point), F32(hi - zero_point))
    return (np.rint(y).astype(np.int64) + int(zero_point)).astype(dtype)


def _along_axis(scale, zero_point, ndim: int, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """float32 scale and int64 zero point, shaped to broadcast along ``axis`` when they are per channel."""
    scale = np.asarray(scale, F32)
    zp = np.asarray(zero_point, np.int64)
    if axis is not None and scale.size > 1:
        shape = [1] * ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return scale, zp


def quantize_linear(x, scale, zero_point, dtype, axis: int | None = None) -> np.ndarray:
    """ONNX QuantizeLinear as MLAS computes it: ``x / scale`` in float32, clamp, round half to even, + zp."""
    x = np.asarray(x, F32)
    scale, zp = _along_axis(scale, zero_point, x.ndim, axis)
    lo, hi = _limits(dtype)
    y = np.clip(x / scale, (lo - zp).astype(F32), (hi - zp).astype(F32))
    if np.dtype(dtype).itemsize <= 2:  # rounded values and zero points of 8 / 16 bits are exact in float32
        np.rint(y, out=y)
        y += zp.astype(F32)
        return y.astype(dtype)
    return (np.rint(y).astype(np.int64) + zp).astype(dtype)


def dequantize_linear(q, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """ONNX DequantizeLinear as onnxruntime computes it: ``float(q - zp) * scale`` in float32."""
    q = np.asarray(q)
    scale, zp = _along_axis(scale, zero_point, q.ndim, axis)
    return (q.astype(np.int64) - zp).astype(F32) * scale


def requant_scale(x_scale, w_scale, y_scale) -> np.ndarray:
    """Per-channel float32 multiplier ``x_scale * w_scale[c] / y_scale`` in onnxruntime's operation order."""
    return ((F32(x_scale) * np.asarray(w_scale, F32).reshape(-1)) / F32(y_scale)).astype(F32)


# --------------------------------------------------------------------------------------------------------------
# Conv / MatMul / Gemm
# --------------------------------------------------------------------------------------------------------------


def conv_padding(in_hw, kernel, strides, dilations, pads=None, auto_pad: str = "NOTSET") -> tuple[list[int], list[int]]:
    """(pads_begin, pads_end) per spatial axis as ONNX defines them (explicit pads or SAME_UPPER/LOWER/VALID)."""
    rank = len(in_hw)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(rank):
            out = -(-in_hw[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i])
            small = total // 2
            if auto_pad == "SAME_UPPER":
                begin.append(small)
                end.append(total - small)
            else:
                begin.append(total - small)
                end.append(small)
        return begin, end
    if auto_pad == "VALID" or pads is None:
        return [0] * rank, [0] * rank
    pads = [int(p) for p in pads]
    return pads[:rank], pads[rank:]


def _patches(x: np.ndarray, kernel, strides, dilations, pads_begin, pads_end) -> np.ndarray:
    """Sliding windows of an NC(H)(W) array padded with zeros: shape (N, C, *kernel, *out)."""
    spatial = x.ndim - 2
    pad = [(0, 0), (0, 0)] + [(pads_begin[i], pads_end[i]) for i in range(spatial)]
    xp = np.pad(x, pad)
    out = [(xp.shape[2 + i] - ((kernel[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(spatial)]
    shape = x.shape[:2] + tuple(kernel) + tuple(out)
    s = xp.strides
    new_strides = (
        s[:2]
        + tuple(s[2 + i] * dilations[i] for i in range(spatial))
        + tuple(s[2 + i] * strides[i] for i in range(spatial))
    )
    return np.lib.stride_tricks.as_strided(xp, shape, new_strides, writeable=False)


_F64_EXACT = 1 << 53
_CHUNK = 1 << 16  # elements per requantization block (temporaries stay in cache)


def _conv_float_accumulate(
    x: np.ndarray,
    x_zero_point: int,
    w: np.ndarray,
    w_zero_point,
    *,
    strides,
    dilations,
    pads_begin,
    pads_end,
    group,
    split: bool = True,
    pos_neg=None,
):
    """``sum (x - zp_x) (w - zp_w)`` of an ONNX conv as an exact integer-valued float array (N, M, *out), or
    None when no float type is exact for this layer."""
    spatial = x.ndim - 2
    kernel = tuple(w.shape[2:])
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    taps = cg * math.prod(kernel)
    xzp = int(x_zero_point)
    x_lo = 0 if x.size == 0 else min(int(x.min()) - xzp, 0)
    x_hi = 0 if x.size == 0 else max(int(x.max()) - xzp, 0)
    x_range = max(-x_lo, x_hi)
    wzp = np.asarray(w_zero_point, np.int64)
    if wzp.any():
        wi = w.astype(np.int64) - (wzp.reshape((-1,) + (1,) * (w.ndim - 1)) if wzp.ndim else wzp)
        w_range = 0 if wi.size == 0 else int(np.abs(wi).max())
    else:
        wi = w
        w_range = 0 if w.size == 0 else max(abs(int(w.min())), abs(int(w.max())))
    if taps * x_range * w_range >= _F64_EXACT:
        return None
    # float32 when every partial sum is an exact integer there (BLAS may sum in any order), else float64 (exact
    # below 2^53, which 8-bit layers never reach)
    ft = F32
    if taps * x_range * w_range >= F32_EXACT:
        if w_range <= F32_EXACT and wi.size:
            pos_neg = row_sign_sums(wi.reshape(m, -1)) if pos_neg is None else pos_neg
        if pos_neg is None or subset_sum_bound(x_lo, x_hi, pos_neg) >= F32_EXACT:
            ft = F64
    # x - zp = 16 h + l with l in [0, 15]: two float32 products (BLAS at twice the float64 rate, weights converted
    # once to float32) are exact where the whole one is not, and 16 acc_h + acc_l is exact in float64. Both
    # halves run as one batch of 2N images with zero point 0.
    if (
        ft is F64
        and split
        and x.dtype.kind in "iu"
        and x.dtype.itemsize == 1
        and x_range >= 32
        and pos_neg is not None
        and max(subset_sum_bound(x_lo >> 4, x_hi >> 4, pos_neg), subset_sum_bound(0, 15, pos_neg)) < F32_EXACT
    ):
        xs = x.astype(np.int16) - np.int16(xzp)
        halves = np.concatenate([xs >> 4, xs & 15])
        acc = _conv_float_accumulate(
            halves, 0, wi, 0, strides=strides, dilations=dilations, pads_begin=pads_begin, pads_end=pads_end,
            group=group, split=False, pos_neg=pos_neg,
        )  # fmt: skip
        if acc is not None and acc.dtype == F32:
            out = acc[:n].astype(F64)
            out *= 16.0
            out += acc[n:]
            return out
    wf = wi.astype(ft)
    # zero-padded (x - zp_x) in float: padding is the zero point, which contributes nothing
    padded = tuple(x.shape[2 + i] + pads_begin[i] + pads_end[i] for i in range(spatial))
    if any(pads_begin) or any(pads_end):
        xf = np.zeros((n, c) + padded, ft)
        inner = (slice(None), slice(None)) + tuple(
            slice(pads_begin[i], pads_begin[i] + x.shape[2 + i]) for i in range(spatial)
        )
        np.subtract(x, ft(xzp), out=xf[inner], casting="unsafe")
    else:
        xf = np.subtract(x, ft(xzp), dtype=ft)
    out_sp = tuple((padded[i] - ((kernel[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(spatial))
    st = xf.strides
    shape = (n, c) + kernel + out_sp
    new_strides = (
        st[:2]
        + tuple(st[2 + i] * dilations[i] for i in range(spatial))
        + tuple(st[2 + i] * strides[i] for i in range(spatial))
    )
    p = np.lib.stride_tricks.as_strided(xf, shape, new_strides, writeable=False)
    if group == 1:
        if math.prod(kernel) == 1 and all(s == 1 for s in strides):
            cols = xf.reshape(n, c, -1)  # 1x1 conv, stride 1: the image is its own im2col
        else:
            cols = p.reshape(n, taps, -1)  # im2col: (N, C*k, out)
        if n > 1:  # one GEMM over every image: the weights are read once
            wide = np.matmul(wf.reshape(m, taps), cols.transpose(1, 0, 2).reshape(taps, -1))
            return wide.reshape((m, n) + out_sp).swapaxes(0, 1)
        return np.matmul(wf.reshape(m, taps), cols).reshape((n, m) + out_sp)
    if cg == 1:  # depthwise (with a depth multiplier): one multiply-add per tap, vectorised over channels
        mult = mg
        pg = p.reshape((n, c, 1) + kernel + out_sp)
        wg = wf.reshape((c, mult) + kernel + (1,) * spatial)
        acc = np.zeros((n, c, mult) + out_sp, ft)
        tmp = np.empty_like(acc)
        for tap in np.ndindex(*kernel):
            np.multiply(
                pg[(slice(None), slice(None), slice(None), *tap)], wg[(slice(None), slice(None), *tap)], out=tmp
            )
            acc += tmp
        return acc.reshape((n, m) + out_sp)
    cols = p.reshape((n, group, taps, -1))
    return np.matmul(wf.reshape(group, mg, taps), cols).reshape((n, m) + out_sp)


def conv_accumulate(
    x: np.ndarray,
    x_zero_point: int,
    w: np.ndarray,
    w_zero_point,
    bias: np.ndarray | None,
    *,
    strides=None,
    dilations=None,
    pads_begin=None,
    pads_end=None,
    group: int = 1,
) -> np.ndarray:
    """Exact int64 accumulators of an ONNX Conv on integers: ``sum (x - zp_x) (w - zp_w) + bias``.

    Padding contributes nothing (it is the zero point, as in QLinearConv). Layout NCHW / OIHW (1-d or 2-d).
    """
    spatial = x.ndim - 2
    if spatial not in (1, 2):
        raise ValueError(f"{spatial}-d convolution is not supported")
    attrs = dict(
        strides=list(strides or [1] * spatial),
        dilations=list(dilations or [1] * spatial),
        pads_begin=list(pads_begin or [0] * spatial),
        pads_end=list(pads_end or [0] * spatial),
        group=group,
    )
    acc = _conv_float_accumulate(np.asarray(x), x_zero_point, np.asarray(w), w_zero_point, **attrs)
    if acc is None:
        raise ValueError("conv accumulators may exceed 2^53: not representable exactly")
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape((1, -1) + (1,) * spatial)
    return acc


def requantize(acc: np.ndarray, scale, zero_point: int, dtype, channel_axis: int | None = 1) -> np.ndarray:
    """MLAS requantization of int32 accumulators with a float32 per-tensor or per-channel ``scale``."""
    scale = np.asarray(scale, F32).reshape(-1)
    if scale.size > 1:
        shape = [1] * acc.ndim
        shape[channel_axis] = -1
        scale = scale.reshape(shape)
    else:
        scale = scale.reshape(())
    y = acc.astype(F32) * scale
    return round_saturate(y, zero_point, dtype)


def _requantize_conv_fast(acc_f: np.ndarray, bias, scale, zero_point: int, dtype, name: str) -> np.ndarray:
    """:func:`requantize` of ``acc_f + bias`` (``acc_f`` exact integers in float, (N, M, *sp)), block by block:
    the int32 accumulator ``acc_f + bias`` is formed exactly in float64, checked against int32, rounded once to
    float32 (as ``(float)int32`` does), scaled, clamped, rounded half to even and offset by the zero point."""
    n, m = acc_f.shape[:2]
    a3 = acc_f.reshape(n, m, -1)
    hw = a3.shape[2]
    scale = np.asarray(scale, F32).reshape(-1)
    sc = (scale.reshape(-1, 1) if scale.size > 1 else scale.reshape(1, 1)).astype(F32)
    b = None if bias is None else np.asarray(bias, np.int64).reshape(-1)
    bf = None if b is None else b.astype(F64).reshape(-1, 1)
    lo, hi = _limits(dtype)
    ylo, yhi = F32(lo - zero_point), F32(hi - zero_point)
    out = np.empty(a3.shape, dtype)
    cols = max(1, _CHUNK // max(1, m))
    buf64 = np.empty((m, min(cols, hw)), F64)
    buf32 = np.empty((m, min(cols, hw)), F32)
    zp = F32(zero_point)
    for i in range(n):
        for start in range(0, hw, cols):
            src = a3[i, :, start : start + cols]
            k = src.shape[1]
            t64, t32 = buf64[:, :k], buf32[:, :k]
            if bf is not None:
                np.add(src, bf, out=t64)
            else:
                t64[...] = src
            if t64.size and (t64.min() < INT32_MIN or t64.max() > INT32_MAX):
                acc = a3.astype(np.int64)
                if b is not None:
                    acc += b.reshape(1, -1, 1)
                check_int32(acc, name)
            t32[...] = t64  # (float)int32: rounds half to even once
            t32 *= sc
            np.clip(t32, ylo, yhi, out=t32)
            np.rint(t32, out=t32)
            t32 += zp  # exact: small integers
            out[i, :, start : start + k] = t32
    return out.reshape(acc_f.shape)


def qlinear_conv(
    x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias=None, *, name="conv", **attrs
) -> np.ndarray:
    """QLinearConv: integer conv, int32 bias, float32 requantization (attrs as :func:`conv_accumulate`)."""
    dtype = np.asarray(y_zero_point).dtype
    x, w = np.asarray(x), np.asarray(w)
    spatial = x.ndim - 2
    if spatial in (1, 2):
        full = dict(
            strides=list(attrs.get("strides") or [1] * spatial),
            dilations=list(attrs.get("dilations") or [1] * spatial),
            pads_begin=list(attrs.get("pads_begin") or [0] * spatial),
            pads_end=list(attrs.get("pads_end") or [0] * spatial),
            group=int(attrs.get("group", 1)),
        )
        acc_f = _conv_float_accumulate(x, int(x_zero_point), w, w_zero_point, **full)
        if acc_f is not None:
            scale = requant_scale(x_scale, w_scale, y_scale)
            return _requantize_conv_fast(acc_f, bias, scale, int(y_zero_point), dtype, name)
    acc = conv_accumulate(x, int(x_zero_point), w, w_zero_point, bias, **attrs)
    check_int32(acc, name)
    return requantize(acc, requant_scale(x_scale, w_scale, y_scale), int(y_zero_point), dtype)


def matmul_accumulate(a, a_zero_point, b, b_zero_point, bias=None) -> np.ndarray:
    """Exact int64 ``(a - zp_a) @ (b - zp_b) + bias``; b is [K, N] with zp per column (N) or per tensor."""
    af = np.asarray(a, F64) - F64(a_zero_point)
    bzp = np.asarray(b_zero_point, F64)
    bf = np.asarray(b, F64) - (bzp.reshape(1, -1) if bzp.size > 1 else bzp.reshape(()))
    acc = np.rint(af @ bf).astype(np.int64)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return acc


def qlinear_matmul(
    a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, bias=None, *, name="matmul"
) -> np.ndarray:
    """QLinearMatMul / QGemm on 2-d (or batched) a and [K, N] b, per-column or per-tensor b scale."""
    acc = matmul_accumulate(a, int(a_zero_point), b, b_zero_point, bias)
    check_int32(acc, name)
    dtype = np.asarray(y_zero_point).dtype
    return requantize(acc, requant_scale(a_scale, b_scale, y_scale), int(y_zero_point), dtype, channel_axis=-1)


# --------------------------------------------------------------------------------------------------------------
# Elementwise and pooling
# --------------------------------------------------------------------------------------------------------------


def qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point) -> np.ndarray:
    """QLinearAdd as MLAS's AVX2 kernel computes it (fused multiply-adds in float32, RNE, saturation)."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.asarray(c_zero_point).dtype
    if a.shape == b.shape and a.size > 2 * 65536 and a.dtype == b.dtype and a.dtype in (np.uint8, np.int8):
        # elementwise in two 8-bit values: the kernel on all 65536 pairs once, then a table lookup
        info = np.iinfo(a.dtype)
        levels = np.arange(info.min, info.max + 1).astype(a.dtype)
        grid_a, grid_b = np.meshgrid(levels, levels, indexing="ij")
        table = qlinear_add(grid_a, a_scale, a_zero_point, grid_b, b_scale, b_zero_point, c_scale, c_zero_point)
        ia = a.view(np.uint8).astype(np.intp)
        ia <<= 8
        ia |= b.view(np.uint8)
        if a.dtype == np.int8:  # int8 levels start at -128: index i holds level i - 128
            ia ^= 0x8080
        return table.reshape(-1)[ia]
    r_a = F32(F32(a_scale) / F32(c_scale))
    r_b = F32(F32(b_scale) / F32(c_scale))
    zp_a, zp_b, zp_c = int(a_zero_point), int(b_zero_point), int(c_zero_point)
    # (float)zp_c - (r_a * zp_a + r_b * zp_b); the compiler contracts the inner sum into one fma
    fixed = F32(F32(zp_c) - fma32(r_a, F32(zp_a), F32(r_b) * F32(zp_b)))
    if b.size == 1 and a.size > 1:
        fixed = F32(fixed + F32(F32(b.reshape(())) * r_b))
        y = fma32(a.astype(F32), r_a, fixed)
    elif a.size == 1 and b.size > 1:
        fixed = F32(fixed + F32(F32(a.reshape(())) * r_a))
        y = fma32(b.astype(F32), r_b, fixed)
    else:
        a, b = np.broadcast_arrays(a, b)
        y = fma32(b.astype(F32), r_b, fixed)
        y = fma32(a.astype(F32), r_a, y)
    lo, hi = _limits(dtype)
    return np.clip(np.rint(y).astype(np.int64), lo, hi).astype(dtype)


def qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, keepdims=True) -> np.ndarray:
    """QLinearGlobalAveragePool (NCHW): integer sum over the image minus ``zp_x * N``, float32 scaling."""
    x = np.asarray(x)
    n_img = math.prod(x.shape[2:])
    scale = F32(F32(x_scale) / F32(F32(y_scale) * F32(n_img)))
    acc = x.reshape(x.shape[:2] + (-1,)).astype(np.int64).sum(axis=-1) - int(x_zero_point) * n_img
    dtype = np.asarray(y_zero_point).dtype
    y = round_saturate(acc.astype(F32) * scale, int(y_zero_point), dtype)
    return y.reshape(x.shape[:2] + (1,) * (x.ndim - 2)) if keepdims else y


def qlinear_average_pool(
    x, x_scale, x_zero_point, y_scale, y_zero_point, *, kernel, strides, pads_begin, pads_end, count_include_pad=0
) -> np.ndarray:
    """QLinearAveragePool (2-d, NCHW). A window covering the whole unpadded image is the global pool."""
    x = np.asarray(x)
    spatial = x.ndim - 2
    if list(kernel) == list(x.shape[2:]) and not any(pads_begin) and not any(pads_end):
        return qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point)
    xf = dequantize_linear(x, x_scale, x_zero_point)
    ones = np.ones(x.shape[2:], F32)
    p = _patches(xf, kernel, strides, [1] * spatial, pads_begin, pads_end)
    mask = _patches(ones[None, None], kernel, strides, [1] * spatial, pads_begin, pads_end)
    # sum the taps in window order (row by row), in float32, as the reference loop does
    taps = p.reshape(p.shape[:2] + (-1,) + p.shape[2 + spatial :])
    valid = mask.reshape((-1,) + mask.shape[2 + spatial :])
    total = np.zeros(taps.shape[:2] + taps.shape[3:], F32)
    for k in range(taps.shape[2]):
        total = np.where(valid[k], F32(total + taps[:, :, k]), total).astype(F32)
    count = F32(math.prod(kernel)) if count_include_pad else valid.sum(axis=0).astype(F32)
    y = (total / count).astype(F32)
    dtype = np.asarray(y_zero_point).dtype
    lo, hi = _limits(dtype)
    q = np.rint((y / F32(y_scale)).astype(F32) + F32(int(y_zero_point))).astype(np.int64)
    return np.clip(q, lo, hi).astype(dtype)


def max_pool(x, *, kernel, strides, dilations=None, pads_begin, pads_end) -> np.ndarray:
    """MaxPool on integers over the in-image taps (padding never wins)."""
    x = np.asarray(x)
    spatial = x.ndim - 2
    lo, _ = _limits(x.dtype)
    dilations = list(dilations or [1] * spatial)
    if all(
        _windows_touch_image(x.shape[2 + i], kernel[i], strides[i], dilations[i], pads_begin[i], pads_end[i])
        for i in range(spatial)
    ):
        # padding at the dtype's minimum never exceeds an in-image tap, and every window has one: a running
        # maximum over the taps, in the input's dtype
        pad = [(0, 0), (0, 0)] + [(pads_begin[i], pads_end[i]) for i in range(spatial)]
        xp = np.pad(x, pad, constant_values=lo) if any(pads_begin) or any(pads_end) else x
        p = _patches(xp, kernel, strides, dilations, [0] * spatial, [0] * spatial)
        taps = np.ndindex(*kernel)
        out = p[(slice(None), slice(None), *next(taps))].copy()
        for tap in taps:
            np.maximum(out, p[(slice(None), slice(None), *tap)], out=out)
        return out
    xi = x.astype(np.int64)
    pad = [(0, 0), (0, 0)] + [(pads_begin[i], pads_end[i]) for i in range(spatial)]
    xp = np.pad(xi, pad, constant_values=lo - 1)
    p = _patches(xp, kernel, strides, dilations, [0] * spatial, [0] * spatial)
    out = p.reshape(p.shape[:2] + (-1,) + p.shape[2 + spatial :]).max(axis=2)
    return out.astype(x.dtype)


def _windows_touch_image(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int) -> bool:
    """Whether every pooling window along one axis has at least one tap inside the image."""
    out = (size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)) // stride + 1
    if out <= 0:
        return False
    taps = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - pad_begin
    return bool(((taps >= 0) & (taps < size)).any(axis=1).all())


def softmax_table(x_scale: float, reduce_len: int, signed: bool = False) -> np.ndarray:
    """QLinearSoftmax's 256-entry float32 table of ``exp((i - 255 + shift) * x_scale)``."""
    flt_max = float(np.finfo(F32).max)
    # log of a float argument is the float overload (std::log(float)): the shift is a float32 value
    bit_shift = float(F32(math.log(float(F32(F32(flt_max) / F32(reduce_len))))))
    bit_shift = max(0.0, bit_shift - 5.0) / float(F32(x_scale))
    table = np.zeros(256, F32)
    for i in range(256):
        value = math.exp((float(i) - 255.0 + bit_shift) * float(F32(x_scale)))
        table[(i - 128) & 0xFF if signed else i] = F32(value)
    return table


def qlinear_softmax(x, x_scale, y_scale, y_zero_point, *, axis: int = -1) -> np.ndarray:
    """QLinearSoftmax (opset 13 semantics, uint8 or int8) as onnxruntime's CPU kernel computes it: a float32 table of
    ``exp`` indexed by ``x - max + 255``, a float32 running sum, ``floor(1 / y_scale)`` as the output factor.
    Checked against onnxruntime 1.32 on random scales, row lengths and all-equal rows (exact ties)."""
    x = np.asarray(x)
    if x.dtype not in (np.uint8, np.int8):
        raise ValueError("QLinearSoftmax takes uint8 or int8 inputs")
    axis = axis % x.ndim
    xt = np.moveaxis(x, axis, -1)
    d = xt.shape[-1]
    table = softmax_table(float(x_scale), d)
    y_scale_f = F32(math.floor(float(F32(1.0) / F32(y_scale))))
    rows = xt.reshape(-1, d).astype(np.int64)
    shifted = table[rows + (255 - rows.max(axis=1, keepdims=True))]
    vsum = np.cumsum(shifted, axis=1, dtype=F32)[:, -1:]
    # onnxruntime's quotient does not overflow float32 where vt * y_scale would (vt reaches ~1e36), and matches
    # the product and quotient taken in double precision, rounded half to even
    y = shifted.astype(F64) * F64(y_scale_f) / vsum.astype(F64)
    # saturated to the output type: onnxruntime 1.32's int8 kernel gives 127 where the rounded quotient plus the
    # zero point passes 127 (a row with one dominant value), not the wrapped value older sources suggest
    lo, hi = _limits(x.dtype)
    out = np.clip(np.rint(y).astype(np.int64) + int(y_zero_point), lo, hi).astype(x.dtype)
    return np.moveaxis(out.reshape(xt.shape), -1, axis)


# --------------------------------------------------------------------------------------------------------------
# float32 Conv as MLAS computes it (the float fallback of QDQ groups onnxruntime does not fuse)
# --------------------------------------------------------------------------------------------------------------

_SGEMM_STRIDE_N = 128  # MLAS_SGEMM_STRIDEN / MLAS_SGEMM_STRIDEK: the panel sizes of MlasSgemmOperation
_SGEMM_STRIDE_K = 128


def sgemm_stride_k(n: int, k: int) -> int:
    """Depth of the K slices MlasSgemmOperation cuts an (M, K) x (K, N) product into: 128, halved while a
    slice would still cover K when N >= K (so one slice), doubled while N is small when N < K."""
    stride_n, stride_k = _SGEMM_STRIDE_N, _SGEMM_STRIDE_K
    if n >= k:
        while stride_k // 2 >= k:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k


def mlas_sgemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 ``a @ b`` (a: (..., M, K), b: (..., K, N)) in the order of MLAS's x86 SGEMM kernels.

    M = 1 (MlasSgemmKernelM1Avx): products rounded one by one, summed four rows of K at a time
    (((p0 + p1) + p2) + p3) and each such sum added to the running result; a remainder of two, then one.
    M > 1 (the FMA kernels): per slice of K (:func:`sgemm_stride_k`) a fused multiply-add chain from zero,
    k after k; each slice's sum is added to the result of the previous ones. Verified against onnxruntime 1.32
    on AVX-512 with one intra-op thread (more threads cut N, and with it the K slices, differently)."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    m, k = a.shape[-2:]
    n = b.shape[-1]
    result = None
    if m == 1:
        start = 0
        for width in [4] * (k // 4) + ([2] if k % 4 >= 2 else []) + ([1] if k % 2 else []):
            part = None
            for i in range(start, start + width):
                p = a[..., i : i + 1] * b[..., i : i + 1, :]  # float32 product, rounded
                part = p if part is None else part + p
            result = part if result is None else part + result
            start += width
        return result
    stride_k = sgemm_stride_k(n, k)
    for k0 in range(0, k, stride_k):
        acc = np.zeros(np.broadcast_shapes(a.shape[:-1], b.shape[:-2] + (1,))[:-1] + (m, n), F32)
        for i in range(k0, min(k, k0 + stride_k)):
            acc = fma32(a[..., i : i + 1], b[..., i : i + 1, :], acc)
        result = acc if result is None else result + acc
    return result


def mlas_conv_float(
    x, w, bias=None, *, strides, dilations, pads_begin, pads_end, group: int = 1
) -> tuple[np.ndarray, str | None]:
    """onnxruntime's float32 Conv (MlasConv: im2col, then :func:`mlas_sgemm` per group, then ``+ bias``).

    Returns ``(y, caveat)``: caveat is None when the result is bit-exact for any thread count, else says under
    which condition it is (one intra-op thread when the K dimension is cut in slices) or that it is not
    (an output of one pixel takes MLAS's transposed M=1 kernel, whose order is not reproduced)."""
    x, w = np.asarray(x, F32), np.asarray(w, F32)
    n, c = x.shape[:2]
    m = w.shape[0]
    spatial = x.ndim - 2
    kernel = list(w.shape[2:])
    cg, mg = c // group, m // group
    p = _patches(x, kernel, strides, dilations, pads_begin, pads_end)  # (N, C, *kernel, *out)
    out_sp = p.shape[2 + spatial :]
    pixels = math.prod(out_sp)
    taps = cg * math.prod(kernel)
    cols = p.reshape(n, group, taps, pixels)  # im2col rows in (channel, ky, kx) order, as the weights
    y = mlas_sgemm(w.reshape(group, mg, taps), cols).reshape((n, m) + tuple(out_sp))
    if bias is not None:
        y = y + np.asarray(bias, F32).reshape((1, m) + (1,) * spatial)
    caveat = None
    if pixels == 1 and mg > 1:
        caveat = "a one-pixel output runs MLAS's transposed M=1 SGEMM kernel, whose summation order is not reproduced"
    elif mg > 1 and taps > sgemm_stride_k(pixels, taps):
        caveat = f"K={taps} is summed in slices whose depth depends on onnxruntime's thread count (exact for one)"
    return y.astype(F32), caveat


# --------------------------------------------------------------------------------------------------------------
# float32 Sigmoid and Tanh as MLAS computes them (x86 with AVX2 / FMA3)
# --------------------------------------------------------------------------------------------------------------
#
# On x86-64 with AVX2 and FMA3 (AVX-512 machines included: MLAS has no AVX-512 override for these two), MLAS's
# platform table dispatches Sigmoid to MlasComputeLogisticF32KernelFma3 and Tanh to MlasComputeTanhF32KernelFma3,
# hand-written assembly that evaluates Eigen's rational approximations with vfmadd (one rounding per multiply-add).
# A CPU without FMA3 takes the SSE2 C++ kernels (separate multiply and add: two roundings), which these functions do
# not reproduce. The coefficients are the float32 values of logistic.cpp's and tanh.cpp's constant tables. (For a
# while onnxruntime's Tanh kernel used another approximation, a degree-2/2 rational with |x| >= 5 giving +-1; the
# Eigen one below is what 1.32 computes, checked element by element against it.)

_LOGISTIC_RANGE = (F32(-18.0), F32(18.0))
#: numerator coefficients of x (odd powers 9 .. 1), highest first
_LOGISTIC_P = tuple(F32(c) for c in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                     8.51377133304701e-03, 2.48287947061529e-01))  # fmt: skip
#: denominator coefficients (even powers 10 .. 0), highest first
_LOGISTIC_Q = tuple(F32(c) for c in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                                     1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01))  # fmt: skip
_TANH_RANGE = (F32(-9.0), F32(9.0))
_TANH_P = tuple(F32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                 5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                 4.89352455891786e-03))  # fmt: skip
_TANH_Q = tuple(F32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                 4.89352518554385e-03))  # fmt: skip


def _clamp_like_vmaxps_vminps(x: np.ndarray, lo: np.float32, hi: np.float32) -> np.ndarray:
    """``vminps(hi, vmaxps(lo, x))``: each instruction returns its second operand (x) unless the comparison holds,
    so a NaN passes through unchanged and -0.0 stays -0.0."""
    x = np.where(lo > x, lo, x)
    return np.where(hi < x, hi, x).astype(F32)


def _horner_fma(x2: np.ndarray, coefficients: tuple) -> np.ndarray:
    """``((c0 x2 + c1) x2 + c2) ...`` with one fused multiply-add per step, as the vfmadd chains compute it."""
    acc = fma32(x2, coefficients[0], coefficients[1])
    for c in coefficients[2:]:
        acc = fma32(x2, acc, c)
    return acc


def _rational(x: np.ndarray, clamp: tuple, p: tuple, q: tuple) -> np.ndarray:
    """Clamp x, then ``(x * P(x^2)) / Q(x^2)`` in float32: x^2, x * P and the quotient rounded once each (vmulps,
    vdivps), every Horner step a single-rounding fma (:func:`fma32`: the product of two float32 is exact in float64
    and TwoSum recovers the error of the float64 sum, so the one rounding to float32 is the correct one)."""
    v = _clamp_like_vmaxps_vminps(np.asarray(x, F32), *clamp)
    x2 = (v * v).astype(F32)
    return ((v * _horner_fma(x2, p)).astype(F32) / _horner_fma(x2, q)).astype(F32)


def mlas_logistic(x) -> np.ndarray:
    """onnxruntime's float32 Sigmoid on x86 with FMA3 (MlasComputeLogisticF32KernelFma3), bit for bit.

    x is clamped to [-18, 18]; ``y = x P(x^2) / Q(x^2) + 0.5`` with Eigen's degree-9 / degree-10 polynomials, then
    ``vmaxps(0, y)`` (no upper clamp: the approximation never exceeds 1 in range). NaN stays NaN. Each element is
    independent, so onnxruntime's split over threads and its 8-wide blocks (the tail is masked, same arithmetic)
    change nothing. Verified against onnxruntime 1.32 (tests/execute/test_ort_kernels.py)."""
    with np.errstate(invalid="ignore", over="ignore"):
        y = (_rational(x, _LOGISTIC_RANGE, _LOGISTIC_P, _LOGISTIC_Q) + F32(0.5)).astype(F32)
        return np.where(F32(0) > y, F32(0), y).astype(F32)


def mlas_tanh(x) -> np.ndarray:
    """onnxruntime's float32 Tanh on x86 with FMA3 (MlasComputeTanhF32KernelFma3), bit for bit.

    x is clamped to [-9, 9]; ``y = x P(x^2) / Q(x^2)`` with Eigen's degree-13 / degree-6 polynomials, fused
    multiply-adds in the Horner chains. NaN stays NaN, -0.0 gives -0.0. Verified against onnxruntime 1.32."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _rational(x, _TANH_RANGE, _TANH_P, _TANH_Q)


# --------------------------------------------------------------------------------------------------------------
# QLinearSigmoid / QLinearLeakyRelu (256-entry tables) and QLinearMul
# --------------------------------------------------------------------------------------------------------------


def lookup_table(fn, x_scale, x_zero_point, y_scale, y_zero_point) -> np.ndarray:
    """onnxruntime's QLinearLookupBase table: every 8-bit level dequantized (``float(q - zp_x) * s_x``), mapped
    through the float32 function ``fn``, quantized with MlasQuantizeLinear. Indexed by the raw byte (an int8 level
    q sits at q & 0xFF), in the type of ``y_zero_point``."""
    dtype = np.asarray(y_zero_point).dtype
    levels = np.arange(256, dtype=np.uint8).view(dtype)
    y = np.asarray(fn(dequantize_linear(levels, F32(x_scale), x_zero_point)), F32)
    return quantize_linear(y, F32(y_scale), y_zero_point, dtype)


def qlinear_lookup(x, table: np.ndarray) -> np.ndarray:
    """Apply a 256-entry table from :func:`lookup_table` to 8-bit integers."""
    x = np.asarray(x)
    return table[x.view(np.uint8)]


def leaky_relu_f32(x, alpha: float) -> np.ndarray:
    """``x >= 0 ? x : alpha * x`` in float32 (onnxruntime's LeakyRelu functor and QLinearLeakyRelu's table)."""
    x = np.asarray(x, F32)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x >= F32(0), x, x * F32(alpha)).astype(F32)


def _cvtps2dq(y: np.ndarray) -> np.ndarray:
    """``cvtps2dq``: float32 rounded half to even to int32; NaN and values outside int32 give INT32_MIN."""
    y = np.asarray(y, F64)
    ok = np.isfinite(y) & (y >= -(2.0**31)) & (y < 2.0**31)
    return np.where(ok, np.rint(np.where(ok, y, 0.0)), float(INT32_MIN)).astype(np.int64)


def qlinear_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point) -> np.ndarray:
    """QLinearMul as MLAS's x86 (SSE2) kernel computes it: the exact integer product ``(a - zp_a) (b - zp_b)``
    (16-bit lanes, 32-bit product), times ``float32(s_a * s_b) / s_c`` and plus ``float(zp_c)`` in float32 (two
    roundings, no fma), ``cvtps2dq``, then saturating packs to int16 and to the 8-bit type. Broadcasting as numpy
    (each output element depends on its two inputs only, however onnxruntime walks the broadcast)."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.asarray(c_zero_point).dtype
    ratio = F32(F32(F32(a_scale) * F32(b_scale)) / F32(c_scale))
    product = (a.astype(np.int32) - np.int32(a_zero_point)) * (b.astype(np.int32) - np.int32(b_zero_point))
    with np.errstate(over="ignore", invalid="ignore"):
        y = ((product.astype(F32) * ratio).astype(F32) + F32(int(c_zero_point))).astype(F32)
    lo, hi = _limits(dtype)
    return np.clip(_cvtps2dq(y), lo, hi).astype(dtype)


def qlinear_concat(parts, y_scale, y_zero_point, *, axis: int) -> np.ndarray:
    """QLinearConcat as onnxruntime's CPU kernel computes it: each input ``(q, scale, zero_point)`` is mapped to
    the output's parameters through a 256-entry table of its dequantized levels requantized
    (:func:`lookup_table` of the identity; an input with the output's own parameters is copied, which the table
    reproduces), then the results are concatenated along ``axis``. Equal, value for value, to dequantizing,
    concatenating in float32 and quantizing, which is what a DQ -> Concat -> Q group computes unfused."""
    converted = []
    for q, scale, zero_point in parts:
        q = np.asarray(q)
        if q.dtype != np.asarray(y_zero_point).dtype or q.dtype not in (np.uint8, np.int8):
            raise ValueError("QLinearConcat takes 8-bit inputs of the output's type")
        converted.append(qlinear_lookup(q, lookup_table(lambda v: v, scale, zero_point, y_scale, y_zero_point)))
    return np.concatenate(converted, axis=axis)
