"""Pow, Sqrt, Equal, Not, Size and Split: what silero-vad's STFT magnitude, sample-rate test and ifless LSTM
cell need beyond the ops elsewhere in this package. Each is a complete entry (shape inference, counts, float
kernel) at one operation per output element; a fuller elementwise / comparison family may replace this module.
"""

from __future__ import annotations

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, broadcast, constant_ints, fail, normalize_axis, register, shape_of


class _Binary(OpDef):
    op_class = "elementwise"
    min_inputs = max_inputs = 2
    #: the output dtype, when it is not the first input's
    out_dtype: str | None = None

    def infer(self, node, inputs):
        shapes = [shape_of(node, t, f"input {i}") for i, t in enumerate(inputs)]
        return [(broadcast(node, shapes), self.out_dtype or inputs[0].dtype)]


@register
class Pow(_Binary):
    """ONNX Pow: the output takes the base's type, whatever the exponent's."""

    op_type = "Pow"
    weight_inputs = ()

    def run(self, node, base, exponent):
        """In float64, rounded once: within an ulp of a runtime's powf (squares, the common case, are exact)."""
        if base.dtype.kind == "f":
            return [np.power(base.astype(np.float64), exponent.astype(np.float64)).astype(base.dtype)]
        return [np.power(base, exponent.astype(base.dtype, copy=False))]


@register
class Equal(_Binary):
    op_type = "Equal"
    out_dtype = "bool"

    def run(self, node, a, b):
        return [np.equal(a, b)]


@register
class Sqrt(OpDef):
    op_type = "Sqrt"
    op_class = "elementwise"

    def run(self, node, x):
        return [np.sqrt(x)]


@register
class Not(OpDef):
    op_type = "Not"
    op_class = "elementwise"

    def run(self, node, x):
        return [np.logical_not(x)]


@register
class Size(OpDef):
    """The element count of its input: known whenever the shape is, so it always folds."""

    op_type = "Size"
    op_class = "data_movement"

    def infer(self, node, inputs):
        return [((), "int64")]

    def ops(self, node, inputs, outputs):
        return 0

    def fold(self, node, inputs):
        shape = shape_of(node, inputs[0], "input")
        return [np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)]

    def run(self, node, x):
        return [np.array(x.size, dtype=np.int64)]


@register
class Split(OpDef):
    """Sizes from the ``split`` input (opset 13+) or attribute, else equal parts (``num_outputs`` at opset 18:
    the last part may be smaller)."""

    op_type = "Split"
    op_class = "data_movement"
    max_inputs = 2

    def sizes(self, node: Node, inputs) -> tuple[int, list[int]]:
        x = shape_of(node, inputs[0], "input")
        axis = normalize_axis(node, int(node.attr("axis", 0)), len(x))
        if len(inputs) > 1 and inputs[1] is not None:
            sizes = constant_ints(node, inputs[1], "split")
        elif node.attr("split") is not None:
            sizes = [int(v) for v in node.attr("split")]
        else:
            parts = len(node.outputs)
            step = -(-x[axis] // parts)
            sizes = [min(step, x[axis] - i * step) for i in range(parts)]
        if len(sizes) != len(node.outputs) or sum(sizes) != x[axis] or min(sizes) < 0:
            raise fail(node, f"split sizes {sizes} do not cut axis {axis} of {x} into {len(node.outputs)} parts")
        return axis, sizes

    def infer(self, node, inputs):
        axis, sizes = self.sizes(node, inputs)
        x = inputs[0].shape
        return [((*x[:axis], size, *x[axis + 1 :]), inputs[0].dtype) for size in sizes]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, x, split=None):
        from simulator.ops.shape import _const, _shape_only

        axis, sizes = self.sizes(node, [_shape_only(x), _const(split)])
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
