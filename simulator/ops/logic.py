"""Comparisons, boolean logic and Where: the mask arithmetic of attention and sequence models (padding masks,
causal masks, silero-vad's state selection). One operation per output element, numpy broadcasting."""

from __future__ import annotations

import numpy as np

from simulator.ops.elementwise import _Broadcasting
from simulator.ops.registry import OpDef, broadcast, register, shape_of


class _Compare(_Broadcasting):
    """Two operands in, a bool tensor out."""

    fn = staticmethod(np.equal)

    def infer(self, node, inputs):
        [(shape, _)] = super().infer(node, inputs)
        return [(shape, "bool")]

    def run(self, node, a, b):
        return [np.asarray(self.fn(a, b), dtype=bool)]


def _compare(op_type: str, fn) -> None:
    register(type(op_type, (_Compare,), {"op_type": op_type, "fn": staticmethod(fn)}))


_compare("Equal", np.equal)
_compare("Less", np.less)
_compare("LessOrEqual", np.less_equal)
_compare("Greater", np.greater)
_compare("GreaterOrEqual", np.greater_equal)
_compare("And", np.logical_and)
_compare("Or", np.logical_or)
_compare("Xor", np.logical_xor)


@register
class Not(OpDef):
    op_type = "Not"

    def run(self, node, x):
        return [np.logical_not(x)]


@register
class Where(OpDef):
    """Where(condition, X, Y): X where the condition holds, else Y; one select per output element."""

    op_type = "Where"
    # constant X / Y (a fill value, a bias table) are stored with the layer, as a constant operand of Add is
    weight_inputs = (1, 2)
    min_inputs = max_inputs = 3

    def infer(self, node, inputs):
        shapes = [shape_of(node, t, what) for t, what in zip(inputs, ("condition", "X", "Y"), strict=True)]
        return [(broadcast(node, shapes), inputs[1].dtype)]

    def run(self, node, condition, x, y):
        return [np.where(condition, x, y).astype(np.result_type(x, y), copy=False)]
