"""Split: one tensor cut into consecutive pieces along an axis (ONNX Split; TFLite's SPLIT, SPLIT_V and UNPACK
import as it). Pure data movement: runtimes copy each piece once."""

from __future__ import annotations

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, constant_ints, fail, normalize_axis, register, shape_of


def split_sizes(node: Node, length: int, given: list[int] | None, outputs: int) -> list[int]:
    """Piece lengths along the axis: the ``split`` input (or attribute) when given, else ``outputs`` pieces as
    equal as ONNX makes them (the last one shorter when the length does not divide)."""
    if given is not None:
        if len(given) != outputs or sum(given) != length or min(given, default=0) < 0:
            raise fail(node, f"split {given} does not cut an axis of {length} into {outputs} pieces")
        return list(given)
    count = int(node.attr("num_outputs", outputs))
    if count != outputs or count <= 0:
        raise fail(node, f"num_outputs {count} differs from its {outputs} outputs")
    step = -(-length // count)
    sizes = [min(step, max(length - i * step, 0)) for i in range(count)]
    if length % count and sum(sizes) != length:
        raise fail(node, f"cannot split an axis of {length} into {count} pieces")
    return sizes


@register
class Split(OpDef):
    op_type = "Split"
    op_class = "data_movement"
    max_inputs = 2

    def _sizes(self, node: Node, inputs, shape) -> tuple[int, list[int]]:
        axis = normalize_axis(node, int(node.attr("axis", 0)), len(shape))
        given = node.attr("split")
        if given is None and len(inputs) > 1 and inputs[1] is not None:
            given = constant_ints(node, inputs[1], "split")
        return axis, split_sizes(node, shape[axis], None if given is None else list(given), len(node.outputs))

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis, sizes = self._sizes(node, inputs, x)
        return [((*x[:axis], s, *x[axis + 1 :]), inputs[0].dtype) for s in sizes]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, x, split=None):
        from simulator.ops.shape import _const, _shape_only

        axis, sizes = self._sizes(node, [_shape_only(x), _const(split)], x.shape)
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
