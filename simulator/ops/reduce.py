"""Reductions over axes (ReduceMean, ReduceSum, ReduceMax, ... and ArgMax / ArgMin). Axes are an attribute
before opset 18 (13 for ReduceSum) and an optional constant input after; no axes reduces everything unless
noop_with_empty_axes. One operation per input element (two where each element is squared or its magnitude
taken first). ReduceMean is TFLite's MEAN, so it is priced as pooling like GlobalAveragePool."""

from __future__ import annotations

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, constant_ints, normalize_axis, register, shape_of


class _Reduce(OpDef):
    op_class = "elementwise"
    max_inputs = 2
    #: extra operations per input element before the sum (a square, an absolute value)
    per_element = 1

    @staticmethod
    def reduce(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        raise NotImplementedError

    def axes(self, node: Node, given: list[int] | None, rank: int) -> tuple[int, ...]:
        axes = node.attr("axes", given)
        if not axes:
            return () if node.attr("noop_with_empty_axes", 0) else tuple(range(rank))
        return tuple(sorted(normalize_axis(node, int(a), rank) for a in axes))

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        given = constant_ints(node, inputs[1], "axes") if len(inputs) > 1 and inputs[1] is not None else None
        axes = self.axes(node, given, len(x))
        keep = bool(node.attr("keepdims", 1))
        out = tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)
        return [(out, inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return inputs[0].size * self.per_element

    def run(self, node, x, axes=None):
        given = None if axes is None else [int(a) for a in axes]
        axes_ = self.axes(node, given, x.ndim)
        if not axes_:
            return [x]
        y = self.reduce(x, axes_, bool(node.attr("keepdims", 1)))
        return [np.asarray(y).astype(x.dtype, copy=False)]


def _reduction(op_type: str, fn, per_element: int = 1, op_class: str = "elementwise") -> type[_Reduce]:
    attrs = {"op_type": op_type, "reduce": staticmethod(fn), "per_element": per_element, "op_class": op_class}
    return register(type(op_type, (_Reduce,), attrs))


def _sum_of(transform):
    return lambda x, axes, keep: np.sum(transform(x), axis=axes, keepdims=keep)


ReduceMean = _reduction("ReduceMean", lambda x, a, k: np.mean(x, axis=a, keepdims=k), op_class="pooling")
_reduction("ReduceSum", lambda x, a, k: np.sum(x, axis=a, keepdims=k))
_reduction("ReduceMax", lambda x, a, k: np.max(x, axis=a, keepdims=k))
_reduction("ReduceMin", lambda x, a, k: np.min(x, axis=a, keepdims=k))
_reduction("ReduceProd", lambda x, a, k: np.prod(x, axis=a, keepdims=k))
_reduction("ReduceSumSquare", _sum_of(np.square), per_element=2)
_reduction("ReduceL1", _sum_of(np.abs), per_element=2)
_reduction("ReduceL2", lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k)), per_element=2)
_reduction("ReduceLogSum", lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)))
_reduction(
    "ReduceLogSumExp",
    lambda x, a, k: np.log(np.sum(np.exp(x.astype(np.float64)), axis=a, keepdims=k)),
    per_element=2,
    op_class="transcendental",
)


class _ArgReduce(OpDef):
    """The int64 index of the largest / smallest element along one axis (first or, with
    select_last_index, last occurrence)."""

    op_class = "elementwise"
    pick = staticmethod(np.argmax)

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis = normalize_axis(node, int(node.attr("axis", 0)), len(x))
        keep = bool(node.attr("keepdims", 1))
        return [(tuple(1 if i == axis else d for i, d in enumerate(x) if keep or i != axis), "int64")]

    def ops(self, node, inputs, outputs):
        return inputs[0].size

    def run(self, node, x):
        axis = normalize_axis(node, int(node.attr("axis", 0)), x.ndim)
        if node.attr("select_last_index", 0):
            flipped = np.flip(x, axis=axis)
            index = x.shape[axis] - 1 - self.pick(flipped, axis=axis)
        else:
            index = self.pick(x, axis=axis)
        index = np.asarray(index, np.int64)
        return [np.expand_dims(index, axis) if node.attr("keepdims", 1) else index]


@register
class ArgMax(_ArgReduce):
    op_type = "ArgMax"


@register
class ArgMin(_ArgReduce):
    op_type = "ArgMin"
    pick = staticmethod(np.argmin)


@register
class CumSum(OpDef):
    """Running sum along one axis (a constant scalar input), optionally exclusive and / or reversed."""

    op_type = "CumSum"
    op_class = "elementwise"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        [axis] = constant_ints(node, inputs[1], "axis")
        normalize_axis(node, axis, len(x))
        return [(x, inputs[0].dtype)]

    def run(self, node, x, axis):
        axis = normalize_axis(node, int(np.asarray(axis).reshape(-1)[0]), x.ndim)
        y = np.flip(x, axis) if node.attr("reverse", 0) else x
        total = np.cumsum(y, axis=axis, dtype=x.dtype)
        if node.attr("exclusive", 0):
            total = np.concatenate(
                [np.zeros_like(np.take(total, [0], axis=axis)), np.delete(total, -1, axis=axis)], axis
            )
        return [np.flip(total, axis) if node.attr("reverse", 0) else total]
