"""Rewrites deployment converters apply before a model runs (TFLite converter, TensorRT, ONNX Runtime):
an activation that clamps the output of a conv / matmul / add / pool is fused into it, hard-swish spelled
out in elementary ops becomes one HardSwish, layer normalisation spelled out (ReduceMean, Sub, Pow,
ReduceMean, Add, Sqrt, Div, Mul, Add) becomes one LayerNormalization, Gelu spelled out (Div, Erf, Add, Mul,
Mul) one Gelu, and inference-time no-ops (Identity, Dropout) disappear. The estimator costs the graph as
the runtime would run it."""

from __future__ import annotations

import numpy as np

from simulator.graph import Graph, Node, Tensor

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


#: 1/6 as the float32 every exporter stores it in (a HardSigmoid alpha, a Mul factor)
ONE_SIXTH_F32 = np.float32(1.0) / np.float32(6.0)


def _scalar(graph: Graph, name: str, value: float) -> bool:
    """Whether ``name`` is a one-element constant holding exactly ``value`` (1/6 compared in float32)."""
    t = graph.tensors.get(name)
    if t is None or not t.constant or t.data is None or np.asarray(t.data).size != 1:
        return False
    held = np.asarray(t.data).reshape(-1)[0]
    if value == float(ONE_SIXTH_F32):
        return np.float32(held) == ONE_SIXTH_F32
    return float(held) == value


def _only_read_by_next(graph: Graph, name: str) -> bool:
    """An intermediate the fusion may swallow: one reader, not a graph output."""
    return len(graph.consumers.get(name, [])) == 1 and name not in graph.outputs


