"""BatchNormalization. After a Conv or Gemm it is folded away on import (passes/fold_batchnorm.py), as
deployment runtimes do; where it stands alone it is an affine per-channel scale and shift."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, fail, register, shape_of


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

    def infer(self, node, inputs):
        size = node.attr("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise fail(node, f"size {size!r} is not a positive integer (the number of channels summed)")
        x = shape_of(node, inputs[0], "input")
        if len(x) < 2:
            raise fail(node, f"its input has rank {len(x)}; LRN normalizes across channels (axis 1)")
        return super().infer(node, inputs)

    def ops(self, node, inputs, outputs):
        return outputs[0].size * (2 * int(node.attr("size")) + 3)

    def run(self, node, x):
        size = int(node.attr("size"))
        alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
        squares = np.square(x)
        padded = np.pad(squares, [(0, 0), ((size - 1) // 2, size // 2)] + [(0, 0)] * (x.ndim - 2))
        window = sum(padded[:, i : i + x.shape[1]] for i in range(size))
        return [(x / (bias + alpha / size * window) ** beta).astype(x.dtype)]
