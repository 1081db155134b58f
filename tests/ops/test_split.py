"""Split's float kernel and shape inference against onnxruntime: explicit sizes, equal pieces, an uneven
last piece (opset 18's num_outputs), negative axes."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.graph import Node
from simulator.ops import get_op
from simulator.ops.split import split_sizes
from tests.ops.test_kernels import check, rand


@pytest.mark.parametrize(
    ("shape", "attrs", "split", "outputs", "opset"),
    [
        ([2, 6, 4], {"axis": 1}, [1, 2, 3], 3, 17),
        ([2, 6, 4], {"axis": -1}, None, 2, 17),  # equal pieces from the output count
        ([3, 7], {"axis": 1, "num_outputs": 3}, None, 3, 18),  # 3, 3, 1
        ([5, 2, 2], {"axis": 0}, [5, 0], 2, 17),  # an empty piece
    ],
)
def test_split_against_onnxruntime(shape, attrs, split, outputs, opset):
    consts = {"split": np.array(split, np.int64)} if split is not None else {}
    check("Split", {"x": rand(*shape)}, consts, attrs, opset=opset, n_outputs=outputs)


def test_split_sizes_refuse_a_split_that_does_not_add_up():
    node = Node("s", "Split", ["x"], ["a", "b"], {"axis": 0})
    with pytest.raises(EdgesimError, match="does not cut an axis of 6"):
        split_sizes(node, 6, [2, 3], 2)
    assert split_sizes(node, 6, None, 2) == [3, 3]


def test_split_moves_data_without_arithmetic():
    assert get_op("Split").op_class == "data_movement"
