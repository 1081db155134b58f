"""Matrix products: Gemm (fully connected), MatMul (numpy broadcasting; constant or activation operands), Einsum
and the QOperator form QLinearMatMul. A product of two activations (attention's Q.K^T and A.V) has MACs but no
weights, and is priced as the ``attention`` class: both operands stream from RAM, nothing is reused from flash."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node, Shape, Tensor
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

    def cost_class(self, node, inputs):
        return activation_product_class(inputs[0], inputs[self.b_index])


def activation_product_class(a: Tensor | None, b: Tensor | None) -> str:
    """``attention`` when neither operand is a constant, else ``matmul``."""
    return "matmul" if any(t is not None and t.constant for t in (a, b)) else "attention"


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


def einsum_terms(node: Node, shapes: list[Shape]) -> tuple[list[str], str]:
    """(one subscript string per operand, the output's) with any ``...`` spelled out as fresh letters and an
    implicit output made explicit (the letters used once, sorted), as numpy and ONNX define it."""
    equation = str(node.attr("equation", "")).replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise fail(node, f"equation {equation!r} names {len(terms)} operands but the node has {len(shapes)}")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation]
    ellipsis_rank = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes, strict=True)), default=0)
    filler = "".join(spare[:ellipsis_rank])
    expanded = []
    for term, shape in zip(terms, shapes, strict=True):
        if "..." in term:
            term = term.replace("...", filler[ellipsis_rank - (len(shape) - len(term.replace("...", ""))) :])
        if len(term) != len(shape) or not term.isalpha():
            raise fail(node, f"subscripts {term!r} do not fit an operand of shape {shape}")
        expanded.append(term)
    if arrow:
        out = rhs.replace("...", filler)
    else:
        letters = "".join(expanded)
        out = filler + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in filler))
    return expanded, out


def einsum_sizes(node: Node, terms: list[str], shapes: list[Shape]) -> dict[str, int]:
    """Size of every subscript letter (1 broadcasts against any size)."""
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        for c, d in zip(term, shape, strict=True):
            if sizes.get(c, 1) not in (1, d) and d != 1:
                raise fail(node, f"subscript {c!r} has sizes {sizes[c]} and {d}")
            sizes[c] = max(sizes.get(c, 1), d)
    return sizes


@register
class Einsum(OpDef):
    """Einstein summation. With two operands and a summed letter it is a (batched) matrix product: its MACs
    are the product of every letter's size, and it is priced as MatMul is (``attention`` between two
    activations). Otherwise (a transpose, a trace, an elementwise product) it is one operation per product."""

    op_type = "Einsum"
    weight_inputs = (0, 1)
    max_inputs = 1 << 8

    def _parsed(self, node, inputs):
        shapes = [shape_of(node, t, f"input {i}") for i, t in enumerate(inputs)]
        terms, out = einsum_terms(node, shapes)
        return terms, out, einsum_sizes(node, terms, shapes)

    def _is_product(self, terms: list[str], out: str) -> bool:
        return len(terms) == 2 and any(c not in out for c in terms[0] + terms[1])

    def infer(self, node, inputs):
        _, out, sizes = self._parsed(node, inputs)
        return [(tuple(sizes[c] for c in out), inputs[0].dtype)]

    def macs(self, node, inputs, outputs):
        terms, out, sizes = self._parsed(node, inputs)
        return math.prod(sizes.values()) if self._is_product(terms, out) else 0

    def ops(self, node, inputs, outputs):
        terms, out, sizes = self._parsed(node, inputs)
        return 0 if self._is_product(terms, out) else math.prod(sizes.values()) * max(len(terms) - 1, 1)

    def cost_class(self, node, inputs):
        terms, out, _ = self._parsed(node, inputs)
        if not self._is_product(terms, out):
            return "elementwise"
        return activation_product_class(inputs[0], inputs[1])

    def run(self, node, *xs):
        terms, out = einsum_terms(node, [x.shape for x in xs])
        equation = ",".join(terms) + "->" + out
        y = np.einsum(equation, *[widened(x) for x in xs], optimize=len(xs) > 2)
        return [np.asarray(y).astype(xs[0].dtype, copy=False)]