def _partner(graph: Graph, node: Node, value: float) -> str | None:
    """The other operand of a binary node one of whose two inputs is the constant ``value``."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    return b if _scalar(graph, a, value) else a if _scalar(graph, b, value) else None


def _relu6_of_x_plus_3(graph: Graph, name: str) -> tuple[str, list[Node]] | None:
    """(x, [Add, Clip]) when ``name`` is Clip(x + 3, 0, 6) (Relu6 of x + 3), else None."""
    clip = graph.producers.get(name)
    if clip is None or not _only_read_by_next(graph, name) or _clamp(graph, clip) != (0.0, 6.0):
        return None
    add = graph.producers.get(clip.inputs[0])
    if add is None or add.op_type != "Add" or not _only_read_by_next(graph, clip.inputs[0]):
        return None
    x = _partner(graph, add, 3.0)
    return (x, [add, clip]) if x is not None else None


def _divided_by_6(graph: Graph, node: Node) -> str | None:
    """The tensor ``node`` divides by 6 (Div by 6, or Mul by 1/6), else None."""
    if node.op_type == "Div" and len(node.inputs) == 2 and _scalar(graph, node.inputs[1], 6.0):
        return node.inputs[0]
    return _partner(graph, node, float(ONE_SIXTH_F32)) if node.op_type == "Mul" else None


def _hard_sigmoid_of(graph: Graph, name: str) -> tuple[str, list[Node]] | None:
    """(x, nodes) when ``name`` is HardSigmoid(x) with alpha 1/6 and beta 0.5, or Relu6(x + 3) / 6."""
    node = graph.producers.get(name)
    if node is None or not _only_read_by_next(graph, name):
        return None
    if node.op_type == "HardSigmoid":
        exact = np.float32(node.attr("alpha", 0.2)) == ONE_SIXTH_F32 and float(node.attr("beta", 0.5)) == 0.5
        return (node.inputs[0], [node]) if exact else None
    scaled = _divided_by_6(graph, node)
    found = _relu6_of_x_plus_3(graph, scaled) if scaled is not None else None
    return (found[0], [*found[1], node]) if found is not None else None


def _hard_swish_match(graph: Graph, node: Node) -> tuple[str, list[Node]] | None:
    """(x, the nodes to replace, ``node`` last) when ``node`` ends x * HardSigmoid(x) or (x * Relu6(x + 3)) / 6."""
    if node.op_type == "Mul" and len(node.inputs) == 2:
        for x, gate in (node.inputs, node.inputs[::-1]):
            found = _hard_sigmoid_of(graph, gate)
            if found is not None and found[0] == x:
                return x, [*found[1], node]
    product = _divided_by_6(graph, node)
    mul = graph.producers.get(product) if product is not None else None
    if mul is None or mul.op_type != "Mul" or len(mul.inputs) != 2 or not _only_read_by_next(graph, product):
        return None
    for x, gate in (mul.inputs, mul.inputs[::-1]):
        found = _relu6_of_x_plus_3(graph, gate)
        if found is not None and found[0] == x:
            return x, [*found[1], mul, node]
    return None


def fuse_hard_swish(graph: Graph) -> Graph:
    """Replace hard-swish written out by an exporter (PyTorch before opset 14: x * HardSigmoid(x) with alpha
    1/6; Keras: x * Relu6(x + 3) / 6, as Div or as Mul by 1/6, the gate on either side) by one HardSwish, as
    TFLite's converter fuses them into HARD_SWISH. Every constant must be exactly 3, 6, 1/6 (float32) or 0.5,
    and every intermediate read only by the pattern, or nothing is fused."""
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    for node in graph.order:
        found = _hard_swish_match(graph, node)
        if found is None or any(n.name in dropped or n.name in replaced for n in found[1]):
            continue
        x, nodes = found
        replaced[node.name] = Node(node.name, "HardSwish", [x], [node.outputs[0]], {})
        dropped.update(n.name for n in nodes[:-1])
    if not replaced:
        return graph
    return graph.replace(nodes=[replaced.get(n.name, n) for n in graph.nodes if n.name not in dropped])


def _constant_value(graph: Graph, name: str) -> np.ndarray | None:
    t = graph.tensors.get(name)
    return None if t is None or not t.constant or t.data is None else np.asarray(t.data)


def _producer(graph: Graph, name: str, op_type: str) -> Node | None:
    """The ``op_type`` node writing ``name``, when the pattern may swallow ``name`` (no other reader)."""
    node = graph.producers.get(name)
    if node is None or node.op_type != op_type or not _only_read_by_next(graph, name):
        return None
    return node


def _trailing_axes(graph: Graph, node: Node) -> int | None:
    """The first reduced axis of a keepdims ReduceMean over the trailing axes of its input, else None."""
    rank = len(graph.tensors[node.inputs[0]].shape)
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        value = _constant_value(graph, node.inputs[1])
        axes = None if value is None else [int(a) for a in value.reshape(-1)]
    if not axes or not node.attr("keepdims", 1):
        return None
    normalized = sorted(a % rank for a in axes)
    return normalized[0] if normalized == list(range(normalized[0], rank)) else None


def _squared(graph: Graph, name: str) -> str | None:
    """x when ``name`` is Pow(x, 2) or Mul(x, x) read only by the pattern."""
    node = graph.producers.get(name)
    if node is None or not _only_read_by_next(graph, name) or len(node.inputs) != 2:
        return None
    if node.op_type == "Pow":
        exponent = _constant_value(graph, node.inputs[1])
        return node.inputs[0] if exponent is not None and exponent.size == 1 and float(exponent) == 2.0 else None
    return node.inputs[0] if node.op_type == "Mul" and node.inputs[0] == node.inputs[1] else None


def _centred_over_root(graph: Graph, node: Node) -> tuple[str, Node, list[Node]] | None:
    """(centred, the Sqrt node, the nodes after it) when ``node`` is centred / Sqrt(.) or, as tf2onnx writes
    it, centred * Reciprocal(Sqrt(.))."""
    if len(node.inputs) != 2:
        return None
    if node.op_type == "Div":
        sqrt = _producer(graph, node.inputs[1], "Sqrt")
        return (node.inputs[0], sqrt, [node]) if sqrt is not None else None
    if node.op_type != "Mul":
        return None
    for centred, other in (node.inputs, node.inputs[::-1]):
        reciprocal = _producer(graph, other, "Reciprocal")
        sqrt = _producer(graph, reciprocal.inputs[0], "Sqrt") if reciprocal is not None else None
        if sqrt is not None:
            return centred, sqrt, [reciprocal, node]
    return None


def _layer_norm_core(graph: Graph, node: Node) -> tuple[str, int, float, list[Node]] | None:
    """(x, axis, epsilon, nodes) when ``node`` ends (x - mean(x)) / sqrt(mean((x - mean)^2) + eps)."""
    found = _centred_over_root(graph, node)
    if found is None:
        return None
    centred, sqrt, tail = found
    add = _producer(graph, sqrt.inputs[0], "Add")
    if add is None:
        return None
    variance, eps_name = add.inputs if _constant_value(graph, add.inputs[1]) is not None else add.inputs[::-1]
    eps = _constant_value(graph, eps_name)
    var_mean = _producer(graph, variance, "ReduceMean")
    if eps is None or eps.size != 1 or var_mean is None or _squared(graph, var_mean.inputs[0]) != centred:
        return None
    sub = graph.producers.get(centred)
    # the centred value feeds the square and the Div: exactly two readers
    if sub is None or sub.op_type != "Sub" or len(graph.consumers.get(centred, [])) != 2 or centred in graph.outputs:
        return None
    x, mean = sub.inputs
    mean_node = _producer(graph, mean, "ReduceMean")
    if mean_node is None or mean_node.inputs[0] != x:
        return None
    axis = _trailing_axes(graph, mean_node)
    if axis is None or axis != _trailing_axes(graph, var_mean):
        return None
    square = graph.producers[var_mean.inputs[0]]
    return x, axis, float(eps.reshape(-1)[0]), [mean_node, sub, square, var_mean, add, sqrt, *tail]


def _affine_operand(graph: Graph, node: Node | None, op_type: str, value: str, tail: tuple[int, ...]) -> str | None:
    """The constant operand of ``node`` (Mul or Add of ``value`` by a constant broadcasting over ``tail``)."""
    if node is None or node.op_type != op_type or len(node.inputs) != 2 or value not in node.inputs:
        return None
    other = node.inputs[1] if node.inputs[0] == value else node.inputs[0]
    constant = _constant_value(graph, other)
    if constant is None or constant.ndim > len(tail):
        return None
    try:
        fits = np.broadcast_shapes(constant.shape, tail) == tail
    except ValueError:
        return None
    return other if fits else None


def fuse_layer_norm(graph: Graph) -> Graph:
    """Replace layer normalisation written out in elementary ops (paddle2onnx, PyTorch before opset 17,
    tf2onnx) by one LayerNormalization, as onnxruntime's LayerNormFusion and TFLite's converter do. The
    pattern: mean and variance by ReduceMean over the trailing axes, the square as Pow(., 2) or Mul(d, d),
    epsilon added inside the Sqrt, then a Div (or a Mul by its Reciprocal), and optionally a constant Mul
    (scale) and Add (bias) over the normalised axes. Every intermediate must be read only inside the pattern,
    or nothing is fused."""
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    tensors: dict[str, Tensor] = {}
    for node in graph.order:
        found = _layer_norm_core(graph, node)
        if found is None or any(n.name in dropped or n.name in replaced for n in found[3]):
            continue
        x, axis, eps, nodes = found
        shape = graph.tensors[x].shape
        tail = tuple(shape[axis:])
        out, last = node.outputs[0], node
        readers = graph.consumers.get(out, [])
        scale = bias = None
        if len(readers) == 1 and out not in graph.outputs:
            scale = _affine_operand(graph, readers[0], "Mul", out, tail)
        if scale is not None:
            last, out = readers[0], readers[0].outputs[0]
            nodes.append(last)
            readers = graph.consumers.get(out, [])
            if len(readers) == 1 and out not in graph.outputs:
                bias = _affine_operand(graph, readers[0], "Add", out, tail)
            if bias is not None:
                last, out = readers[0], readers[0].outputs[0]
                nodes.append(last)
        if scale is None:
            scale = f"{node.name}.layer_norm_scale"
            dtype = np.dtype(graph.tensors[x].dtype)
            tensors[scale] = Tensor.from_array(scale, np.ones(tail, dtype))
        inputs = [x, scale] + ([bias] if bias is not None else [])
        replaced[last.name] = Node(last.name, "LayerNormalization", inputs, [out], {"axis": axis, "epsilon": eps})
        dropped.update(n.name for n in nodes if n.name != last.name)
    if not replaced:
        return graph
    nodes = [replaced.get(n.name, n) for n in graph.nodes if n.name not in dropped]
    return graph.replace(nodes=nodes, tensors={**graph.tensors, **tensors})


#: sqrt(2) and 1/sqrt(2) as the float32 an exporter stores them (PyTorch: Div by 1.4142135)
SQRT2_F32, INV_SQRT2_F32 = np.float32(np.sqrt(2.0)), np.float32(1 / np.sqrt(2.0))


def _float32_scalar(graph: Graph, name: str, value: np.float32) -> bool:
    held = _constant_value(graph, name)
    return held is not None and held.size == 1 and np.float32(held.reshape(-1)[0]) == value


def _scaled_by_inv_sqrt2(graph: Graph, name: str) -> tuple[str, Node] | None:
    """(x, node) when ``name`` is x / sqrt(2) (Div by sqrt 2 or Mul by 1 / sqrt 2), read only by the pattern."""
    node = graph.producers.get(name)
    if node is None or len(node.inputs) != 2 or not _only_read_by_next(graph, name):
        return None
    if node.op_type == "Div" and _float32_scalar(graph, node.inputs[1], SQRT2_F32):
        return node.inputs[0], node
    if node.op_type == "Mul":
        for x, c in (node.inputs, node.inputs[::-1]):
            if _float32_scalar(graph, c, INV_SQRT2_F32):
                return x, node
    return None


def _one_plus_erf(graph: Graph, name: str) -> tuple[str, list[Node]] | None:
    """(x, nodes) when ``name`` is 1 + erf(x / sqrt(2))."""
    add = graph.producers.get(name)
    if add is None or add.op_type != "Add" or not _only_read_by_next(graph, name):
        return None
    erf_out = _partner(graph, add, 1.0)
    erf = _producer(graph, erf_out, "Erf") if erf_out is not None else None
    scaled = _scaled_by_inv_sqrt2(graph, erf.inputs[0]) if erf is not None else None
    return (scaled[0], [scaled[1], erf, add]) if scaled is not None else None


def _mul_factors(graph: Graph, node: Node) -> tuple[list[str], list[Node]]:
    """The operands of a product of Muls ending at ``node``: (factors, inner Mul nodes swallowed), one level
    deep, an inner Mul taken apart only when the product reads it alone."""
    factors, inner = [], []
    for name in node.inputs:
        producer = graph.producers.get(name)
        if producer is not None and producer.op_type == "Mul" and _only_read_by_next(graph, name):
            factors += producer.inputs
            inner.append(producer)
        else:
            factors.append(name)
    return factors, inner


def _gelu_match(graph: Graph, node: Node) -> tuple[str, list[Node]] | None:
    """(x, the nodes to replace, ``node`` last) when ``node`` ends x * 0.5 * (1 + erf(x / sqrt(2))) with the
    three factors multiplied in any order."""
    if node.op_type != "Mul" or len(node.inputs) != 2:
        return None
    factors, inner = _mul_factors(graph, node)
    if len(factors) != 3:
        return None
    for i, gate in enumerate(factors):
        found = _one_plus_erf(graph, gate)
        if found is None:
            continue
        x, gate_nodes = found
        a, b = factors[:i] + factors[i + 1 :]
        if (a == x and _scalar(graph, b, 0.5)) or (b == x and _scalar(graph, a, 0.5)):
            return x, [*gate_nodes, *inner, node]
    return None


def fuse_gelu(graph: Graph) -> Graph:
    """Replace Gelu written out (PyTorch before opset 20: Div by sqrt 2, Erf, Add 1, Mul by x, Mul by 0.5, the
    products in any order) by one Gelu, as onnxruntime's GeluFusion and TFLite's converter (GELU) do. Every
    constant must be exactly sqrt 2 (or 1 / sqrt 2), 1 and 0.5 in float32, and every intermediate read only
    by the pattern."""
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    for node in graph.order:
        found = _gelu_match(graph, node)
        if found is None or any(n.name in dropped or n.name in replaced for n in found[1]):
            continue
        x, nodes = found
        replaced[node.name] = Node(node.name, "Gelu", [x], [node.outputs[0]], {})
        dropped.update(n.name for n in nodes[:-1])
    if not replaced:
        return graph
    return graph.replace(nodes=[replaced.get(n.name, n) for n in graph.nodes if n.name not in dropped])


def for_deployment(graph: Graph) -> Graph:
    return fuse_activations(fuse_hard_swish(fuse_gelu(fuse_layer_norm(drop_no_ops(graph)))))
