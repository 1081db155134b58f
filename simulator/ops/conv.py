"""Convolutions: Conv (grouped, dilated, strided, padded; depthwise when groups == channels), ConvTranspose
and the QOperator form QLinearConv."""

from __future__ import annotations

import math

from simulator.graph import Node, Shape, Tensor
from simulator.ops.registry import OpDef, fail, register, shape_of
from simulator.ops.window import window_geometry


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
        rank = len(x) - 2
        kernel = tuple(node.attr("kernel_shape", w[2:]))
        strides = list(node.attr("strides", [1] * rank))
        dilations = list(node.attr("dilations", [1] * rank))
        output_padding = list(node.attr("output_padding", [0] * rank))
        pads = list(node.attr("pads", [0] * (2 * rank)))
        auto_pad = node.attr("auto_pad", "NOTSET")
        explicit = node.attr("output_shape")
        spatial = []
        for i in range(rank):
            if explicit is not None:
                o = int(list(explicit)[-rank:][i])
            elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                o = x[2 + i] * strides[i]
            else:
                full = strides[i] * (x[2 + i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
                o = full - (0 if auto_pad == "VALID" else pads[i] + pads[i + rank])
            if o < 1:
                raise fail(node, f"output spatial dim {i} would be {o}")
            spatial.append(o)
        return [((x[0], w[1] * groups, *spatial), inputs[0].dtype)]

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
