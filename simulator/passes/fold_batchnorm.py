"""Fold batch norm, and the per-channel Mul/Add that Caffe's Scale layer exports to, into the layer before
it, as TFLite's converter, TensorRT and ONNX Runtime do at deployment.

A BatchNormalization, or a Mul / Add / Sub by a constant that varies only along the channel axis, is a
per-channel affine map y = x * m + a. After a Conv, ConvTranspose or Gemm it merges into the weights and bias
(W'[c] = W[c] * m[c], b' = b * m + a); after a BatchNormalization it merges into that BN's scale and bias
(so BN -> Mul -> Add becomes one BN, which may then fold further). The folded values are computed lazily:
counting a large model never touches its weights.

Each fold computes in the weight's own type with onnxruntime's order of operations (ConvBNFusion, ConvMulFusion,
ConvAddFusion, one after the other as the runtime applies them), so a folded float32 Conv holds the very weights
onnxruntime runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.graph import Graph, Node, Tensor

_PRODUCERS = ("Conv", "ConvTranspose", "Gemm", "BatchNormalization")
_AFFINE = ("BatchNormalization", "Mul", "Add", "Sub")

#: a per-channel affine map as an update of (weight, bias): ``fold(w, b, axis)`` returns the new weight and bias
#: (b is None when the layer has none), computing in the weight's dtype in onnxruntime's order of operations
Affine = Callable[[np.ndarray, np.ndarray | None, int], tuple[np.ndarray, np.ndarray]]


def _channel_axis(producer: Node, out_rank: int) -> int:
    return out_rank - 1 if producer.op_type == "Gemm" else 1


def _per_channel(t: Tensor, out_shape: tuple[int, ...], axis: int) -> bool:
    """Whether a constant broadcasts against ``out_shape`` varying at most along ``axis``."""
    if len(t.shape) > len(out_shape):
        return False
    padded = (1,) * (len(out_shape) - len(t.shape)) + tuple(t.shape)
    return all(d == 1 or (i == axis and d == out_shape[axis]) for i, d in enumerate(padded))


def _along(values: np.ndarray, rank: int, axis: int) -> np.ndarray:
    shape = [1] * rank
    shape[axis] = -1
    return values.reshape(shape)


def _batchnorm_fold(node: Node, params: list[Tensor]) -> Affine:
    """onnxruntime's ConvBNFusion, step by step in the weight's type (float32 for float32 models):
    ``s = scale / sqrt(var + eps)``, ``W' = W * s``, ``B' = (B - mean) * s + beta`` (``beta - mean * s`` without a
    bias). Folding in float64 instead moves the last bit of a third or more of the outputs."""

    def fold(w: np.ndarray, b: np.ndarray | None, axis: int) -> tuple[np.ndarray, np.ndarray]:
        dtype = w.dtype
        scale, beta, mean, var = (np.asarray(t.data).astype(dtype) for t in params)
        eps = np.asarray(node.attr("epsilon", 1e-5)).astype(dtype)
        s = scale / np.sqrt(var + eps)
        new_w = w * _along(s, w.ndim, axis)
        new_b = beta - mean * s if b is None else (b.astype(dtype) - mean) * s + beta
        return new_w.astype(dtype), new_b.astype(dtype)

    return fold


def _affine_of(graph: Graph, node: Node, x: str, channels: int, axis: int, rank: int) -> Affine | None:
    """The per-channel affine map ``node`` applies to its input ``x``, as a weight / bias update, if it is one."""
    tensors = graph.tensors
    if node.op_type == "BatchNormalization":
        if node.inputs[0] != x or len([o for o in node.outputs if o]) != 1 or axis != 1:
            return None
        params = [tensors[n] for n in node.inputs[1:]]
        if not all(t.constant and t.shape == (channels,) for t in params):
            return None
        return _batchnorm_fold(node, params)
    if len(node.inputs) != 2 or x not in node.inputs:
        return None
    position = node.inputs.index(x)
    other = tensors[node.inputs[1 - position]]
    if not other.constant or node.inputs[0] == node.inputs[1]:
        return None
    if node.op_type == "Sub" and position != 0:
        return None
    out_shape = tensors[node.outputs[0]].shape
    if out_shape != tensors[x].shape or len(out_shape) != rank or not _per_channel(other, out_shape, axis):
        return None

    def fold(w: np.ndarray, b: np.ndarray | None, w_axis: int) -> tuple[np.ndarray, np.ndarray]:
        """onnxruntime's ConvMulFusion / ConvAddFusion: ``W * c`` and ``B * c``; ``B + c`` (``B - c``), in the
        weight's type; a missing bias is 0."""
        dtype = w.dtype
        c = np.asarray(other.data).astype(dtype)
        c = np.broadcast_to(c.reshape((1,) * (rank - c.ndim) + c.shape), out_shape)
        c = np.moveaxis(c, axis, 0).reshape(channels, -1)[:, 0]
        b = np.zeros(channels, dtype) if b is None else b.astype(dtype)
        if node.op_type == "Mul":
            return (w * _along(c, w.ndim, w_axis)).astype(dtype), (b * c).astype(dtype)
        return w, (b + c if node.op_type == "Add" else b - c).astype(dtype)

    return fold


