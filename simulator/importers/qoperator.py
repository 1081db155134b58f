"""Loading QOperator ONNX models: onnxruntime's com.microsoft quantized ops (QLinearAdd, QGemm, QLinearSoftmax,
QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat, ...) that ``quantize_static`` writes with
``QuantFormat.QOperator``.

onnx's shape inference does not know these ops, so the shapes of their outputs are derived here, op by op, and
written into the model's value_info before the usual import; the ops stay unknown to the cost model (zero
cost, with a warning) but the ``ort`` executor runs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from simulator.graph import Graph, Shape
from simulator.importers.onnx_import import _shape_hints, check_onnx, onnx_to_graph, read_onnx

_MS = "com.microsoft"


def _pool_out(size: int, k: int, s: int, pad: int, ceil_mode: bool) -> int:
    span = size + pad - k
    return (-(-span // s) if ceil_mode else span // s) + 1


def _contrib_shape(node: onnx.NodeProto, shapes: dict[str, tuple[tuple[int, ...], int]]):
    """(shape, elem_type) of a com.microsoft node's first output, or None when its inputs are not known yet."""
    ins = [shapes.get(name) for name in node.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if not ins or ins[0] is None:
        return None
    shape, elem = ins[0]
    if op in ("QLinearAdd", "QLinearMul"):
        if len(ins) < 4 or ins[3] is None:
            return None
        return tuple(np.broadcast_shapes(shape, ins[3][0])), elem
    if op in ("QLinearSoftmax", "QLinearLeakyRelu", "QLinearSigmoid"):
        return shape, elem
    if op == "QLinearGlobalAveragePool":
        if attrs.get("channels_last", 0):
            return (shape[0], *([1] * (len(shape) - 2)), shape[-1]), elem
        return (shape[0], shape[1], *([1] * (len(shape) - 2))), elem
    if op == "QLinearAveragePool":
        kernel = list(attrs["kernel_shape"])
        rank = len(kernel)
        spatial = list(shape[2:]) if not attrs.get("channels_last", 0) else list(shape[1:-1])
        strides = list(attrs.get("strides", [1] * rank))
        pads = list(attrs.get("pads", [0] * (2 * rank)))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = [-(-spatial[i] // strides[i]) for i in range(rank)]
        elif auto_pad == "VALID":
            out = [-(-(spatial[i] - kernel[i] + 1) // strides[i]) for i in range(rank)]
        else:
            ceil_mode = bool(attrs.get("ceil_mode", 0))
            out = [
                _pool_out(spatial[i], kernel[i], strides[i], pads[i] + pads[i + rank], ceil_mode) for i in range(rank)
            ]
        if attrs.get("channels_last", 0):
            return (shape[0], *out, shape[-1]), elem
        return (shape[0], shape[1], *out), elem
    if op == "QGemm":
        if len(ins) < 4 or ins[3] is None:
            return None
        m = shape[1] if attrs.get("transA", 0) else shape[0]
        b_shape = ins[3][0]
        n = b_shape[0] if attrs.get("transB", 0) else b_shape[1]
        has_y = len(node.input) > 8 or (len(node.input) > 7 and node.input[7])
        return (m, n), (elem if has_y else onnx.TensorProto.FLOAT)
    if op == "QLinearConcat":
        parts = ins[2::3]
        if any(p is None for p in parts):
            return None
        axis = int(attrs["axis"]) % len(parts[0][0])
        out = list(parts[0][0])
        out[axis] = sum(p[0][axis] for p in parts)
        return tuple(out), parts[0][1]
    return None


def annotate_contrib_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose value_info gives the output shape of every com.microsoft node it can derive."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for _ in range(len(model.graph.node) + 1):
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes: dict[str, tuple[tuple[int, ...], int]] = {}
        for init in inferred.graph.initializer:
            shapes[init.name] = (tuple(int(d) for d in init.dims), init.data_type)
        for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
                shapes[vi.name] = (tuple(int(d.dim_value) for d in tt.shape.dim), tt.elem_type)
        added = False
        for node in model.graph.node:
            if node.domain != _MS or not node.output or node.output[0] in shapes:
                continue
            found = _contrib_shape(node, shapes)
            if found is not None:
                shape, elem = found
                model.graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem, list(shape)))
                shapes[node.output[0]] = found
                added = True
        if not added:
            break
    return model


def load_quantized_onnx(path: Path, input_shapes: dict[str, Shape] | None = None) -> Graph:
    """Like :func:`simulator.importers.onnx_import.load_onnx`, for QDQ and QOperator models alike: onnxruntime's
    contrib ops are kept (as unknown ops for the cost model) with their output shapes derived here."""
    from simulator.passes.fold_batchnorm import fold_batchnorm
    from simulator.passes.infer_shapes import infer_shapes

    model = annotate_contrib_shapes(read_onnx(Path(path)))
    graph, has_unknown = onnx_to_graph(model, Path(path).stem, input_shapes)
    hints = _shape_hints(model, input_shapes) if has_unknown else None
    graph = infer_shapes(graph, allow_unknown=has_unknown, hints=hints)
    check_onnx(model)
    return fold_batchnorm(graph)
