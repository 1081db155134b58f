"""The graph rewrites onnxruntime applies to a QDQ model before it runs it, where they change values.

onnxruntime does not run the graph a model file holds: its level-1 optimizers first rewrite it. Most rewrites
(fusions) change only how a value is computed, and :mod:`ort_exec` reproduces them where it runs each node. The
ones here change *what* is computed, so they are applied to the whole graph once, before the run, as the runtime
does (:func:`onnxruntime_rewrites`):

* **WeightBiasQuantization** (``onnxruntime/core/optimizer/qdq_transformer/weight_bias_quantization.cc``): a Conv,
  ConvTranspose or Gemm whose input comes from a per-tensor DequantizeLinear and whose output goes, unbranched
  (through a Relu / Clip at most), to a QuantizeLinear gets a float32 weight initializer quantized to int8
  (asymmetric over the whole tensor, ``GetQuantizationParameter``) and a float32 bias initializer quantized to
  int32 at ``s_x * s_w`` (``Cast(Round(b / (s_x * s_w)))``, each step in float32, ties to even). Both become
  DequantizeLinear constants, so the group fuses to QLinearConv / QGemm with the runtime's integer bias, and
  where it does not fuse (int8 activations on x86) the float op sees the dequantized bias, not the file's.
  Exporters such as paddle2onnx leave the bias in float.
"""

from __future__ import annotations

import numpy as np

from simulator.execute import ort_kernels as K
from simulator.graph import Graph, Node, QuantParams, Tensor

F32 = np.float32
_WEIGHTED = ("Conv", "ConvTranspose", "Gemm")


def onnxruntime_rewrites(graph: Graph) -> Graph:
    """``graph`` as onnxruntime's optimizer leaves it for execution, where that changes values (module doc)."""
    return quantize_weights_and_biases(graph)


def _scalar_dq(graph: Graph, name: str) -> np.float32 | None:
    """The scale of the DequantizeLinear node producing ``name`` if it is a constant scalar (or [1]), else None."""
    producer = graph.producers.get(name)
    if producer is None or producer.op_type != "DequantizeLinear":
        return None
    scale = graph.tensors.get(producer.inputs[1])
    if scale is None or not scale.constant or np.asarray(scale.data).size != 1 or len(scale.shape) > 1:
        return None
    return F32(np.asarray(scale.data).reshape(()))


def _unbranched_to_quantize(graph: Graph, node: Node) -> bool:
    """Whether ``node``'s one output reaches a QuantizeLinear through single-reader edges and Relu / Clip only."""
    current = node
    while True:
        if len([o for o in current.outputs if o]) != 1 or current.outputs[0] in graph.outputs:
            return False
        readers = graph.consumers.get(current.outputs[0], [])
        if len(readers) != 1:
            return False
        current = readers[0]
        if current.op_type == "QuantizeLinear":
            return True
        if current.op_type not in ("Relu", "Clip"):
            return False


def int8_weight_parameters(w: np.ndarray) -> tuple[np.float32, np.int8]:
    """(scale, zero point) of onnxruntime's ``GetQuantizationParameter<int8_t>``: the range of the values widened
    to include 0, ``scale = (max - min) / 255`` and ``zp = round_half_even(clamp(-128 - min / scale))``, in float32."""
    w = np.asarray(w, F32)
    lo = min(F32(w.min()), F32(0)) if w.size else F32(0)
    hi = max(F32(w.max()), F32(0)) if w.size else F32(0)
    scale = F32(1) if hi == lo else F32(F32(hi - lo) / F32(255))
    initial = F32(F32(-128) - F32(lo / scale))
    return scale, np.int8(np.rint(np.clip(initial, F32(-128), F32(127))))


def quantized_bias(bias: np.ndarray, x_scale: np.float32, w_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 bias, float32 bias scale) as onnxruntime's inserted ``Mul`` / ``Div`` / ``Round`` / ``Cast`` nodes
    compute them: ``scale = s_x * s_w`` and ``round_half_even(b / scale)`` in float32; a value outside int32 casts to
    INT32_MIN, as x86's cvttss2si does."""
    scale = (F32(x_scale) * np.asarray(w_scale, F32)).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rounded = np.rint((np.asarray(bias, F32) / scale).astype(F32)).astype(np.float64)
    ok = np.isfinite(rounded) & (rounded >= -(2.0**31)) & (rounded < 2.0**31)
    return np.where(ok, rounded, -(2.0**31)).astype(np.int32), scale


def _quantized_constant(name: str, q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None):
    """A folded DequantizeLinear constant: float32 values ``float(q - zp) * scale`` carrying its integers."""
    values = K.dequantize_linear(q, scale, zero_point, axis)
    quant = QuantParams(
        bits=8 * q.dtype.itemsize,
        scale=np.asarray(scale, F32).reshape(-1 if axis is not None else ()),
        zero_point=np.asarray(zero_point).astype(np.int64).reshape(-1 if axis is not None else ()),
        symmetric=not np.any(zero_point),
        axis=axis,
        signed=bool(np.issubdtype(q.dtype, np.signedinteger)),
        integers=q,
    )
    return Tensor.from_array(name, values, quant=quant)


def quantize_weights_and_biases(graph: Graph) -> Graph:
    """onnxruntime's WeightBiasQuantization (module doc) on ``graph``; the graph itself when nothing applies."""
    tensors = dict(graph.tensors)
    replaced: dict[str, Node] = {}
    for node in graph.order:
        if node.op_type not in _WEIGHTED or len(node.inputs) < 2:
            continue
        x_scale = _scalar_dq(graph, node.inputs[0])
        if x_scale is None or not _unbranched_to_quantize(graph, node):
            continue
        w = graph.tensors.get(node.inputs[1])
        if w is None or not w.constant or (w.quant is None and w.dtype != "float32"):
            continue
        b_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
        b = graph.tensors.get(b_name) if b_name else None
        if b is not None and (not b.constant or b.quant is not None or len(b.shape) != 1 or b.dtype != "float32"):
            continue  # a bias that is no float initializer: the runtime leaves the whole node alone
        if w.quant is not None and b is None:
            continue
        inputs = list(node.inputs)
        if w.quant is None:
            scale, zp = int8_weight_parameters(w.data)
            q = K.quantize_linear(w.data, scale, zp, np.int8)
            inputs[1] = f"{node.name}_weight_dq"
            tensors[inputs[1]] = _quantized_constant(inputs[1], q, scale, zp, None)
            w_scale = np.asarray(scale)
        else:
            w_scale = np.asarray(w.quant.scale, F32)
            if w_scale.size != 1:
                expected = 1 if node.op_type == "Gemm" and not node.attr("transB", 0) else 0
                if w_scale.ndim != 1 or w_scale.size != b.shape[0] or w.quant.axis != expected:
                    continue
        if b is not None:
            q, scale = quantized_bias(b.data, x_scale, w_scale)
            inputs[2] = f"{node.name}_bias_dq"
            axis = 0 if scale.size > 1 else None
            tensors[inputs[2]] = _quantized_constant(inputs[2], q, scale, np.zeros(scale.shape, np.int32), axis)
        replaced[node.name] = Node(node.name, node.op_type, inputs, list(node.outputs), dict(node.attrs))
    if not replaced:
        return graph
    return graph.replace(nodes=[replaced.get(n.name, n) for n in graph.nodes], tensors=tensors)
