"""A second MAC counter, independent of edgesim's importer and registry: every tensor's shape as onnxruntime
actually produces it (the model run once with each intermediate value added as a graph output; onnx's own
shape inference stops at paddle2onnx's Shape -> Cast -> Slice chains), then the textbook formulas for the
reduction ops (Conv, ConvTranspose, MatMul, Gemm). Bias additions are not MACs."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime


def runtime_shapes(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Shape of every node output and initializer, from one onnxruntime run on ``feeds``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    names = [o for node in model.graph.node for o in node.output if o and o not in present]
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    shapes = {name: tuple(np.shape(v)) for name, v in zip(outputs, session.run(outputs, feeds), strict=True)}
    shapes.update({t.name: tuple(t.dims) for t in model.graph.initializer})
    return shapes


def reduction_macs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, int]:
    """Node name -> MACs of every Conv / ConvTranspose / MatMul / Gemm node."""
    shapes = runtime_shapes(model, feeds)
    out = {}
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            w, y = shapes[node.input[1]], shapes[node.output[0]]
            out[node.name] = math.prod(y) * math.prod(w[1:])  # Cin / group * kernel per output element
        elif node.op_type == "ConvTranspose":
            x, w = shapes[node.input[0]], shapes[node.input[1]]
            out[node.name] = math.prod(x) * math.prod(w[1:])  # each input element times Cout / group * kernel
        elif node.op_type == "MatMul":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            out[node.name] = math.prod(y) * a[-1]
        elif node.op_type == "Gemm":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            out[node.name] = math.prod(y) * (a[0] if attrs.get("transA", 0) else a[-1])
    return out
