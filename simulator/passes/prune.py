"""Pruning passes (graph -> new graph): magnitude unstructured (per layer or one global threshold), N:M
semi-structured, and structured channel pruning that really removes filters and shrinks their consumers.

Unstructured and N:M pruning set a weight's ``mask`` and zero the pruned values, so the float executor runs
the pruned model as it is; the sparsity reached is exact (ties are broken by position, never by luck).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Tensor
from simulator.ops import get_op

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul")


def weight_slot(graph: Graph, node: Node) -> int | None:
    """Input position of the node's main (non-bias) constant weight, if it has one."""
    op = get_op(node.op_type)
    if op is None or node.op_type not in WEIGHTED_OPS:
        return None
    inputs = graph.input_tensors(node)
    for i in op.weight_slots(node, inputs):
        if i not in op.bias_inputs and inputs[i].shape and len(inputs[i].shape) >= 2:
            return i
    return None


def weight_name(graph: Graph, node: Node) -> str:
    """Name of a weighted layer's main weight tensor (the one passes rewrite)."""
    slot = weight_slot(graph, node)
    assert slot is not None, node.name
    return node.inputs[slot]


def weighted_layers(graph: Graph) -> list[Node]:
    return [n for n in graph.order if weight_slot(graph, n) is not None]


def sparsity_of(t: Tensor) -> float:
    """Fraction of zeros the mask leaves (0 without a mask)."""
    return 0.0 if t.mask is None else 1.0 - float(np.count_nonzero(t.mask)) / t.size


def _with_mask(graph: Graph, name: str, mask: np.ndarray) -> Tensor:
    t = graph.tensors[name]
    if t.mask is not None:
        mask = mask & t.mask
    return t.with_values(np.where(mask, np.asarray(t.data), 0).astype(t.dtype), mask=mask)


def _keep_largest(scores: np.ndarray, keep: int) -> np.ndarray:
    """Mask keeping exactly ``keep`` entries with the largest scores; among equal scores at the cut, the
    earliest positions win. Linear time (a partition, not a sort), for 100 M-weight layers."""
    flat = scores.reshape(-1)
    mask = np.zeros(flat.size, dtype=bool)
    if keep <= 0:
        return mask.reshape(scores.shape)
    if keep >= flat.size:
        return np.ones(scores.shape, dtype=bool)
    threshold = np.partition(flat, flat.size - keep)[flat.size - keep]
    mask = flat > threshold
    ties = np.flatnonzero(flat == threshold)
    mask[ties[: keep - int(mask.sum())]] = True
    return mask.reshape(scores.shape)


def _check_fraction(value: float, what: str) -> None:
    if not 0.0 <= value < 1.0:
        raise EdgesimError(f"{what} must be in [0, 1), got {value}")


def prune_unstructured(graph: Graph, layers: list[Node], sparsity: float, scope: str = "layer") -> Graph:
    """Zero the smallest-magnitude weights: ``sparsity`` of each layer's weights (scope 'layer'), or of all
    selected weights together under one threshold (scope 'global'). Already-pruned weights stay pruned."""
    _check_fraction(sparsity, "sparsity")
    if scope not in ("layer", "global"):
        raise EdgesimError(f"scope must be 'layer' or 'global', got {scope!r}")
    names = [weight_name(graph, n) for n in layers]
    tensors = dict(graph.tensors)
    if scope == "layer":
        for name in names:
            t = graph.tensors[name]
            scores = np.abs(np.asarray(t.data, dtype=np.float64))
            if t.mask is not None:
                scores = np.where(t.mask, scores, -1.0)  # pruned weights go first
            tensors[name] = _with_mask(graph, name, _keep_largest(scores, t.size - round(sparsity * t.size)))
    else:
        chunks = []
        for name in names:
            t = graph.tensors[name]
            scores = np.abs(np.asarray(t.data, dtype=np.float64)).reshape(-1)
            chunks.append(scores if t.mask is None else np.where(t.mask.reshape(-1), scores, -1.0))
        everything = np.concatenate(chunks) if chunks else np.zeros(0)
        mask = _keep_largest(everything, everything.size - round(sparsity * everything.size))
        start = 0
        for name in names:
            t = graph.tensors[name]
            tensors[name] = _with_mask(graph, name, mask[start : start + t.size].reshape(t.shape))
            start += t.size
    return graph.replace(tensors=tensors)


def reduction_axis(node: Node) -> int:
    """The weight axis summed over by the layer (its input dimension)."""
    if node.op_type in ("Conv", "QLinearConv", "ConvTranspose"):
        return 1 if node.op_type != "ConvTranspose" else 0
    if node.op_type == "Gemm":
        return 1 if node.attr("transB", 0) else 0
    return 0  # MatMul: B is K x N


