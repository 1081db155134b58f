"""Rewrites deployment converters apply before a model runs (TFLite converter, TensorRT, ONNX Runtime):
an activation that clamps the output of a conv / matmul / add / pool is fused into it, and inference-time
no-ops (Identity, Dropout) disappear. The estimator costs the graph as the runtime would run it."""

from __future__ import annotations

import numpy as np

from simulator.graph import Graph, Node

#: ops whose kernels can clamp their output on the way out (TFLite's fused_activation_function)
FUSING_PRODUCERS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "MaxPool", "AveragePool")
NO_OPS = ("Identity", "Dropout")


def _clamp(graph: Graph, node: Node) -> tuple[float, float] | None:
    """The (low, high) bounds of a Relu or a Clip with constant bounds; None for anything else."""
    if node.op_type == "Relu":
        return 0.0, float("inf")
    if node.op_type != "Clip":
        return None
    bounds = []
    for position, key, default in ((1, "min", -np.inf), (2, "max", np.inf)):
        name = node.inputs[position] if len(node.inputs) > position else ""
        if name:
            t = graph.tensors[name]
            if not t.constant:
                return None
            bounds.append(float(np.asarray(t.data).reshape(-1)[0]))
        else:
            bounds.append(float(node.attr(key, default)))
    return bounds[0], bounds[1]


def fuse_activations(graph: Graph) -> Graph:
    """Fold Relu / Clip into the op before them; the producer records ``activation = (low, high)``."""
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    for node in graph.order:
        bounds = _clamp(graph, node)
        if bounds is None:
            continue
        x = node.inputs[0]
        producer = graph.producers.get(x)
        if producer is None or producer.op_type not in FUSING_PRODUCERS or producer.name in replaced:
            continue
        if len(graph.consumers.get(x, [])) != 1 or x in graph.outputs or producer.outputs[0] != x:
            continue
        attrs = dict(producer.attrs, activation=bounds)
        outputs = [node.outputs[0], *producer.outputs[1:]]
        replaced[producer.name] = Node(producer.name, producer.op_type, list(producer.inputs), outputs, attrs)
        dropped.add(node.name)
    if not dropped:
        return graph
    return graph.replace(nodes=[replaced.get(n.name, n) for n in graph.nodes if n.name not in dropped])


def drop_no_ops(graph: Graph) -> Graph:
    """Remove Identity and Dropout, rewiring their readers to their input."""
    rename: dict[str, str] = {}
    kept = []
    for node in graph.order:
        inputs = [rename.get(n, n) for n in node.inputs]
        if node.op_type in NO_OPS and node.outputs[0] not in graph.outputs:
            rename[node.outputs[0]] = inputs[0]
            continue
        kept.append(Node(node.name, node.op_type, inputs, list(node.outputs), dict(node.attrs)))
    if not rename:
        return graph
    return graph.replace(nodes=kept)


def for_deployment(graph: Graph) -> Graph:
    return fuse_activations(drop_no_ops(graph))
