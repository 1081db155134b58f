"""Broadcasting arithmetic: Add, Sub, Mul, Div, Mod, Pow (two inputs) and Sum, Min, Max (any number), as numpy
broadcasts."""

from __future__ import annotations

import functools

import numpy as np

from simulator.ops.registry import OpDef, broadcast, clamp_fused, register, shape_of


class _Broadcasting(OpDef):
    op_class = "elementwise"
    # a constant operand (a bias after MatMul, a per-channel scale) is a parameter of the layer
    weight_inputs = (0, 1)
    min_inputs, max_inputs = 2, 2

    def infer(self, node, inputs):
        shapes = [shape_of(node, t, f"input {i}") for i, t in enumerate(inputs)]
        return [(broadcast(node, shapes), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return outputs[0].size * (len([t for t in inputs if t is not None]) - 1)


def _integer_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # ONNX integer Div truncates toward zero, like C
    return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))


@register
class Add(_Broadcasting):
    op_type = "Add"

    def run(self, node, a, b):
        return [clamp_fused(node, np.add(a, b))]


@register
class Sub(_Broadcasting):
    op_type = "Sub"

    def run(self, node, a, b):
        return [clamp_fused(node, np.subtract(a, b))]


@register
class Mul(_Broadcasting):
    op_type = "Mul"

    def run(self, node, a, b):
        return [clamp_fused(node, np.multiply(a, b))]


@register
class Div(_Broadcasting):
    op_type = "Div"

    def run(self, node, a, b):
        if np.issubdtype(np.result_type(a, b), np.integer):
            return [_integer_divide(a, b)]
        return [np.true_divide(a, b)]


@register
class Sum(_Broadcasting):
    op_type = "Sum"
    weight_inputs = tuple(range(64))
    min_inputs, max_inputs = 1, 1 << 16

    def run(self, node, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return [total]


@register
class Min(Sum):
    op_type = "Min"

    def run(self, node, *xs):
        return [functools.reduce(np.minimum, xs)]


@register
class Max(Sum):
    op_type = "Max"

    def run(self, node, *xs):
        return [functools.reduce(np.maximum, xs)]


@register
class Mod(_Broadcasting):
    """fmod=1: C's fmod (sign of the dividend); fmod=0 (integers): Python's % (sign of the divisor)."""

    op_type = "Mod"

    def run(self, node, a, b):
        return [np.fmod(a, b) if node.attr("fmod", 0) else np.mod(a, b)]


#: the exponents a runtime computes by repeated multiplication (x*x for 2, as onnxruntime and XNNPACK do)
SMALL_INTEGER_EXPONENTS = (2.0, 3.0, 4.0)


def _constant_exponent(inputs) -> float | None:
    t = inputs[1] if len(inputs) > 1 else None
    if t is None or not t.constant or t.size != 1:
        return None
    return float(np.asarray(t.data).reshape(-1)[0])


@register
class Pow(_Broadcasting):
    """x ** y. A constant exponent of 2, 3 or 4 (LayerNorm's variance, written out by exporters) is a
    product of 1-3 multiplies per element; any other exponent is exp(y log x), a transcendental."""

    op_type = "Pow"
    weight_inputs = (1,)

    def infer(self, node, inputs):
        [(shape, _)] = super().infer(node, inputs)
        return [(shape, inputs[0].dtype)]

    def cost_class(self, node, inputs):
        return "elementwise" if _constant_exponent(inputs) in SMALL_INTEGER_EXPONENTS else "transcendental"

    def ops(self, node, inputs, outputs):
        exponent = _constant_exponent(inputs)
        multiplies = int(exponent) - 1 if exponent in SMALL_INTEGER_EXPONENTS else 1
        return outputs[0].size * multiplies

    def run(self, node, a, b):
        if b.size == 1 and float(b.reshape(-1)[0]) == 2.0:
            return [np.multiply(a, a)]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN / inf as a runtime gives them
            return [np.power(a, b.astype(a.dtype) if a.dtype.kind == "f" else b).astype(a.dtype, copy=False)]


@register
class Mean(Sum):
    op_type = "Mean"

    def ops(self, node, inputs, outputs):
        return outputs[0].size * len([t for t in inputs if t is not None])

    def run(self, node, *xs):
        return [(functools.reduce(np.add, xs) / len(xs)).astype(xs[0].dtype)]
