"""onnxruntime's QLinearConv / QGemm with everything that depends only on the graph computed once.

:mod:`ort_kernels` computes a layer from scratch on every call; a session (:class:`~simulator.execute.ort_exec.
OrtSession`) builds these objects once per node instead and calls them on every input:

* the weights, minus their zero point, as BLAS-ready float32 matrices (per group, and split along the input
  channels where one float32 GEMM could not be proven exact);
* the exactness proof itself: with ``x - zp_x`` anywhere in its dtype's range, every partial sum a BLAS dot product
  can form (any order, blocked, fused) is bounded by :func:`~simulator.execute.exact_sums.subset_sum_bound`; below
  2^24 each GEMM is exact in float32. Chunk results (at most 64, each below 2^24) are added in float64, exactly.
  The proof is static, so a run never scans its data for a range;
* the float32 requantization multipliers and the bias, with a static proof that ``acc + bias`` stays in int32 (or
  a run-time check where it cannot be proven);
* the padding and stride geometry: the centred, zero-padded input is laid out once per stride phase so that every
  kernel tap is a contiguous slice of it (a stride-1 tap at ``(i, j)`` is the flattened padded image shifted by
  ``i * row + j``; stride ``s`` splits the image into ``s * s`` phases first). Output rows then carry a few extra
  columns, which im2col (where the GEMM dominates) or requantization drops.

``float32(acc + bias)`` is computed as one float32 addition when both terms are exact in float32: IEEE addition
rounds the exact sum once, half to even, which is exactly what converting the int32 accumulator to float does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.execute import ort_kernels as K
from simulator.execute.exact_sums import F32_EXACT, row_sign_sums, subset_sum_bound

F32 = np.float32
F64 = np.float64
_INT32_LIMIT = 1 << 31
_MAX_CHUNKS = 64
# depthwise convs whose channels have at most this many outputs run as a batched (taps -> 1) matmul per channel
# over im2col columns; longer ones as one multiply-add per tap (the faster of the two on MobileNetV2's layers,
# measured on a Zen 4 core: 2x faster at 14x14, 2x slower at 56x56)
_DEPTHWISE_GEMM_MAX_LENGTH = 2048


def _centred_weights(w: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """``w - zp`` as integers: int16 for 8-bit weights (fast exact sums in ``row_sign_sums``), else int64."""
    wide = np.int16 if w.dtype.itemsize == 1 else np.int64
    return w.astype(wide) - zero_point.astype(wide)


def _centre_into(out: np.ndarray, x: np.ndarray, zero_point: int) -> None:
    """``out = x - zp`` in float32 (exact): a cast, then a subtraction only where the zero point is not 0."""
    np.copyto(out, x, casting="unsafe")
    if zero_point:
        out -= F32(zero_point)


def centred_range(dtype, zero_point: int) -> tuple[int, int]:
    """The range of ``x - zp`` over every value of the integer ``dtype``: (min, max), with min <= 0 <= max."""
    lo, hi = K._limits(dtype)
    return min(lo - int(zero_point), 0), max(hi - int(zero_point), 0)


def _chunk_bounds(rows: np.ndarray, taps_per_channel: int, x_lo: int, x_hi: int) -> tuple[list[int], float] | None:
    """Split the input channels of integer weight ``rows`` (out, channels * taps) into as few equal chunks as make
    every chunk's partial sums provably below 2^24: (channel boundaries, bound of the whole dot product), or None
    when even single channels exceed it."""
    channels = rows.shape[1] // taps_per_channel
    total = subset_sum_bound(x_lo, x_hi, row_sign_sums(rows))
    for count in range(1, min(channels, _MAX_CHUNKS) + 1):
        edges = [round(i * channels / count) for i in range(count + 1)]
        if all(
            subset_sum_bound(x_lo, x_hi, row_sign_sums(rows[:, a * taps_per_channel : b * taps_per_channel]))
            < F32_EXACT
            for a, b in zip(edges, edges[1:], strict=False)
        ):
            return edges, total
    return None


class WorkBuffers:
    """float32 work arrays shared by the kernels of one session, one growing arena per role, so that a session
    holds the largest layer's buffers rather than every layer's. A kernel must overwrite all it reads."""

    def __init__(self):
        self._arenas: dict[str, np.ndarray] = {}

    def get(self, role: str, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        arena = self._arenas.get(role)
        if arena is None or arena.size < size:
            arena = self._arenas[role] = np.empty(size, F32)
        return arena[:size].reshape(shape)


@dataclass(frozen=True)
class _Requant:
    """The float32 requantization of a layer's int32 accumulators, prepared: bias, multipliers, output range."""

    bias32: np.ndarray | None  # float32 bias, exact (|bias| < 2^24), shaped to broadcast; None when absent
    bias64: np.ndarray | None  # the same in float64, for accumulators that are not float32
    scale: np.ndarray  # float32 multipliers, shaped to broadcast
    zero_point: int
    dtype: np.dtype
    low: np.float32  # the output range minus the zero point
    high: np.float32
    check_int32: bool  # acc + bias may leave int32: check at run time
    name: str

    @staticmethod
    def build(bias, scale, zero_point, dtype, acc_bound: float, shape: tuple[int, ...], name: str) -> _Requant:
        b = None if bias is None else np.asarray(bias, np.int64).reshape(shape)
        b_max = 0 if b is None or b.size == 0 else int(np.abs(b).max())
        lo, hi = K._limits(dtype)
        return _Requant(
            bias32=None if b is None or b_max >= F32_EXACT else b.astype(F32),
            bias64=None if b is None else b.astype(F64),
            scale=np.asarray(scale, F32).reshape(shape if np.size(scale) > 1 else ()),
            zero_point=int(zero_point),
            dtype=np.dtype(dtype),
            low=F32(lo - int(zero_point)),
            high=F32(hi - int(zero_point)),
            check_int32=acc_bound + b_max >= _INT32_LIMIT,
            name=name,
        )

    def to_float32(self, acc: np.ndarray) -> np.ndarray:
        """``float32(acc + bias)``, rounded once, as a new or reused float32 array (``acc`` may be overwritten)."""
        if acc.dtype == F32 and (self.bias64 is None or self.bias32 is not None) and not self.check_int32:
            if self.bias32 is not None:
                np.add(acc, self.bias32, out=acc)  # both exact: one rounding of the exact sum
            return acc
        acc = acc.astype(F64)
        if self.bias64 is not None:
            acc += self.bias64  # exact below 2^53
        if self.check_int32:
            K.check_int32(acc, self.name)
        return acc.astype(F32)

    def __call__(self, acc: np.ndarray, out: np.ndarray, row: int | None = None) -> None:
        """Requantize ``acc`` (exact integers in float) into ``out``; with ``row``, ``acc`` is (M, rows * row) and
        only the first ``out.shape[-1]`` columns of each row are kept."""
        y = self.to_float32(acc)
        y *= self.scale
        np.clip(y, self.low, self.high, out=y)
        np.rint(y, out=y)
        if self.zero_point:
            y += F32(self.zero_point)  # exact: small integers
        y = y.reshape(out.shape) if row is None else y.reshape(y.shape[0], -1, row)[:, :, : out.shape[-1]]
        np.copyto(out, y, casting="unsafe")  # integers within the output range: the cast is exact


