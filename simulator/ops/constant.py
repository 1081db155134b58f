"""Constants produced by ops: Constant and ConstantOfShape. Both fold away on import."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, constant_ints, fail, register


@register
class Constant(OpDef):
    op_type = "Constant"
    op_class = "constant"
    min_inputs = max_inputs = 0

    def value(self, node) -> np.ndarray:
        for key, dtype in (
            ("value", None),
            ("value_float", np.float32),
            ("value_floats", np.float32),
            ("value_int", np.int64),
            ("value_ints", np.int64),
        ):
            if node.attr(key) is not None:
                return np.asarray(node.attr(key), dtype=dtype)
        raise fail(node, "it has no value attribute edgesim understands (value, value_float(s), value_int(s))")

    def infer(self, node, inputs):
        v = self.value(node)
        return [(v.shape, v.dtype.name)]

    def run(self, node):
        return [self.value(node)]


@register
class ConstantOfShape(OpDef):
    op_type = "ConstantOfShape"
    op_class = "constant"

    def fill(self, node) -> np.ndarray:
        value = node.attr("value")
        return np.zeros((), np.float32) if value is None else np.asarray(value).reshape(-1)[:1].reshape(())

    def infer(self, node, inputs):
        return [(tuple(constant_ints(node, inputs[0], "shape")), self.fill(node).dtype.name)]

    def run(self, node, shape):
        # a zero-stride view: a 100 M-element weight filled with one value costs no memory
        return [np.broadcast_to(self.fill(node), tuple(int(d) for d in shape))]
