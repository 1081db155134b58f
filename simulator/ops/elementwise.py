"""Broadcasting arithmetic: Add, Sub, Mul, Div (two inputs) and Sum (any number), as numpy broadcasts."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, broadcast, clamp_fused, register, shape_of


class _Broadcasting(OpDef):
    op_class = "elementwise"
    # a constant operand (a bias after MatMul, a per-channel scale) is a parameter of the layer
    weight_inputs = (0, 1)
    min_inputs, max_inputs = 2, 2

    def infer(self, node, inputs):
        shapes = [shape_of(node, t, f"input {i}") for i, t in enumerate(inputs)]
        return [(broadcast(node, shapes), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return outputs[0].size * (len([t for t in inputs if t is not None]) - 1)


def _integer_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # ONNX integer Div truncates toward zero, like C
    return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))


@register
class Add(_Broadcasting):
    op_type = "Add"

    def run(self, node, a, b):
        return [clamp_fused(node, np.add(a, b))]


@register
class Sub(_Broadcasting):
    op_type = "Sub"

    def run(self, node, a, b):
        return [clamp_fused(node, np.subtract(a, b))]


@register
class Mul(_Broadcasting):
    op_type = "Mul"

    def run(self, node, a, b):
        return [clamp_fused(node, np.multiply(a, b))]


@register
class Div(_Broadcasting):
    op_type = "Div"

    def run(self, node, a, b):
        if np.issubdtype(np.result_type(a, b), np.integer):
            return [_integer_divide(a, b)]
        return [np.true_divide(a, b)]


@register
class Sum(_Broadcasting):
    op_type = "Sum"
    weight_inputs = tuple(range(64))
    min_inputs, max_inputs = 1, 1 << 16

    def run(self, node, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return [total]
