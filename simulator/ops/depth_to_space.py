"""DepthToSpace: channels rearranged into blocksize x blocksize spatial blocks (ONNX DepthToSpace, DCR and CRD
modes). TFLite's DEPTH_TO_SPACE on NHWC is ONNX's DCR order on NCHW: output (h b + i, w b + j, c) reads
channel (i b + j) C' + c. Pure data movement."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, fail, register, shape_of


@register
class DepthToSpace(OpDef):
    op_type = "DepthToSpace"
    op_class = "data_movement"

    def _block(self, node, channels: int) -> int:
        block = int(node.attr("blocksize", 0))
        if block < 1 or channels % (block * block):
            raise fail(node, f"blocksize {block} does not divide the {channels} channels into blocks")
        if node.attr("mode", "DCR") not in ("DCR", "CRD"):
            raise fail(node, f"mode {node.attr('mode')!r} is not DCR or CRD")
        return block

    def infer(self, node, inputs):
        n, c, h, w = shape_of(node, inputs[0], "input")
        b = self._block(node, c)
        return [((n, c // (b * b), h * b, w * b), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, x):
        n, c, h, w = x.shape
        b = self._block(node, c)
        if node.attr("mode", "DCR") == "DCR":
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return [np.ascontiguousarray(y).reshape(n, c // (b * b), h * b, w * b)]
