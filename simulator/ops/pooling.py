"""Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, clamp_fused, fail, register, shape_of
from simulator.ops.window import sliding_windows, window_counts, window_geometry


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

    def windows(self, node: Node, x: np.ndarray, pad_value) -> np.ndarray:
        kernel = tuple(node.attr("kernel_shape"))
        if len(kernel) != x.ndim - 2:
            raise fail(node, f"kernel_shape {list(kernel)} does not match the {x.ndim - 2} spatial dims of {x.shape}")
        ceil_mode = bool(node.attr("ceil_mode", 0))
        return sliding_windows(node, x, kernel, pad_value=pad_value, ceil_mode=ceil_mode)[0]


@register
class MaxPool(_Pool):
    """Padding never wins the max; the optional second output holds the flat input index of each maximum
    (row-major, or column-major over the spatial dims with storage_order=1)."""

    op_type = "MaxPool"

    def run(self, node, x):
        low = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        windows = self.windows(node, x, low)
        rank = x.ndim - 2
        taps = tuple(range(-rank, 0))
        y = clamp_fused(node, windows.max(axis=taps))
        if len(node.outputs) < 2 or not node.outputs[1]:
            return [y]
        return [y, self.indices(node, x, windows)]

    def indices(self, node: Node, x: np.ndarray, windows: np.ndarray) -> np.ndarray:
        rank = x.ndim - 2
        kernel = windows.shape[-rank:]
        out = windows.shape[2 : 2 + rank]
        flat = windows.reshape(*windows.shape[: 2 + rank], -1)
        tap = np.unravel_index(flat.argmax(axis=-1), kernel)  # first maximum in row-major tap order
        _, begin, _, strides = window_geometry(node, x.shape[2:], kernel, ceil_mode=bool(node.attr("ceil_mode", 0)))
        dilations = node.attr("dilations", [1] * rank)
        coords = []
        for i in range(rank):
            start = (np.arange(out[i]) * strides[i] - begin[i]).reshape([-1 if j == i else 1 for j in range(rank)])
            coords.append(start + tap[i] * dilations[i])
        spatial = x.shape[2:]
        if node.attr("storage_order", 0):
            coords, spatial = coords[::-1], spatial[::-1]
        index = np.ravel_multi_index(coords, spatial, mode="clip")  # a window wholly in padding points at its edge
        base = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], *([1] * rank))
        return (base * math.prod(spatial) + index).astype(np.int64)


@register
class AveragePool(_Pool):
    """Sum of the window over the taps on the input, divided by their number, or by the taps on input and
    explicit padding with count_include_pad (never those past the end pads that ceil_mode adds)."""

    op_type = "AveragePool"

    def run(self, node, x):
        rank = x.ndim - 2
        windows = self.windows(node, x, 0)
        total = windows.sum(axis=tuple(range(-rank, 0)))
        counts = window_counts(
            node,
            x.shape[2:],
            tuple(node.attr("kernel_shape")),
            include_pad=bool(node.attr("count_include_pad", 0)),
            ceil_mode=bool(node.attr("ceil_mode", 0)),
        )
        return [clamp_fused(node, (total / counts).astype(x.dtype, copy=False))]


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
