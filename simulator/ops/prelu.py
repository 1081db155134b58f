"""PRelu: ``x`` where x >= 0, ``slope * x`` below, slope broadcasting against x (TFLite's PRELU, one learned
slope per channel in mediapipe's face and palm models)."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, broadcast, register, shape_of


@register
class PRelu(OpDef):
    op_type = "PRelu"
    op_class = "activation"
    weight_inputs = (1,)
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        out = broadcast(node, [x, shape_of(node, inputs[1], "slope")])
        return [(out, inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 2 * outputs[0].size  # a compare and a multiply

    def run(self, node, x, slope):
        return [np.where(x >= 0, x, x * slope).astype(x.dtype, copy=False)]
