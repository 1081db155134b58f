"""Helpers for building small ONNX models in tests, and where the onnx wheel keeps its light real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def make_model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    """An ONNX model from helper-made parts; initializers given as {name: array}."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()]
    graph = helper.make_graph(nodes, "test", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def tensor_info(name: str, shape, elem=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def graph_to_onnx(graph, opset: int = 17) -> onnx.ModelProto:
    """An edgesim graph (``simulator.graph.Graph``) written back as an ONNX model, so that an independent
    runtime can execute it: nodes in execution order with their attributes as they are, constants as
    initializers. Deployment-fused graphs carry the edgesim-only ``activation`` attribute and are refused:
    export the unfused graph."""
    nodes, inits, seen = [], [], set()

    def constant(name):
        t = graph.tensors.get(name)
        if name and name not in seen and t is not None and t.constant:
            seen.add(name)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(t.data), name))

    for node in graph.order:
        if "activation" in node.attrs:
            raise ValueError(f"node {node.name!r} has a fused activation, which ONNX cannot express")
        attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v for k, v in node.attrs.items()}
        nodes.append(helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name, **attrs))
        for name in node.inputs:
            constant(name)
    for name in graph.outputs:
        constant(name)

    def info(name):
        t = graph.tensors[name]
        return tensor_info(name, t.shape, helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)))

    return helper.make_model(
        helper.make_graph(nodes, graph.name, [info(n) for n in graph.inputs], [info(n) for n in graph.outputs], inits),
        opset_imports=[helper.make_opsetid("", opset)],
    )


def logit_level_differences(graph, feeds: list[dict[str, np.ndarray]], logits: str) -> np.ndarray:
    """|tflm integer value of tensor ``logits`` - the float run of the same fake-quantized graph|, in output
    levels, over ``feeds``. The float run (an independent computation) sees the input on its grid and rounds
    every activation to its grid, with each Relu fused into its layer as the runtime does."""
    from simulator.execute.float_exec import run_graph
    from simulator.execute.int_exec import run_tflm
    from simulator.fidelity import activation_rounding
    from simulator.passes.deploy import for_deployment
    from simulator.passes.quantize import fake_quantize

    deployed = for_deployment(graph)
    rounding = activation_rounding(deployed)
    q = graph.tensors[logits].quant
    differences = []
    for feed in feeds:
        values, _ = run_tflm(graph, feed, keep=True)
        grid = {name: fake_quantize(value, graph.tensors[name].quant) for name, value in feed.items()}
        reference = run_graph(deployed, grid, keep=True, transform=rounding)[logits]
        levels = np.rint(reference / float(q.scale)) + int(q.zero_point)
        differences.append(np.abs(values[logits].astype(np.int64) - levels).reshape(-1))
    return np.concatenate(differences)


def chain_spec(n: int, long_name: str = "") -> dict:
    """A YAML model spec of ``n`` layers in blocks of four (1x1 conv, depthwise 3x3, 1x1 projection, residual
    add), all blocks alike (their layers coincide on a roofline); ``long_name`` renames the first layer.
    Reports of real-size models are tested and benchmarked on it."""
    layers: list[dict] = []
    for i in range(n):
        block, k = divmod(i, 4)
        if k == 0:
            layers.append({"type": "conv", "name": f"b{block}_expand", "filters": 16, "kernel": 1,
                           "activation": "relu"})  # fmt: skip
        elif k == 1:
            layers.append({"type": "depthwise", "name": f"b{block}_dw", "kernel": 3, "padding": "same"})
        elif k == 2:
            layers.append({"type": "conv", "name": f"b{block}_project", "filters": 8, "kernel": 1})
        else:
            previous = f"b{block - 1}_add" if block else "image"
            layers.append({"type": "add", "name": f"b{block}_add", "inputs": [f"b{block}_project", previous]})
    if long_name and layers:
        layers[0]["name"] = long_name
        if len(layers) > 1:
            layers[1]["input"] = long_name
    return {"name": f"chain-{n}", "inputs": [{"name": "image", "shape": [1, 8, 16, 16]}], "layers": layers}


def quantize_with_onnxruntime(
    float_model: onnx.ModelProto, target: Path, fmt: str = "QDQ", activations: str = "QUInt8", *, count: int = 4,
    seed: int = 0,
) -> Path:  # fmt: skip
    """``float_model`` quantized by onnxruntime's ``quantize_static`` into ``target`` (``fmt`` "QDQ" / "QOperator",
    ``activations`` "QUInt8" / "QInt8", int8 weights per tensor), calibrated on ``count`` seeded standard-normal
    inputs of its first input's shape. The test extra's onnxruntime must be installed."""
    from onnxruntime import quantization

    source = target.with_name(f"{target.stem}-float.onnx")
    onnx.save(float_model, str(source))
    x = float_model.graph.input[0]
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    batches = iter([{x.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(count)])

    class Reader(quantization.CalibrationDataReader):
        def get_next(self):
            return next(batches, None)

    quantization.quantize_static(
        str(source), str(target), Reader(), quant_format=getattr(quantization.QuantFormat, fmt),
        activation_type=getattr(quantization.QuantType, activations), weight_type=quantization.QuantType.QInt8,
    )  # fmt: skip
    return target
