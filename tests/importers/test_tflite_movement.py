"""TFLite's STRIDED_SLICE spec (begin / end / strides with begin, end, ellipsis, new-axis and shrink masks)
against numpy's own indexing: each sparse entry becomes a numpy index (a slice with None for a masked side,
an integer for a shrink, np.newaxis, Ellipsis), which is what the TFLite semantics mean."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.importers.tflite_movement import strided_slice_plan


def _numpy_index(begin, end, strides, begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask):
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
        if ellipsis_mask >> i & 1:
            index.append(Ellipsis)
        elif new_axis_mask >> i & 1:
            index.append(np.newaxis)
        elif shrink_axis_mask >> i & 1:
            index.append(b)
        else:
            index.append(slice(None if begin_mask >> i & 1 else b, None if end_mask >> i & 1 else e, s))
    return tuple(index)


CASES = [
    # shape, begin, end, strides, begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask
    ((4,), [0], [1], [1], 0, 0, 0, 0, 1),  # Keras Flatten's batch: shape[0] as a scalar
    ((2, 5, 6, 3), [0, 1, 0, 0], [0, 4, 6, 2], [1, 1, 2, 1], 1, 1, 0, 0, 0),
    ((2, 5, 6, 3), [0, -1, 0, 0], [0, -6, 0, 0], [1, -2, 1, 1], 1, 0, 0, 0, 0),  # negative stride and indices
    ((2, 5, 6, 3), [0, 0], [0, 2], [1, 1], 0, 0, 1, 0, 0),  # ellipsis first: x[..., 0:2]
    ((2, 5, 6, 3), [1, 0, 0], [2, 0, 0], [1, 1, 1], 0, 0, 2, 4, 0),  # x[1:2, ..., newaxis]
    ((2, 5, 6, 3), [0, 0, 2], [0, 0, 3], [1, 1, 1], 0, 0, 0, 2, 5),  # x[0, newaxis, 2]
    ((2, 5, 6, 3), [-1, 0, 1], [0, 0, 0], [1, 1, 1], 0, 6, 0, 0, 1),  # x[-1, 0:, 1:]
    ((3, 4), [5, -10], [10, 10], [1, 1], 0, 0, 0, 0, 0),  # out-of-range begins clamp
]


@pytest.mark.parametrize("case", CASES)
def test_strided_slice_plan_is_numpy_indexing(case):
    shape, begin, end, strides, *masks = case
    x = np.arange(int(np.prod(shape))).reshape(shape)
    keys = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
    slices, out = strided_slice_plan(shape, begin, end, strides, **dict(zip(keys, masks, strict=True)))
    expected = x[_numpy_index(begin, end, strides, *masks)]
    assert list(expected.shape) == out
    assert np.array_equal(x[tuple(slices)].reshape(out), expected)


def test_offset_makes_end_relative_to_begin():
    slices, out = strided_slice_plan((10,), [2], [3], [1], offset=True)
    assert out == [3] and slices == [slice(2, 5, 1)]


def test_bad_specs_are_errors():
    with pytest.raises(EdgesimError, match="stride of 0"):
        strided_slice_plan((4,), [0], [2], [0])
    with pytest.raises(EdgesimError, match="outside its size"):
        strided_slice_plan((4,), [7], [8], [1], shrink_axis_mask=1)
