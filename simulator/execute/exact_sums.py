"""Bounds that prove an integer dot product exact in floating point, whatever order BLAS sums it in.

Both integer modes route ``sum (x - zp_x)(w - zp_w)`` through float BLAS. A float32 (float64) sum of integers is
exact while every partial sum stays below 2^24 (2^53) in magnitude, and every intermediate value a BLAS dot
product forms (in any order, blocked or fused) is the sum over some subset of the products. With ``x - zp`` in
``[x_lo, x_hi]`` (``x_lo <= 0 <= x_hi``) and P, N the sums of a weight row's positive and of its negated
negative entries, such a subset sum lies in ``[-(|x_lo| P + x_hi N), x_hi P + |x_lo| N]``.
"""

from __future__ import annotations

import numpy as np

F32_EXACT = 1 << 24  # integers (and every partial sum of them) below this magnitude are exact in float32


def row_sign_sums(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, N) per row of integer weights ``rows`` (rows, taps): the sums of the positive entries and of the
    negated negative ones, as int64 (summed in int32 where that cannot overflow: 16-bit entries, < 2^15 taps)."""
    wide = np.int32 if rows.dtype.itemsize <= 2 and rows.shape[1] < 1 << 15 else np.int64
    pos = np.maximum(rows, 0).sum(axis=1, dtype=wide).astype(np.int64)
    return pos, pos - rows.sum(axis=1, dtype=wide).astype(np.int64)


def subset_sum_bound(x_lo: int, x_hi: int, sign_sums: tuple[np.ndarray, np.ndarray]) -> int:
    """The largest |partial sum| over any subset of a row's taps, over all rows, for ``x - zp`` in
    ``[x_lo, x_hi]`` (``x_lo <= 0 <= x_hi``) and the rows' :func:`row_sign_sums`."""
    pos, neg = sign_sums
    if pos.size == 0:
        return 0
    return int(np.maximum(x_hi * pos - x_lo * neg, -x_lo * pos + x_hi * neg).max())