def prune_n_m(graph: Graph, layers: list[Node], n: int, m: int) -> Graph:
    """Keep the ``n`` largest of every ``m`` consecutive weights along the input dimension (2:4 for sparse
    tensor cores)."""
    if not 0 < n < m:
        raise EdgesimError(f"N:M pruning needs 0 < N < M, got {n}:{m}")
    tensors = dict(graph.tensors)
    for node in layers:
        name = weight_name(graph, node)
        t = graph.tensors[name]
        axis = reduction_axis(node)
        if t.shape[axis] % m:
            raise EdgesimError(
                f"layer {node.name!r}: its input dimension ({t.shape[axis]}) is not a multiple of {m}, "
                f"so {n}:{m} groups do not tile it; exclude the layer from this pass"
            )
        w = np.moveaxis(np.abs(np.asarray(t.data, dtype=np.float64)), axis, -1)
        groups = w.reshape(-1, m)
        order = np.argsort(-groups, axis=1, kind="stable")
        keep = np.zeros(groups.shape, dtype=bool)
        np.put_along_axis(keep, order[:, :n], True, axis=1)
        mask = np.moveaxis(keep.reshape(w.shape), -1, axis)
        tensors[name] = _with_mask(graph, name, mask)
    return graph.replace(tensors=tensors)


def is_n_m(mask: np.ndarray, axis: int, n: int, m: int) -> bool:
    """Whether every group of ``m`` consecutive weights along ``axis`` keeps at most ``n``."""
    if mask.shape[axis] % m:
        return False
    groups = np.moveaxis(mask, axis, -1).reshape(-1, m)
    return bool(np.all(groups.sum(axis=1) <= n))


# -- structured (channel) pruning ------------------------------------------------------------------------

_CHANNEL_WISE = (
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Identity", "Dropout",
)  # fmt: skip


@dataclass
class _ChannelCut:
    keep: np.ndarray  # indices of the channels kept


def _slice(t: Tensor, name: str, index: np.ndarray, axis: int) -> Tensor:
    data = np.take(np.asarray(t.data), index, axis=axis)
    mask = None if t.mask is None else np.take(t.mask, index, axis=axis)
    return Tensor.from_array(name, data, mask=mask, quant=t.quant, encoding=t.encoding)


def prune_channels(graph: Graph, layers: list[Node], fraction: float) -> Graph:
    """Remove ``fraction`` of each selected Conv/Gemm's output channels (smallest L1 norm), with their bias,
    and shrink every consumer that reads those channels: channel-wise ops pass the cut on, the next
    Conv / Gemm loses the matching input channels (a depthwise conv loses the channels themselves and passes
    the cut on). A cut that would reach an Add, Concat or graph output is refused: the other operands would
    no longer line up."""
    from simulator.passes.infer_shapes import infer_shapes

    _check_fraction(fraction, "fraction")
    tensors = dict(graph.tensors)
    nodes = {n.name: n for n in graph.nodes}
    for layer in layers:
        if layer.op_type not in ("Conv", "Gemm"):
            raise EdgesimError(f"layer {layer.name!r}: channel pruning applies to Conv and Gemm, not {layer.op_type}")
        layer = nodes[layer.name]
        w_name = layer.inputs[1]
        w = tensors[w_name]
        out_axis = 0 if layer.op_type == "Conv" or layer.attr("transB", 0) else 1
        if layer.op_type == "Conv" and int(layer.attr("group", 1)) != 1:
            raise EdgesimError(
                f"layer {layer.name!r}: a grouped or depthwise conv follows its input's channels; "
                "prune the layer before it"
            )
        channels = w.shape[out_axis]
        data = np.abs(np.asarray(w.data, np.float64))
        norms = np.moveaxis(data, out_axis, 0).reshape(channels, -1).sum(axis=1)
        keep_count = channels - round(fraction * channels)
        if keep_count < 1:
            raise EdgesimError(f"layer {layer.name!r}: pruning {fraction} of {channels} channels leaves none")
        keep = np.sort(np.argsort(-norms, kind="stable")[:keep_count])
        new_inputs = list(layer.inputs)
        new_inputs[1] = f"{w_name}.channels"
        tensors[new_inputs[1]] = _slice(w, new_inputs[1], keep, out_axis)
        if len(layer.inputs) > 2 and layer.inputs[2]:
            new_inputs[2] = f"{layer.inputs[2]}.channels"
            tensors[new_inputs[2]] = _slice(tensors[layer.inputs[2]], new_inputs[2], keep, 0)
        nodes[layer.name] = Node(layer.name, layer.op_type, new_inputs, list(layer.outputs), dict(layer.attrs))
        _propagate(graph, layer.name, layer.outputs[0], keep, channels, nodes, tensors)
    shaped = {k: (v if v.constant or k in graph.inputs else Tensor(k, None, v.dtype)) for k, v in tensors.items()}
    pruned = graph.replace(nodes=[nodes[n.name] for n in graph.nodes], tensors=shaped)
    return infer_shapes(pruned)


