"""Matrix products: Gemm (fully connected), MatMul (numpy broadcasting; constant or activation operands) and
the QOperator form QLinearMatMul."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node, Shape
from simulator.ops.quantization import dequantized, requantized
from simulator.ops.registry import OpDef, broadcast, clamp_fused, fail, register, shape_of, widened


def matmul_shape(node: Node, a: Shape, b: Shape) -> tuple[Shape, int]:
    """(output shape, reduction length K) of numpy/ONNX matmul, with 1-D operands promoted and dropped."""
    if not a or not b:
        raise fail(node, "MatMul operands must have rank >= 1")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise fail(node, f"inner dimensions of {a} and {b} differ ({a2[-1]} vs {b2[-2]})")
    batch = broadcast(node, [a2[:-2], b2[:-2]])
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out, a2[-1]


@register
class Gemm(OpDef):
    """Y = alpha * A' B' + beta * C, A' = A or A^T, B' = B or B^T: the fully connected layer."""

    op_type = "Gemm"
    op_class = "matmul"
    weight_inputs = (1, 2)
    bias_inputs = (2,)
    min_inputs, max_inputs = 2, 3

    def _mnk(self, node: Node, a: Shape, b: Shape) -> tuple[int, int, int]:
        if len(a) != 2 or len(b) != 2:
            raise fail(node, f"Gemm needs 2-D operands, got {a} and {b}; insert a Flatten before it")
        m, k = (a[1], a[0]) if node.attr("transA", 0) else a
        kb, n = (b[1], b[0]) if node.attr("transB", 0) else b
        if k != kb:
            raise fail(node, f"inner dimensions differ: A {a} gives K={k}, B {b} gives K={kb}")
        return m, n, k

    def infer(self, node, inputs):
        a = shape_of(node, inputs[0], "input A")
        b = shape_of(node, inputs[1], "input B")
        m, n, _ = self._mnk(node, a, b)
        if len(inputs) > 2 and inputs[2] is not None:
            broadcast(node, [shape_of(node, inputs[2], "input C"), (m, n)])
        return [((m, n), inputs[0].dtype)]

    def macs(self, node, inputs, outputs):
        return math.prod(self._mnk(node, inputs[0].shape, inputs[1].shape))

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, a, b, c=None):
        dtype = a.dtype
        a = a.T if node.attr("transA", 0) else a
        b = b.T if node.attr("transB", 0) else b
        y = node.attr("alpha", 1.0) * (widened(a) @ widened(b))
        if c is not None:
            y = y + node.attr("beta", 1.0) * c
        return [clamp_fused(node, y.astype(dtype, copy=False))]


class _MatMulLike(OpDef):
    """MatMul and QLinearMatMul: numpy matmul shapes, with B at a different input position."""

    op_class = "matmul"
    #: position of operand B, and of the input whose dtype the output takes
    b_index, dtype_index = 1, 0

    def infer(self, node, inputs):
        a = shape_of(node, inputs[0], "input A")
        out, _ = matmul_shape(node, a, shape_of(node, inputs[self.b_index], "input B"))
        return [(out, inputs[self.dtype_index].dtype)]

    def macs(self, node, inputs, outputs):
        _, k = matmul_shape(node, inputs[0].shape, inputs[self.b_index].shape)
        return outputs[0].size * k

    def ops(self, node, inputs, outputs):
        return 0


@register
class MatMul(_MatMulLike):
    op_type = "MatMul"
    weight_inputs = (0, 1)
    min_inputs, max_inputs = 2, 2

    def run(self, node, a, b):
        y = np.matmul(widened(a), widened(b))
        return [clamp_fused(node, y.astype(np.result_type(a, b), copy=False))]


@register
class QLinearMatMul(_MatMulLike):
    """Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point."""

    op_type = "QLinearMatMul"
    weight_inputs = (0, 3)
    min_inputs, max_inputs = 8, 8
    b_index, dtype_index = 3, 7

    def run(self, node, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
        """Float reference: dequantize (a per row, b per column when their scales are 1-D), multiply in
        float64, requantize."""
        a_f = dequantized(a, a_scale, a_zero_point, (-1, 1))
        b_f = dequantized(b, b_scale, b_zero_point, (1, -1))
        return [requantized(np.matmul(a_f, b_f), y_scale, y_zero_point)]