class _Fold:
    """The arithmetic of one fold, evaluated on first use of the new weights."""

    def __init__(self, weight: Tensor, bias: Tensor | None, weight_axis: int, affine: Affine):
        self.w, self.b, self.axis, self.affine = weight, bias, weight_axis, affine
        self._result: tuple[np.ndarray, np.ndarray] | None = None

    def _folded(self) -> tuple[np.ndarray, np.ndarray]:
        if self._result is None:
            w = np.asarray(self.w.data)
            b = None if self.b is None else np.asarray(self.b.data)
            self._result = self.affine(w, b, self.axis)
        return self._result

    def weight(self) -> np.ndarray:
        return self._folded()[0]

    def bias(self) -> np.ndarray:
        return self._folded()[1]


def _fold_into(graph: Graph, producer: Node, consumer: Node, tensors: dict[str, Tensor]) -> Node | None:
    """``producer`` with ``consumer``'s affine map merged in, writing ``consumer``'s output; or None."""
    x = producer.outputs[0]
    out_shape = tensors[x].shape
    axis = _channel_axis(producer, len(out_shape))
    channels = out_shape[axis]
    affine = _affine_of(graph, consumer, x, channels, axis, len(out_shape))
    if affine is None:
        return None
    params = [tensors[n] for n in producer.inputs[1:] if n]
    if not all(t.constant and t.quant is None for t in params):
        return None
    new_inputs = list(producer.inputs)
    if producer.op_type == "BatchNormalization":
        if len([o for o in producer.outputs if o]) != 1:
            return None
        # BN's scale is its "weight" and its bias its "bias": both are per channel
        slots = [(1, 0, tensors[producer.inputs[1]]), (2, None, tensors[producer.inputs[2]])]
        fold = _Fold(slots[0][2], slots[1][2], 0, affine)
        for index, _, t in slots:
            name = f"{producer.name}.{'scale' if index == 1 else 'bias'}_folded_{consumer.name}"
            factory = fold.weight if index == 1 else fold.bias
            tensors[name] = Tensor(name, t.shape, t.dtype, constant=True, factory=factory)
            new_inputs[index] = name
    else:
        if producer.op_type == "Gemm" and (producer.attr("alpha", 1.0) != 1.0 or producer.attr("beta", 1.0) != 1.0):
            return None
        if producer.op_type == "ConvTranspose" and int(producer.attr("group", 1)) != 1:
            return None
        w = tensors[producer.inputs[1]]
        if producer.op_type == "Conv":
            w_axis = 0
        elif producer.op_type == "ConvTranspose":
            w_axis = 1
        else:
            w_axis = 0 if producer.attr("transB", 0) else 1
        bias = tensors[producer.inputs[2]] if len(producer.inputs) > 2 and producer.inputs[2] else None
        if bias is not None and bias.shape != (channels,):
            return None  # a broadcast Gemm bias: leave the affine op standing
        fold = _Fold(w, bias, w_axis, affine)
        w_name = f"{producer.name}.weight_folded_{consumer.name}"
        b_name = f"{producer.name}.bias_folded_{consumer.name}"
        tensors[w_name] = Tensor(w_name, w.shape, w.dtype, constant=True, factory=fold.weight)
        tensors[b_name] = Tensor(b_name, (channels,), w.dtype, constant=True, factory=fold.bias)
        new_inputs = [producer.inputs[0], w_name, b_name]
    return Node(producer.name, producer.op_type, new_inputs, [consumer.outputs[0]], dict(producer.attrs))


def fold_batchnorm(graph: Graph) -> Graph:
    """A new graph with every foldable BN / per-channel affine op merged into the layer before it."""
    tensors = dict(graph.tensors)
    current: dict[str, Node] = {}  # name of an original producer -> its folded replacement
    writer: dict[str, str] = {}  # tensor -> name of the (possibly folded) node writing it now
    dropped: set[str] = set()
    for node in graph.order:
        for out in node.outputs:
            writer[out] = node.name
        if node.op_type not in _AFFINE:
            continue
        activation = [n for n in node.inputs if n and not tensors[n].constant]
        if len(activation) != 1 or activation[0] not in writer:
            continue
        x = activation[0]
        if len(graph.consumers.get(x, [])) != 1 or x in graph.outputs:
            continue  # the tensor before the affine map is needed elsewhere
        owner = writer[x]
        producer = current.get(owner) or graph.node(owner)
        if producer.op_type not in _PRODUCERS or producer.outputs[0] != x:
            continue
        folded = _fold_into(graph, producer, node, tensors)
        if folded is None:
            continue
        current[owner] = folded
        writer[node.outputs[0]] = owner
        dropped.add(node.name)
    if not dropped:
        return graph
    nodes = [current.get(n.name, n) for n in graph.nodes if n.name not in dropped]
    return graph.replace(nodes=nodes, tensors=tensors)