def _propagate(graph, origin, tensor, keep, channels, nodes, tensors) -> None:
    if tensor in graph.outputs:
        raise EdgesimError(
            f"layer {origin!r}: its channels reach the graph output {tensor!r}; it cannot be channel-pruned"
        )
    for consumer in graph.consumers.get(tensor, []):
        node = nodes[consumer.name]
        where = f"layer {origin!r}: its output channels feed {node.name!r} ({node.op_type})"
        if node.op_type in _CHANNEL_WISE:
            new_inputs = list(node.inputs)
            if node.op_type == "BatchNormalization":
                for i in range(1, 5):
                    new_inputs[i] = f"{node.inputs[i]}.channels"
                    tensors[new_inputs[i]] = _slice(tensors[node.inputs[i]], new_inputs[i], keep, 0)
            nodes[node.name] = Node(node.name, node.op_type, new_inputs, list(node.outputs), dict(node.attrs))
            _propagate(graph, origin, node.outputs[0], keep, channels, nodes, tensors)
        elif node.op_type == "Conv" and node.inputs[0] == tensor:
            groups = int(node.attr("group", 1))
            w = tensors[node.inputs[1]]
            new_inputs = list(node.inputs)
            new_inputs[1] = f"{node.inputs[1]}.in_channels"
            attrs = dict(node.attrs)
            if groups == 1:
                tensors[new_inputs[1]] = _slice(w, new_inputs[1], keep, 1)
                nodes[node.name] = Node(node.name, node.op_type, new_inputs, list(node.outputs), attrs)
            elif groups == channels:
                multiplier = w.shape[0] // groups
                out_keep = (keep[:, None] * multiplier + np.arange(multiplier)).reshape(-1)
                tensors[new_inputs[1]] = _slice(w, new_inputs[1], out_keep, 0)
                if len(node.inputs) > 2 and node.inputs[2]:
                    new_inputs[2] = f"{node.inputs[2]}.channels"
                    tensors[new_inputs[2]] = _slice(tensors[node.inputs[2]], new_inputs[2], out_keep, 0)
                attrs["group"] = len(keep)
                nodes[node.name] = Node(node.name, node.op_type, new_inputs, list(node.outputs), attrs)
                _propagate(graph, origin, node.outputs[0], out_keep, channels * multiplier, nodes, tensors)
            else:
                raise EdgesimError(f"{where}, a grouped conv whose groups would no longer divide the channels")
        elif node.op_type == "Flatten" and int(node.attr("axis", 1)) == 1:
            shape = graph.tensors[tensor].shape
            per_channel = math.prod(shape[2:])
            features = (keep[:, None] * per_channel + np.arange(per_channel)).reshape(-1)
            nodes[node.name] = Node(node.name, node.op_type, list(node.inputs), list(node.outputs), dict(node.attrs))
            for reader in graph.consumers.get(node.outputs[0], []):
                _cut_gemm_inputs(graph, origin, nodes[reader.name], node.outputs[0], features, nodes, tensors)
        elif node.op_type == "Gemm" and node.inputs[0] == tensor:
            _cut_gemm_inputs(graph, origin, node, tensor, keep, nodes, tensors)
        else:
            raise EdgesimError(
                f"{where}; channel pruning cannot follow through {node.op_type} (the other operands of an Add or "
                "Concat would no longer line up); exclude this layer or prune its partners alike"
            )


def _cut_gemm_inputs(graph, origin, node, tensor, keep, nodes, tensors) -> None:
    if node.op_type != "Gemm" or node.inputs[0] != tensor or node.attr("transA", 0):
        raise EdgesimError(
            f"layer {origin!r}: its flattened channels feed {node.name!r} ({node.op_type}), which edgesim cannot shrink"
        )
    w = tensors[node.inputs[1]]
    axis = 1 if node.attr("transB", 0) else 0
    new_inputs = list(node.inputs)
    new_inputs[1] = f"{node.inputs[1]}.in_features"
    tensors[new_inputs[1]] = _slice(w, new_inputs[1], keep, axis)
    nodes[node.name] = Node(node.name, node.op_type, new_inputs, list(node.outputs), dict(node.attrs))
