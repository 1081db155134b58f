"""Write an edgesim-quantized graph as a QDQ ONNX model that onnxruntime loads and runs (meant to live in
simulator/exporters/qdq.py once setup.cfg lists that package).

The quantize pass leaves weights fake-quantized (float values on the integer grid) with their QuantParams,
biases at int32 with scale ``s_in * s_w``, and QuantParams on the activation tensors it calibrated. The QDQ
form stores each quantized weight as its integers plus a DequantizeLinear (per-channel along the pass's axis),
and follows each quantized activation with QuantizeLinear -> DequantizeLinear, so that onnxruntime's graph
optimizer fuses the groups into its integer kernels (QLinearConv, QGemm, QLinearAdd, ...).

Signed 8-bit activations are written as uint8 with the zero point moved up by 128 by default: the real values
are identical, and uint8 activations with int8 weights are the combination onnxruntime fuses on every CPU
(it may leave int8 x int8 groups in float on x86). ``activation_dtype="int8"`` keeps them signed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from simulator.errors import EdgesimError
from simulator.graph import Graph, QuantParams, Tensor

_SUFFIX_FLOAT, _SUFFIX_Q = "__float", "__quantized"


def _integers(t: Tensor) -> np.ndarray:
    """The stored integers of a quantized constant (its values are on the quantization grid)."""
    q = t.quant
    assert q is not None
    values = np.asarray(t.data, np.float64)
    scale, zp = q.broadcast(values.ndim)
    ints = np.clip(np.rint(values / scale) + zp, q.qmin, q.qmax)
    if q.bits <= 8:
        dtype = np.int8 if q.signed else np.uint8
    elif q.bits <= 32 and q.signed:
        dtype = np.int32
    else:
        raise EdgesimError(f"weight {t.name!r} is quantized to {q.bits} bits, which a QDQ ONNX model cannot store")
    return ints.astype(dtype)


def _activation_params(t: Tensor, activation_dtype: str) -> tuple[np.ndarray, np.ndarray]:
    q = t.quant
    assert q is not None
    if q.bits != 8 or q.per_channel:
        raise EdgesimError(
            f"activation {t.name!r} is quantized to {q.bits} bits{' per channel' if q.per_channel else ''}; "
            "the QDQ export writes 8-bit per-tensor activations only"
        )
    scale = np.asarray(q.scale, np.float32).reshape(())
    zp = int(np.asarray(q.zero_point).reshape(()))
    if q.signed and activation_dtype == "uint8":
        return scale, np.array(zp + 128, np.uint8)
    if q.signed:
        return scale, np.array(zp, np.int8)
    return scale, np.array(zp, np.uint8)


def export_qdq(graph: Graph, *, opset: int = 17, activation_dtype: str = "uint8") -> onnx.ModelProto:
    """The QDQ ONNX model of a quantized graph (see the module docstring)."""
    if activation_dtype not in ("uint8", "int8"):
        raise EdgesimError(f"activation_dtype must be uint8 or int8, got {activation_dtype!r}")
    nodes: list[onnx.NodeProto] = []
    inits: dict[str, onnx.TensorProto] = {}
    rename: dict[str, str] = {}  # graph inputs read through their Q -> DQ pair

    def init(name: str, array: np.ndarray) -> str:
        if name not in inits:
            array = np.asarray(array)  # (np.ascontiguousarray would turn a 0-d scale into shape [1])
            inits[name] = numpy_helper.from_array(array if array.flags.c_contiguous else array.copy(), name)
        return name

    def qdq(source: str, target: str, t: Tensor) -> None:
        scale, zp = _activation_params(t, activation_dtype)
        s, z = init(f"{t.name}_scale", scale), init(f"{t.name}_zero_point", zp)
        q_out = f"{t.name}{_SUFFIX_Q}"
        nodes.append(helper.make_node("QuantizeLinear", [source, s, z], [q_out], name=f"{t.name}_QuantizeLinear"))
        nodes.append(helper.make_node("DequantizeLinear", [q_out, s, z], [target], name=f"{t.name}_DequantizeLinear"))

    def constant(name: str) -> str:
        t = graph.tensors[name]
        if t.quant is None:
            return init(name, np.asarray(t.data))
        dq = f"{name}_DequantizeLinear_Output"
        if dq in inits or any(dq in n.output for n in nodes):
            return dq
        q: QuantParams = t.quant
        ints = init(f"{name}_quantized", _integers(t))
        scale = np.asarray(q.scale, np.float32)
        zp = np.asarray(q.zero_point).astype(numpy_helper.to_array(inits[ints]).dtype)
        if q.axis is None:
            scale, zp = scale.reshape(()), zp.reshape(())
        attrs = {} if q.axis is None else {"axis": int(q.axis)}
        s, z = init(f"{name}_scale", scale), init(f"{name}_zero_point", zp)
        nodes.append(helper.make_node("DequantizeLinear", [ints, s, z], [dq], name=f"{name}_DequantizeLinear", **attrs))
        return dq

    for name in graph.inputs:
        t = graph.tensors[name]
        if t.quant is not None:
            rename[name] = f"{name}_DequantizeLinear_Output"
            qdq(name, rename[name], t)
    for node in graph.order:
        if "activation" in node.attrs:
            raise EdgesimError(
                f"node {node.name!r} has a fused activation, which ONNX cannot express; export the unfused graph"
            )
        inputs = []
        for name in node.inputs:
            t = graph.tensors.get(name) if name else None
            if t is not None and t.constant:
                inputs.append(constant(name))
            else:
                inputs.append(rename.get(name, name))
        outputs = []
        quantized = []
        for name in node.outputs:
            t = graph.tensors.get(name) if name else None
            if t is not None and t.quant is not None:
                outputs.append(f"{name}{_SUFFIX_FLOAT}")
                quantized.append((outputs[-1], name, t))
            else:
                outputs.append(name)
        attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v for k, v in node.attrs.items()}
        nodes.append(helper.make_node(node.op_type, inputs, outputs, name=node.name, **attrs))
        for source, target, t in quantized:
            qdq(source, target, t)

    def info(name: str) -> onnx.ValueInfoProto:
        t = graph.tensors[name]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), t.shape)

    for name in graph.outputs:  # an output that is a constant
        if graph.tensors[name].constant:
            init(name, np.asarray(graph.tensors[name].data))
    model = helper.make_model(
        helper.make_graph(
            nodes, graph.name, [info(n) for n in graph.inputs], [info(n) for n in graph.outputs], list(inits.values())
        ),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    onnx.checker.check_model(model)
    return model


def write_qdq(graph: Graph, path: Path, **options) -> Path:
    """Write :func:`export_qdq`'s model to ``path`` atomically."""
    from simulator.output import write_bytes

    path = Path(path)
    write_bytes(export_qdq(graph, **options).SerializeToString(), str(path))
    return path
