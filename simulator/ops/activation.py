"""Elementwise activations. Relu6 is Clip(0, 6); HardSwish and HardSigmoid keep their own entries because
integer runtimes have dedicated kernels for them."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, normalize_axis, register


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


@register
class Softmax(_Activation):
    """exp, sum and divide per element."""

    op_type = "Softmax"

    def ops(self, node, inputs, outputs):
        return 3 * outputs[0].size

    def infer(self, node, inputs):
        x = inputs[0]
        normalize_axis(node, int(node.attr("axis", -1)), len(x.shape))
        return [(x.shape, x.dtype)]

    def run(self, node, x):
        axis = int(node.attr("axis", -1))
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return [(e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)]