class PreparedConv:
    """A QLinearConv (2-d or 1-d, NCHW / OIHW) with its weights, exactness proof and geometry prepared.

    Build with :meth:`build`, which returns None where this path cannot prove float32 exactness (the caller then
    uses :func:`~simulator.execute.ort_kernels.qlinear_conv`); call with the integer input.

    Work buffers are reused by every call: the kernel owns its padded input phases (the zero padding is written
    once, then only the interior), and takes im2col columns and accumulators from ``work`` (shared by a session's
    kernels; its own when None). So kernels sharing ``work`` run one at a time; nothing they return aliases it."""

    def __init__(self, work: WorkBuffers | None = None, **fields):
        self.__dict__.update(fields)
        self.phase_buffers: dict[tuple, np.ndarray] = {}
        self.work = WorkBuffers() if work is None else work

    def _buffer(self, shape: tuple[int, ...], role: str, *phase) -> np.ndarray:
        """A work buffer: a phase's stays with the kernel (zeros when made); others hold the last user's values."""
        if role != "phase":
            return self.work.get(role, shape)
        buf = self.phase_buffers.get(phase)
        if buf is None or buf.shape != shape:
            buf = self.phase_buffers[phase] = np.zeros(shape, F32)
        return buf

    @classmethod
    def build(
        cls, x_shape, x_dtype, x_zero_point, x_scale, w, w_zero_point, w_scale, y_scale, y_zero_point, bias, *,
        strides, dilations, pads_begin, pads_end, group: int, name: str, work: WorkBuffers | None = None,
    ) -> PreparedConv | None:  # fmt: skip
        x_shape = tuple(x_shape)
        w = np.asarray(w)
        one_d = len(x_shape) == 3
        if one_d:  # 1-d: a 2-d conv over images one row high
            x_shape = x_shape[:2] + (1,) + x_shape[2:]
            w = w[:, :, None, :]
            strides, dilations = [1, *strides], [1, *dilations]
            pads_begin, pads_end = [0, *pads_begin], [0, *pads_end]
        if len(x_shape) != 4 or np.dtype(x_dtype).kind not in "iu":
            return None
        n, c, h, wd = x_shape
        m, cg, kh, kw = w.shape
        if c != cg * group or m % group:
            return None
        mg, taps = m // group, kh * kw
        padded = (h + pads_begin[0] + pads_end[0], wd + pads_begin[1] + pads_end[1])
        extent = ((kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1)
        out_hw = tuple((padded[i] - extent[i]) // strides[i] + 1 for i in range(2))
        if min(out_hw) <= 0:
            return None
        wzp = np.asarray(w_zero_point, np.int64)
        wi = _centred_weights(w, wzp.reshape(-1, 1, 1, 1) if wzp.ndim else wzp)
        rows = wi.reshape(m, cg * taps)
        x_lo, x_hi = centred_range(x_dtype, x_zero_point)
        depthwise = cg == 1 and group > 1
        if group > 1:  # grouped and depthwise convs are not split into chunks
            bound = subset_sum_bound(x_lo, x_hi, row_sign_sums(rows))
            if bound >= F32_EXACT:
                return None
            chunks = None
        else:
            found = _chunk_bounds(rows, taps, x_lo, x_hi)
            if found is None:
                return None
            edges, bound = found
            chunks = [
                (a, b, np.ascontiguousarray(rows[:, a * taps : b * taps], F32))
                for a, b in zip(edges, edges[1:], strict=False)
            ]
        # tap (i, j) reads stride phase (i d_h mod s_h, j d_w mod s_w) shifted by (i d_h div s_h, j d_w div s_w)
        tap_at = [
            ((i * dilations[0]) % strides[0], (j * dilations[1]) % strides[1],
             (i * dilations[0]) // strides[0], (j * dilations[1]) // strides[1])
            for i in range(kh) for j in range(kw)
        ]  # fmt: skip
        shift_h = max(t[2] for t in tap_at)
        shift_w = max(t[3] for t in tap_at)
        row = out_hw[1] + shift_w
        spill = 1 if shift_w else 0  # the last rows of a shifted tap run past the image by shift_w values
        phase_hw = (out_hw[0] + shift_h + spill, row)
        direct = taps == 1 and list(strides) == [1, 1] and not any(pads_begin) and not any(pads_end)
        requant = _Requant.build(
            bias, K.requant_scale(x_scale, w_scale, y_scale), y_zero_point, np.asarray(y_zero_point).dtype,
            bound, (m, 1), name,
        )  # fmt: skip
        return cls(
            in_shape=x_shape, group=group, cg=cg, mg=mg, m=m, taps=taps, depthwise=depthwise, chunks=chunks,
            w_group=np.ascontiguousarray(rows.reshape(group, mg, cg * taps), F32) if group > 1 else None,
            w_taps=np.ascontiguousarray(wi.reshape(c, m // c, taps), F32) if depthwise else None,
            tap_at=tap_at, phases=sorted({t[:2] for t in tap_at}), phase_hw=phase_hw, out_hw=out_hw,
            strides=list(strides), pads_begin=list(pads_begin), direct=direct, x_zero_point=int(x_zero_point),
            requant=requant, one_d=one_d, work=work,
        )  # fmt: skip

    def _tap_views(self, image: np.ndarray) -> list[np.ndarray]:
        """Every tap of one (C, H, W) integer image as a (C, out_rows * row) float32 view of ``x - zp``."""
        c, h, wd = image.shape
        if self.direct:
            centred = self._buffer((c, h * wd), "centred")
            _centre_into(centred, image.reshape(c, h * wd), self.x_zero_point)
            return [centred]
        rows, row = self.phase_hw
        sh, sw = self.strides
        pb_h, pb_w = self.pads_begin
        flat = {}
        for py, px in self.phases:
            buf = self._buffer((c, rows, row), "phase", py, px)  # only its interior is written: the rest stays 0
            # phase row r is padded row py + r*s_h = image row py + r*s_h - pb_h
            r0, q0 = -(-(pb_h - py) // sh), -(-(pb_w - px) // sw)
            r0, q0 = max(r0, 0), max(q0, 0)
            y0, x0 = py + r0 * sh - pb_h, px + q0 * sw - pb_w
            src = image[:, y0::sh, x0::sw][:, : rows - r0, : row - q0]
            _centre_into(buf[:, r0 : r0 + src.shape[1], q0 : q0 + src.shape[2]], src, self.x_zero_point)
            flat[py, px] = buf.reshape(c, -1)
        length = self.out_hw[0] * row
        return [flat[py, px][:, qy * row + qx : qy * row + qx + length] for py, px, qy, qx in self.tap_at]

    def _columns(self, views: list[np.ndarray], compact: bool) -> np.ndarray:
        """im2col: the taps stacked as (C, taps, out_rows * row); ``compact`` drops the views' extra columns of
        each row (row = out_cols: a smaller GEMM, a slower copy of short rows), else row is the views' row."""
        c, length = views[0].shape
        ho, wo = self.out_hw
        if not compact:
            cols = self._buffer((c, self.taps, length), "cols")
            for t, view in enumerate(views):
                cols[:, t] = view
            return cols
        cols = self._buffer((c, self.taps, ho * wo), "cols")
        rows = cols.reshape(c, self.taps, ho, wo)
        for t, view in enumerate(views):
            rows[:, t] = view.reshape(c, ho, length // ho)[:, :, :wo]
        return cols

    def _accumulate(self, views: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """Exact ``sum (x - zp_x)(w - zp_w)`` over the taps as a float array (M, out_rows * row), and ``row``."""
        c, length = views[0].shape
        ho, wo = self.out_hw
        if self.depthwise:
            mult = self.m // c
            if length <= _DEPTHWISE_GEMM_MAX_LENGTH:  # the copy dominates here: keep the views' long rows
                acc = self._buffer((c, mult, length), "acc")
                return np.matmul(self.w_taps, self._columns(views, False), out=acc).reshape(self.m, -1), length // ho
            acc = self._buffer((c, mult, length), "acc")
            tmp = self._buffer((c, mult, length), "tmp")
            for t, view in enumerate(views):
                np.multiply(view[:, None, :], self.w_taps[:, :, t, None], out=acc if t == 0 else tmp)
                if t:
                    acc += tmp
            return acc.reshape(self.m, length), length // ho
        if len(views) == 1:
            cols, row = views[0], length // ho  # a 1x1 conv reads the image (or its stride phase) in place
        else:
            cols, row = self._columns(views, True).reshape(c * self.taps, -1), wo  # the GEMM dominates: compact
        if self.group > 1:
            k = self.cg * self.taps
            acc = self._buffer((self.group, self.mg, cols.shape[1]), "acc")
            return np.matmul(self.w_group, cols.reshape(self.group, k, -1), out=acc).reshape(self.m, -1), row
        if len(self.chunks) == 1:
            return np.matmul(self.chunks[0][2], cols, out=self._buffer((self.m, cols.shape[1]), "acc")), row
        parts = [w @ cols[a * self.taps : b * self.taps] for a, b, w in self.chunks]
        total = parts[0].astype(F64)
        for part in parts[1:]:
            total += part  # float32 chunks, exact sums in float64
        return total, row

    def accumulate(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """The exact ``sum (x - zp_x)(w - zp_w)`` of one (C, H, W) integer image, as a float (M, out_rows * row)
        array and ``row``: each output row's length in it (the output columns, then padding columns to drop).
        The array is a work buffer: it holds until the next call of a kernel sharing them."""
        return self._accumulate(self._tap_views(image))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if self.one_d:
            x = x[:, :, None, :]
        if x.shape != self.in_shape:
            raise ValueError(f"prepared for input {self.in_shape}, got {x.shape}")
        ho, wo = self.out_hw
        out = np.empty((x.shape[0], self.m, ho, wo), self.requant.dtype)
        for i in range(x.shape[0]):
            acc, row = self.accumulate(x[i])
            self.requant(acc, out[i], None if row == wo else row)
        return out[:, :, 0] if self.one_d else out


class PreparedMatMul:
    """QLinearMatMul / QGemm with a constant [K, N] weight: float32 weight chunks along K proven exact, prepared
    requantization (per-column or per-tensor). Build with :meth:`build` (None where float32 cannot be proven)."""

    def __init__(self, chunks, a_zero_point: int, requant: _Requant):
        self.chunks, self.a_zero_point, self.requant = chunks, a_zero_point, requant

    @classmethod
    def build(
        cls, a_dtype, a_zero_point, a_scale, b, b_zero_point, b_scale, y_scale, y_zero_point, bias, *, name: str
    ) -> PreparedMatMul | None:
        b = np.asarray(b)
        if b.ndim != 2 or np.dtype(a_dtype).kind not in "iu":
            return None
        bzp = np.asarray(b_zero_point, np.int64)
        bi = _centred_weights(b, bzp.reshape(1, -1) if bzp.size > 1 else bzp.reshape(()))
        found = _chunk_bounds(np.ascontiguousarray(bi.T), 1, *centred_range(a_dtype, a_zero_point))
        if found is None:
            return None
        edges, bound = found
        chunks = [(a, z, np.ascontiguousarray(bi[a:z], F32)) for a, z in zip(edges, edges[1:], strict=False)]
        requant = _Requant.build(
            bias, K.requant_scale(a_scale, b_scale, y_scale), y_zero_point, np.asarray(y_zero_point).dtype,
            bound, (-1,), name,
        )  # fmt: skip
        return cls(chunks, int(a_zero_point), requant)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        af = np.subtract(a, F32(self.a_zero_point), dtype=F32)
        parts = [af[..., lo:hi] @ w for lo, hi, w in self.chunks]
        acc = parts[0]
        if len(parts) > 1:
            acc = acc.astype(F64)
            for part in parts[1:]:
                acc += part
        out = np.empty(acc.shape, self.requant.dtype)
        self.requant(acc, out)
        return out


class PreparedAdd:
    """QLinearAdd of two same-shape 8-bit tensors as a lookup table of the kernel on all 65536 input pairs."""

    def __init__(self, table: np.ndarray, signed: bool):
        self.table, self.signed = table, signed

    @classmethod
    def build(cls, dtype, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point) -> PreparedAdd | None:
        dtype = np.dtype(dtype)
        if dtype not in (np.uint8, np.int8):
            return None
        lo, hi = K._limits(dtype)
        levels = np.arange(lo, hi + 1).astype(dtype)
        grid_a, grid_b = np.meshgrid(levels, levels, indexing="ij")
        # small inputs take qlinear_add's direct (fused multiply-add) path: the table is those values
        table = K.qlinear_add(grid_a.reshape(-1), a_scale, a_zero_point, grid_b.reshape(-1), b_scale, b_zero_point,
                              c_scale, c_zero_point)  # fmt: skip
        return cls(table, dtype == np.int8)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        index = a.view(np.uint8).astype(np.uint16)
        index <<= 8
        index |= b.view(np.uint8)
        if self.signed:  # level i of the table is value i - 128: flip the sign bits
            index ^= 0x8080
        return self.table.take(index)
