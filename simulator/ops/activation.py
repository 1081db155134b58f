"""Elementwise activations. Relu6 is Clip(0, 6); HardSwish and HardSigmoid keep their own entries because
integer runtimes have dedicated kernels for them. Activations built on exp / erf / tanh of every element
(Gelu, Softplus, Mish, Elu, Selu, Celu) are priced as the ``transcendental`` class; Sigmoid, Tanh and Softmax
stay ``activation``, the class whose per-element cost the profiles take from the runtimes' lookup-table and
fixed-point kernels."""

from __future__ import annotations

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, fail, normalize_axis, register, shape_of
from simulator.ops.unary import erf


class _Activation(OpDef):
    op_class = "activation"


@register
class Relu(_Activation):
    op_type = "Relu"

    def run(self, node, x):
        return [np.maximum(x, 0).astype(x.dtype)]


@register
class Clip(_Activation):
    """Opset < 11 gives the bounds as attributes, later opsets as optional inputs."""

    op_type = "Clip"
    max_inputs = 3

    def bounds(self, node, lo, hi) -> tuple[float | None, float | None]:
        lo = node.attr("min") if lo is None else lo.item()
        hi = node.attr("max") if hi is None else hi.item()
        return lo, hi

    def run(self, node, x, lo=None, hi=None):
        lo, hi = self.bounds(node, lo, hi)
        return [np.clip(x, lo, hi).astype(x.dtype)]


@register
class LeakyRelu(_Activation):
    op_type = "LeakyRelu"

    def run(self, node, x):
        return [np.where(x >= 0, x, x * node.attr("alpha", 0.01)).astype(x.dtype)]


@register
class Sigmoid(_Activation):
    op_type = "Sigmoid"

    def run(self, node, x):
        with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88 and the result is 0, as it should
            return [(1.0 / (1.0 + np.exp(-x))).astype(x.dtype)]


@register
class HardSigmoid(_Activation):
    op_type = "HardSigmoid"

    def run(self, node, x):
        y = np.clip(node.attr("alpha", 0.2) * x + node.attr("beta", 0.5), 0, 1)
        return [y.astype(x.dtype)]


@register
class HardSwish(_Activation):
    op_type = "HardSwish"

    def run(self, node, x):
        return [(x * np.clip(x / 6.0 + 0.5, 0, 1)).astype(x.dtype)]


@register
class Tanh(_Activation):
    op_type = "Tanh"

    def run(self, node, x):
        return [np.tanh(x)]


def softmax_axes(node: Node, rank: int) -> tuple[int, ...]:
    """The axes Softmax / LogSoftmax normalise over: ``axis`` alone from opset 13; before, the input is
    flattened to 2-D at ``axis`` (default 1) and every axis from it on is one row (the importer marks those
    nodes ``legacy_2d``)."""
    axis = normalize_axis(node, int(node.attr("axis", -1)), rank)
    return tuple(range(axis, rank)) if node.attr("legacy_2d", 0) else (axis,)


class _Normalised(_Activation):
    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        softmax_axes(node, len(x))
        return [(x, inputs[0].dtype)]

    @staticmethod
    def log_softmax(node: Node, x: np.ndarray) -> np.ndarray:
        axes = softmax_axes(node, x.ndim)
        shifted = x.astype(np.float64) - np.max(x, axis=axes, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


@register
class Softmax(_Normalised):
    """exp, sum and divide per element."""

    op_type = "Softmax"

    def ops(self, node, inputs, outputs):
        return 3 * outputs[0].size

    def run(self, node, x):
        axes = softmax_axes(node, x.ndim)
        e = np.exp(x - np.max(x, axis=axes, keepdims=True))
        return [(e / np.sum(e, axis=axes, keepdims=True)).astype(x.dtype)]


@register
class LogSoftmax(_Normalised):
    """exp and sum per element, then one log per row and a subtract per element."""

    op_type = "LogSoftmax"

    def ops(self, node, inputs, outputs):
        return 3 * outputs[0].size

    def run(self, node, x):
        return [self.log_softmax(node, x).astype(x.dtype)]


def _prelu_slope(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """The slope as it broadcasts against x. Before opset 7 a 1-D slope of C values is per channel (axis 1),
    which numpy's trailing-axis broadcasting would misplace."""
    if slope.ndim == 1 and x.ndim > 2 and slope.size == x.shape[1] and slope.size not in (1, x.shape[-1]):
        return slope.reshape(-1, *([1] * (x.ndim - 2)))
    return slope


@register
class PRelu(_Activation):
    """x where x >= 0, else slope * x; the slope (per channel, broadcast unidirectionally) is a parameter."""

    op_type = "PRelu"
    weight_inputs = (1,)
    min_inputs = max_inputs = 2

    def run(self, node, x, slope):
        return [np.where(x >= 0, x, x * _prelu_slope(x, slope)).astype(x.dtype)]


@register
class Softsign(_Activation):
    op_type = "Softsign"

    def run(self, node, x):
        return [(x / (1 + np.abs(x))).astype(x.dtype)]


@register
class ThresholdedRelu(_Activation):
    op_type = "ThresholdedRelu"

    def run(self, node, x):
        return [np.where(x > node.attr("alpha", 1.0), x, 0).astype(x.dtype)]


class _Exponential(_Activation):
    op_class = "transcendental"


@register
class Gelu(_Exponential):
    """Opset 20: x * Phi(x), with Phi the normal CDF through erf, or its tanh approximation."""

    op_type = "Gelu"

    def run(self, node, x):
        x64 = x.astype(np.float64)
        approximate = node.attr("approximate", "none")
        if approximate == "tanh":
            phi = 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)))
        elif approximate == "none":
            phi = 0.5 * (1 + erf(x64 / np.sqrt(2)))
        else:
            raise fail(node, f"approximate={approximate!r} is not one of none, tanh")
        return [(x64 * phi).astype(x.dtype)]


@register
class Softplus(_Exponential):
    op_type = "Softplus"

    def run(self, node, x):
        return [np.logaddexp(0, x.astype(np.float64)).astype(x.dtype)]


@register
class Mish(_Exponential):
    op_type = "Mish"

    def run(self, node, x):
        x64 = x.astype(np.float64)
        return [(x64 * np.tanh(np.logaddexp(0, x64))).astype(x.dtype)]


@register
class Elu(_Exponential):
    op_type = "Elu"

    def run(self, node, x):
        alpha = node.attr("alpha", 1.0)
        return [np.where(x >= 0, x, alpha * np.expm1(x.astype(np.float64))).astype(x.dtype)]


@register
class Celu(_Exponential):
    op_type = "Celu"

    def run(self, node, x):
        alpha = node.attr("alpha", 1.0)
        x64 = x.astype(np.float64)
        return [(np.maximum(0, x64) + np.minimum(0, alpha * np.expm1(x64 / alpha))).astype(x.dtype)]


@register
class Selu(_Exponential):
    op_type = "Selu"

    def run(self, node, x):
        alpha = node.attr("alpha", 1.6732632423543772848170429916717)
        gamma = node.attr("gamma", 1.0507009873554804934193349852946)
        x64 = x.astype(np.float64)
        return [(gamma * np.where(x64 > 0, x64, alpha * np.expm1(x64))).astype(x.dtype)]
