"""Convolutions: Conv (grouped, dilated, strided, padded; depthwise when groups == channels), ConvTranspose
and the QOperator form QLinearConv."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node, Shape, Tensor
from simulator.ops.quantization import dequantized, requantized
from simulator.ops.registry import OpDef, clamp_fused, fail, register, shape_of, widened
from simulator.ops.window import sliding_windows, transposed_geometry, window_geometry


def _conv_shape(node: Node, x: Shape, w: Shape, bias: Tensor | None) -> Shape:
    if len(x) < 3 or len(w) != len(x):
        raise fail(node, f"input {x} and weight {w} must both be rank >= 3 and of equal rank")
    groups = int(node.attr("group", 1))
    cin, cout = x[1], w[0]
    if groups < 1 or cin % groups or cout % groups:
        raise fail(node, f"group={groups} does not divide input channels {cin} and output channels {cout}")
    if w[1] * groups != cin:
        raise fail(node, f"weight {w} expects {w[1] * groups} input channels but the input {x} has {cin}")
    kernel = tuple(node.attr("kernel_shape", w[2:]))
    if kernel != tuple(w[2:]):
        raise fail(node, f"kernel_shape {kernel} disagrees with the weight shape {w}")
    if bias is not None and bias.shape is not None and bias.shape != (cout,):
        raise fail(node, f"bias shape {bias.shape} should be ({cout},)")
    spatial, *_ = window_geometry(node, x[2:], kernel)
    return (x[0], cout, *spatial)


def _conv_macs(x_out: Shape, w: Shape) -> int:
    # each output element reduces over (Cin / groups) * prod(kernel) = prod(w[1:]) products
    return math.prod(x_out) * math.prod(w[1:])


def conv_float(node: Node, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """ONNX Conv: im2col over a strided view of the padded input, then one matrix product per group.

    A depthwise conv (one input channel per group, any depth multiplier) is the same product with a
    reduction of only prod(kernel) per group.
    """
    groups = int(node.attr("group", 1))
    kernel = tuple(w.shape[2:])
    rank = len(kernel)
    n, c = x.shape[:2]
    m = w.shape[0]
    if x.ndim != w.ndim or c % groups or m % groups or w.shape[1] * groups != c:
        raise fail(node, f"input {x.shape} and weight {w.shape} do not fit group={groups}")
    cg, mg = c // groups, m // groups
    windows, _ = sliding_windows(node, x, kernel)  # (N, C, *out, *kernel)
    out = windows.shape[2 : 2 + rank]
    # columns (G, N, Cg * prod(kernel), prod(out)): each output position's receptive field
    windows = windows.reshape(n, groups, cg, *out, *kernel)
    order = (1, 0, 2, *range(3 + rank, 3 + 2 * rank), *range(3, 3 + rank))
    columns = widened(windows.transpose(order)).reshape(groups, n, cg * math.prod(kernel), math.prod(out))
    y = widened(w).reshape(groups, 1, mg, -1) @ columns  # (G, N, Mg, prod(out))
    y = y.transpose(1, 0, 2, 3).reshape(n, m, *out)
    if bias is not None:
        y = y + bias.reshape(m, *([1] * rank))
    return y


def conv_transpose_float(node: Node, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """ONNX ConvTranspose: every input position times the whole kernel (one matrix product per group), then
    the products scattered into the output with one strided add per kernel tap (col2im), then cropped."""
    groups = int(node.attr("group", 1))
    kernel = tuple(w.shape[2:])
    rank = len(kernel)
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    if x.ndim != w.ndim or c % groups or w.shape[0] != c:
        raise fail(node, f"input {x.shape} and weight {w.shape} do not fit group={groups}")
    cg, mg = c // groups, w.shape[1]
    out, begin, end, strides, dilations = transposed_geometry(node, spatial, kernel)
    w_t = widened(w).reshape(groups, cg, -1).transpose(0, 2, 1)[:, None]  # (G, 1, Mg * prod(kernel), Cg)
    x_g = widened(x).reshape(n, groups, cg, -1).transpose(1, 0, 2, 3)  # (G, N, Cg, prod(spatial))
    products = (w_t @ x_g).reshape(groups, n, mg, *kernel, *spatial)
    # the output buffer covers the full (uncropped) extent and, for negative pads, the output beyond it
    full = [o + b + e for o, b, e in zip(out, begin, end, strict=True)]  # with output_padding
    low = [min(0, b) for b in begin]
    high = [max(f, b + o) for f, b, o in zip(full, begin, out, strict=True)]
    y = np.zeros((groups, n, mg, *(h - lo for h, lo in zip(high, low, strict=True))), dtype=products.dtype)
    for tap in np.ndindex(*kernel):
        target = tuple(
            slice(t * d - lo, t * d - lo + s * (i - 1) + 1, s)
            for t, d, lo, s, i in zip(tap, dilations, low, strides, spatial, strict=True)
        )
        y[(slice(None),) * 3 + target] += products[(slice(None),) * 3 + tap]
    y = y[(slice(None),) * 3 + tuple(slice(b - lo, b - lo + o) for b, lo, o in zip(begin, low, out, strict=True))]
    y = y.transpose(1, 0, 2, *range(3, 3 + rank)).reshape(n, groups * mg, *out)
    if bias is not None:
        y = y + bias.reshape(-1, *([1] * rank))
    return y


def is_depthwise(node: Node, inputs: list[Tensor | None], weight_index: int = 1) -> bool:
    """A grouped conv with one input channel per group: each channel filtered on its own."""
    w = inputs[weight_index]
    groups = int(node.attr("group", 1))
    return groups > 1 and w is not None and w.shape is not None and w.shape[1] == 1


class _ConvLike(OpDef):
    """Conv and QLinearConv: the same geometry and counts, with the weight at a different input position."""

    op_class = "conv"
    #: positions of the weight and bias inputs, and of the input whose dtype the output takes
    weight_index, bias_index, dtype_index = 1, 2, 0

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        w = shape_of(node, inputs[self.weight_index], "weight")
        bias = inputs[self.bias_index] if len(inputs) > self.bias_index else None
        return [(_conv_shape(node, x, w, bias), inputs[self.dtype_index].dtype)]

    def macs(self, node, inputs, outputs):
        return _conv_macs(outputs[0].shape, inputs[self.weight_index].shape)

    def cost_class(self, node, inputs):
        return "depthwise" if is_depthwise(node, inputs, self.weight_index) else "conv"

    def ops(self, node, inputs, outputs):
        return 0


@register
class Conv(_ConvLike):
    op_type = "Conv"
    weight_inputs = (1, 2)
    bias_inputs = (2,)
    min_inputs, max_inputs = 2, 3

    def run(self, node, x, w, bias=None):
        return [clamp_fused(node, conv_float(node, x, w, bias).astype(x.dtype, copy=False))]


@register
class ConvTranspose(OpDef):
    op_type = "ConvTranspose"
    op_class = "conv"
    weight_inputs = (1, 2)
    bias_inputs = (2,)
    min_inputs, max_inputs = 2, 3

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        w = shape_of(node, inputs[1], "weight")
        if len(x) < 3 or len(w) != len(x):
            raise fail(node, f"input {x} and weight {w} must both be rank >= 3 and of equal rank")
        groups = int(node.attr("group", 1))
        if w[0] != x[1] or x[1] % groups:
            raise fail(node, f"weight {w} expects {w[0]} input channels but the input {x} has {x[1]}")
        kernel = tuple(node.attr("kernel_shape", w[2:]))
        if kernel != tuple(w[2:]):
            raise fail(node, f"kernel_shape {kernel} disagrees with the weight shape {w}")
        spatial, *_ = transposed_geometry(node, x[2:], kernel)
        return [((x[0], w[1] * groups, *spatial), inputs[0].dtype)]

    def run(self, node, x, w, bias=None):
        return [clamp_fused(node, conv_transpose_float(node, x, w, bias).astype(x.dtype, copy=False))]

    def macs(self, node, inputs, outputs):
        # every input element is scattered through (Cout / groups) * prod(kernel) products
        return inputs[0].size * math.prod(inputs[1].shape[1:])

    def ops(self, node, inputs, outputs):
        return 0


@register
class QLinearConv(_ConvLike):
    """Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, [bias]."""

    op_type = "QLinearConv"
    weight_inputs = (3, 8)
    bias_inputs = (8,)
    min_inputs, max_inputs = 8, 9
    weight_index, bias_index, dtype_index = 3, 8, 7

    def run(self, node, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias=None):
        """Float reference: dequantize, convolve in float64, requantize. The int32 bias has scale
        x_scale * w_scale and zero point 0; w_scale and w_zero_point may be per output channel."""
        per_channel = (-1, *([1] * (w.ndim - 1)))
        x_f = dequantized(x, x_scale, x_zero_point)
        w_f = dequantized(w, w_scale, w_zero_point, per_channel)
        b_f = None
        if bias is not None:
            b_f = bias.astype(np.float64) * np.float64(np.asarray(x_scale)) * np.asarray(w_scale, np.float64)
        return [requantized(conv_float(node, x_f, w_f, b_f), y_scale, y_zero_point)]
