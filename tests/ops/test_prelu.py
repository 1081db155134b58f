"""PRelu's float kernel against onnxruntime, with a per-channel slope broadcast as the TFLite import shapes it
([C, 1, 1] against NCHW) and a full-shape slope; the slope is a parameter."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.graph import Node, Tensor
from simulator.ops import get_op
from tests.ops.test_kernels import check, rand


@pytest.mark.parametrize("slope_shape", [(1, 4, 1, 1), (4, 1, 1), (2, 4, 3, 3)])
def test_prelu_against_onnxruntime(slope_shape):
    slope = (np.random.default_rng(1).uniform(-0.5, 0.5, slope_shape)).astype(np.float32)
    check("PRelu", {"x": rand(2, 4, 3, 3)}, {"slope": slope})


def test_prelu_counts_its_slope_as_parameters():
    op = get_op("PRelu")
    node = Node("p", "PRelu", ["x", "slope"], ["y"])
    inputs = [Tensor("x", (1, 4, 5, 5)), Tensor.from_array("slope", np.zeros((4, 1, 1), np.float32))]
    assert op.params(node, inputs) == 4 and op.op_class == "activation"
