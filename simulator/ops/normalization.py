"""Normalisations: BatchNormalization, LayerNormalization, InstanceNormalization, LRN. BatchNormalization after
a Conv or Gemm is folded away on import (passes/fold_batchnorm.py), as deployment runtimes do; where it stands
alone it is an affine per-channel scale and shift."""

from __future__ import annotations

import math

import numpy as np

from simulator.ops.registry import OpDef, fail, normalize_axis, register, shape_of


@register
class BatchNormalization(OpDef):
    """Inputs: X, scale, B, mean, var. Counted as 2 parameters per channel (the scale and shift a runtime
    keeps after folding mean and variance in) and 2 operations per element."""

    op_type = "BatchNormalization"
    op_class = "normalization"
    weight_inputs = (1, 2, 3, 4)
    min_inputs = max_inputs = 5

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        channels = x[1] if len(x) > 1 else None
        for i, what in enumerate(("scale", "bias", "mean", "variance"), start=1):
            if shape_of(node, inputs[i], what) != (channels,):
                raise fail(node, f"its {what} has shape {inputs[i].shape}, expected ({channels},)")
        return [(x, inputs[0].dtype)] + [((channels,), inputs[0].dtype)] * (len(node.outputs) - 1)

    def params(self, node, inputs):
        return 2 * inputs[0].shape[1]

    def ops(self, node, inputs, outputs):
        return 2 * outputs[0].size

    @staticmethod
    def affine(node, scale, bias, mean, var) -> tuple[np.ndarray, np.ndarray]:
        """(multiplier, offset) per channel: y = x * multiplier + offset."""
        eps = node.attr("epsilon", 1e-5)
        multiplier = scale / np.sqrt(var + eps)
        return multiplier, bias - mean * multiplier

    def run(self, node, x, scale, bias, mean, var):
        multiplier, offset = self.affine(node, scale, bias, mean, var)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(x * multiplier.reshape(shape) + offset.reshape(shape)).astype(x.dtype)]


@register
class LRN(OpDef):
    """Local response normalisation across channels (AlexNet, GoogLeNet): per element, a sum of ``size``
    squares, then a power and a divide."""

    op_type = "LRN"
    op_class = "normalization"

    def ops(self, node, inputs, outputs):
        return outputs[0].size * (2 * int(node.attr("size")) + 3)

    def run(self, node, x):
        size = int(node.attr("size"))
        alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
        squares = np.square(x)
        padded = np.pad(squares, [(0, 0), ((size - 1) // 2, size // 2)] + [(0, 0)] * (x.ndim - 2))
        window = sum(padded[:, i : i + x.shape[1]] for i in range(size))
        return [(x / (bias + alpha / size * window) ** beta).astype(x.dtype)]


def layer_norm_ops(elements: int, rows: int, affine_inputs: int) -> int:
    """Operations of a layer normalisation: per element a sum for the mean, a subtract, a square, a sum for
    the variance and a multiply by 1/std, plus one multiply / add per affine input (scale, bias); per row one
    reciprocal square root."""
    return elements * (5 + affine_inputs) + rows


@register
class LayerNormalization(OpDef):
    """Opset 17: normalise over the axes from ``axis`` on, then scale and shift. Optional outputs Mean and
    InvStdDev keep the reduced axes as 1. Spelled out by older exporters (ReduceMean, Sub, Pow, ReduceMean,
    Add, Sqrt, Div, Mul, Add), which passes/deploy.py fuses back into this op as runtimes do."""

    op_type = "LayerNormalization"
    op_class = "normalization"
    weight_inputs = (1, 2)
    min_inputs, max_inputs = 2, 3

    def _axis(self, node, rank: int) -> int:
        return normalize_axis(node, int(node.attr("axis", -1)), rank)

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis = self._axis(node, len(x))
        reduced = (*x[:axis], *([1] * (len(x) - axis)))
        return [(x, inputs[0].dtype)] + [(reduced, "float32")] * (len(node.outputs) - 1)

    def ops(self, node, inputs, outputs):
        x = inputs[0].shape
        rows = math.prod(x[: self._axis(node, len(x))])
        return layer_norm_ops(inputs[0].size, rows, len([t for t in inputs[1:] if t is not None]))

    def run(self, node, x, scale, bias=None):
        axes = tuple(range(self._axis(node, x.ndim), x.ndim))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(np.square(x64 - mean).mean(axis=axes, keepdims=True) + node.attr("epsilon", 1e-5))
        y = (x64 - mean) * inv_std * scale
        if bias is not None:
            y = y + bias
        extra = [mean.astype(np.float32), inv_std.astype(np.float32)]
        return [y.astype(x.dtype), *extra][: len(node.outputs)]


@register
class InstanceNormalization(OpDef):
    """Per sample and channel over the spatial axes, then a per-channel scale and shift."""

    op_type = "InstanceNormalization"
    op_class = "normalization"
    weight_inputs = (1, 2)
    min_inputs = max_inputs = 3

    def ops(self, node, inputs, outputs):
        x = inputs[0].shape
        return layer_norm_ops(inputs[0].size, math.prod(x[:2]), 2)

    def run(self, node, x, scale, bias):
        axes = tuple(range(2, x.ndim))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = np.square(x64 - mean).mean(axis=axes, keepdims=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x64 - mean) / np.sqrt(var + node.attr("epsilon", 1e-5)) * scale.reshape(shape) + bias.reshape(shape)
        return [y.astype(x.dtype)]


@register
class GroupNormalization(OpDef):
    """Per sample over each group of channels and the spatial axes, then a scale and shift: per channel (C
    values, opset 21) or, in opset 18's form, per group (num_groups values)."""

    op_type = "GroupNormalization"
    op_class = "normalization"
    weight_inputs = (1, 2)
    min_inputs = max_inputs = 3

    def ops(self, node, inputs, outputs):
        return layer_norm_ops(inputs[0].size, inputs[0].shape[0] * int(node.attr("num_groups")), 2)

    def run(self, node, x, scale, bias):
        groups = int(node.attr("num_groups"))
        n, c = x.shape[:2]
        if c % groups:
            raise fail(node, f"{c} channels do not split into {groups} groups")
        x64 = x.astype(np.float64).reshape(n, groups, -1)
        mean = x64.mean(axis=2, keepdims=True)
        var = np.square(x64 - mean).mean(axis=2, keepdims=True)
        y = ((x64 - mean) / np.sqrt(var + node.attr("epsilon", 1e-5))).reshape(x.shape)
        if scale.size == groups and groups != c:
            scale, bias = np.repeat(scale, c // groups), np.repeat(bias, c // groups)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]


@register
class LpNormalization(OpDef):
    """x divided by its L1 or L2 norm along one axis (embedding heads)."""

    op_type = "LpNormalization"
    op_class = "normalization"

    def ops(self, node, inputs, outputs):
        return 3 * inputs[0].size

    def run(self, node, x):
        axis = normalize_axis(node, int(node.attr("axis", -1)), x.ndim)
        p = int(node.attr("p", 2))
        if p not in (1, 2):
            raise fail(node, f"p={p} is not 1 or 2")
        x64 = x.astype(np.float64)
        norm = (
            np.sum(np.abs(x64), axis=axis, keepdims=True)
            if p == 1
            else np.sqrt(np.sum(x64 * x64, axis=axis, keepdims=True))
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            return [(x64 / norm).astype(x.dtype)]
