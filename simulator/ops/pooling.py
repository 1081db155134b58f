"""Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, constant_ints, fail, normalize_axis, register, shape_of
from simulator.ops.window import window_geometry


class _Pool(OpDef):
    op_class = "pooling"

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        if len(x) < 3:
            raise fail(node, f"pooling needs an N x C x spatial input, got {x}")
        kernel = node.attr("kernel_shape")
        if kernel is None:
            raise fail(node, "the kernel_shape attribute is required")
        spatial, *_ = window_geometry(node, x[2:], tuple(kernel), ceil_mode=bool(node.attr("ceil_mode", 0)))
        outputs = [((*x[:2], *spatial), inputs[0].dtype)]
        if len(node.outputs) > 1:  # MaxPool's optional indices
            outputs.append(((*x[:2], *spatial), "int64"))
        return outputs

    def ops(self, node, inputs, outputs):
        # one compare or add per window tap
        return outputs[0].size * math.prod(node.attr("kernel_shape"))


@register
class MaxPool(_Pool):
    op_type = "MaxPool"


@register
class AveragePool(_Pool):
    op_type = "AveragePool"


class _GlobalPool(OpDef):
    op_class = "pooling"

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        if len(x) < 3:
            raise fail(node, f"global pooling needs an N x C x spatial input, got {x}")
        return [((*x[:2], *([1] * (len(x) - 2))), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return inputs[0].size


@register
class GlobalAveragePool(_GlobalPool):
    op_type = "GlobalAveragePool"

    def run(self, node, x):
        return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)]


@register
class GlobalMaxPool(_GlobalPool):
    op_type = "GlobalMaxPool"

    def run(self, node, x):
        return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]


@register
class ReduceMean(OpDef):
    """Axes are an attribute before opset 18 and an optional input from 18 on."""

    op_type = "ReduceMean"
    op_class = "pooling"
    max_inputs = 2

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
        return inputs[0].size

    def run(self, node, x, axes=None):
        given = None if axes is None else [int(a) for a in axes]
        axes_ = self.axes(node, given, x.ndim)
        return [np.mean(x, axis=axes_, keepdims=bool(node.attr("keepdims", 1))).astype(x.dtype)]
