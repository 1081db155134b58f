"""The subset-sum bound against brute force: every subset of taps, every x at the ends of its range."""

from __future__ import annotations

import itertools

import numpy as np

from simulator.execute.exact_sums import row_sign_sums, subset_sum_bound


def test_the_bound_is_the_largest_partial_sum_any_order_can_form():
    rng = np.random.default_rng(3)
    rows = rng.integers(-127, 128, size=(3, 7)).astype(np.int8)
    for x_lo, x_hi in ((0, 255), (-128, 127), (-3, 0), (0, 0)):
        worst = 0
        for row in rows.astype(np.int64):
            for taps in itertools.product((0, 1), repeat=row.size):  # every subset (a partial sum in some order)
                chosen = row[np.array(taps, bool)]
                # each x_i at an end of [x_lo, x_hi] maximises |sum x_i w_i|: take the best sign for each tap
                high = np.where(chosen > 0, x_hi, x_lo) @ chosen
                low = np.where(chosen > 0, x_lo, x_hi) @ chosen
                worst = max(worst, abs(int(high)), abs(int(low)))
        assert subset_sum_bound(x_lo, x_hi, row_sign_sums(rows)) == worst


def test_sign_sums_of_wide_rows_do_not_overflow():
    rows = np.full((2, 70_000), 127, np.int16)  # 8,890,000 per row: summed in int64 beyond 2^15 taps
    rows[1] = -127
    pos, neg = row_sign_sums(rows)
    assert pos.tolist() == [8_890_000, 0] and neg.tolist() == [0, 8_890_000]
