"""Rearrangements of spatial data: DepthToSpace / SpaceToDepth (pixel shuffle in super-resolution and
detection necks), Upsample (Resize before opset 10) and Trilu (the triangular masks of causal attention).
No arithmetic: their cost is the bytes they move."""

from __future__ import annotations

import numpy as np

from simulator.graph import Node, Tensor
from simulator.ops.registry import OpDef, constant_ints, fail, register, shape_of
from simulator.ops.shape import Resize


def _block(node: Node, x: tuple[int, ...], to_space: bool) -> int:
    b = int(node.attr("blocksize", 0))
    if b < 1 or len(x) != 4:
        raise fail(node, f"needs a blocksize >= 1 and an N x C x H x W input, got blocksize {b} and {x}")
    if to_space and x[1] % (b * b):
        raise fail(node, f"channels {x[1]} are not divisible by blocksize^2 = {b * b}")
    if not to_space and (x[2] % b or x[3] % b):
        raise fail(node, f"height and width of {x} are not divisible by blocksize {b}")
    return b


@register
class DepthToSpace(OpDef):
    """Mode DCR (default: depth, column, row) or CRD (PyTorch's PixelShuffle)."""

    op_type = "DepthToSpace"
    op_class = "data_movement"

    def infer(self, node, inputs):
        n, c, h, w = x = shape_of(node, inputs[0], "input")
        b = _block(node, x, True)
        return [((n, c // (b * b), h * b, w * b), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, x):
        n, c, h, w = x.shape
        b = _block(node, x.shape, True)
        mode = node.attr("mode", "DCR")
        if mode == "DCR":
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        elif mode == "CRD":
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            raise fail(node, f"mode {mode!r} is not one of DCR, CRD")
        return [y.reshape(n, c // (b * b), h * b, w * b)]


@register
class SpaceToDepth(OpDef):
    op_type = "SpaceToDepth"
    op_class = "data_movement"

    def infer(self, node, inputs):
        n, c, h, w = x = shape_of(node, inputs[0], "input")
        b = _block(node, x, False)
        return [((n, c * b * b, h // b, w // b), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, x):
        n, c, h, w = x.shape
        b = _block(node, x.shape, False)
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return [y.reshape(n, c * b * b, h // b, w // b)]


def _as_resize(node: Node) -> Node:
    """The opset-10 Resize an Upsample is: same scales, asymmetric coordinates; "bilinear" (opset 1) is linear."""
    mode = node.attr("mode", "nearest")
    attrs = {"mode": "linear" if mode in ("bilinear", "linear") else mode}
    return Node(node.name, "Resize", list(node.inputs), list(node.outputs), attrs)


@register
class Upsample(Resize):
    """Opset 7-9 (deprecated since 10): scales as an attribute (7-8) or the second input (9)."""

    op_type = "Upsample"
    max_inputs = 2

    def _inputs(self, node, inputs):
        scales = node.attr("scales")
        if scales is None:
            return inputs
        return [inputs[0], Tensor.from_array("", np.asarray(scales, np.float32))]

    def infer(self, node, inputs):
        return super().infer(_as_resize(node), self._inputs(node, inputs))

    def ops(self, node, inputs, outputs):
        return super().ops(_as_resize(node), inputs, outputs)

    def run(self, node, x, scales=None):
        if scales is None:
            scales = np.asarray(node.attr("scales"), np.float32)
        return super().run(_as_resize(node), x, scales)


@register
class Trilu(OpDef):
    """Upper (default) or lower triangle of the last two axes, shifted by the optional k."""

    op_type = "Trilu"
    op_class = "data_movement"
    max_inputs = 2

    def ops(self, node, inputs, outputs):
        return 0

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        if len(x) < 2:
            raise fail(node, f"needs rank >= 2, got {x}")
        if len(inputs) > 1 and inputs[1] is not None:
            constant_ints(node, inputs[1], "k")
        return [(x, inputs[0].dtype)]

    def run(self, node, x, k=None):
        k = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
        return [np.triu(x, k) if node.attr("upper", 1) else np.tril(x, k)]
