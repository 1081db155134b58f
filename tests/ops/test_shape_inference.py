"""Shape inference of every registered op, checked against onnx's own (C++) shape inference, and the float
kernels used for constant folding, checked against onnxruntime (onnx's reference evaluator has an LRN bug:
it loops over the batch instead of the channels)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper

from simulator.importers.onnx_import import load_onnx, onnx_to_graph
from simulator.ops import get_op, registered_ops
from simulator.ops.registry import OpDef
from simulator.summary import count
from tests.helpers import make_model, tensor_info

F = np.float32
I64 = np.int64


def w(*shape):
    return np.random.default_rng(len(shape)).standard_normal(shape).astype(F)


# (id, op, input shape(s) of activations, constant inputs {name: array}, attrs, opset)
CASES = [
    ("conv-basic", "Conv", [[1, 3, 32, 32]], {"w": w(8, 3, 3, 3)}, {}, 17),
    ("conv-pads-stride", "Conv", [[1, 3, 32, 31]], {"w": w(8, 3, 5, 3)}, {"pads": [2, 1, 1, 0], "strides": [2, 3]}, 17),
    ("conv-dilated", "Conv", [[2, 4, 20, 20]], {"w": w(6, 4, 3, 3)}, {"dilations": [2, 3], "pads": [1, 1, 1, 1]}, 17),
    ("conv-groups", "Conv", [[1, 8, 10, 10]], {"w": w(12, 2, 3, 3)}, {"group": 4}, 17),
    ("conv-depthwise", "Conv", [[1, 16, 15, 15]], {"w": w(32, 1, 3, 3)}, {"group": 16, "strides": [2, 2]}, 17),
    (
        "conv-same-upper",
        "Conv",
        [[1, 3, 17, 17]],
        {"w": w(4, 3, 4, 4)},
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        17,
    ),
    (
        "conv-same-lower",
        "Conv",
        [[1, 3, 16, 9]],
        {"w": w(4, 3, 3, 2)},
        {"auto_pad": "SAME_LOWER", "strides": [3, 2]},
        17,
    ),
    ("conv-valid", "Conv", [[1, 3, 16, 16]], {"w": w(4, 3, 3, 3)}, {"auto_pad": "VALID", "strides": [2, 2]}, 17),
    ("conv1d", "Conv", [[1, 3, 100]], {"w": w(4, 3, 7)}, {"strides": [3]}, 17),
    (
        "convtranspose",
        "ConvTranspose",
        [[1, 8, 7, 7]],
        {"w": w(8, 4, 3, 3)},
        {"strides": [2, 2], "pads": [1, 1, 1, 1]},
        17,
    ),
    (
        "convtranspose-outpad-groups",
        "ConvTranspose",
        [[1, 8, 5, 6]],
        {"w": w(8, 2, 4, 4)},
        {"strides": [2, 2], "output_padding": [1, 1], "group": 2},
        17,
    ),
    ("gemm", "Gemm", [[4, 7]], {"b": w(5, 7), "c": w(5)}, {"transB": 1}, 17),
    ("gemm-transA", "Gemm", [[7, 4]], {"b": w(7, 5)}, {"transA": 1}, 17),
    ("matmul-batched", "MatMul", [[2, 3, 4, 5], [3, 5, 6]], {}, {}, 17),
    ("matmul-vector", "MatMul", [[5], [2, 5, 6]], {}, {}, 17),
    ("matmul-const", "MatMul", [[1, 9, 16]], {"b": w(16, 8)}, {}, 17),
    ("maxpool", "MaxPool", [[1, 4, 32, 32]], {}, {"kernel_shape": [3, 3], "strides": [2, 2]}, 17),
    ("maxpool-ceil", "MaxPool", [[1, 4, 32, 32]], {}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 17),
    (
        "maxpool-ceil-pad",
        "MaxPool",
        [[1, 4, 13, 13]],
        {},
        {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [0, 0, 1, 1]},
        17,
    ),
    (
        "avgpool-same",
        "AveragePool",
        [[1, 4, 9, 9]],
        {},
        {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
        17,
    ),
    ("avgpool-dilated", "MaxPool", [[1, 2, 12, 12]], {}, {"kernel_shape": [2, 2], "dilations": [2, 2]}, 17),
    ("globalavg", "GlobalAveragePool", [[2, 7, 5, 3]], {}, {}, 17),
    ("globalmax", "GlobalMaxPool", [[2, 7, 5, 3]], {}, {}, 17),
    ("reducemean-attr", "ReduceMean", [[2, 3, 4, 5]], {}, {"axes": [2, 3], "keepdims": 0}, 13),
    ("reducemean-input", "ReduceMean", [[2, 3, 4, 5]], {"axes": np.array([-1], I64)}, {}, 18),
    ("add-broadcast", "Add", [[2, 1, 4], [3, 1]], {}, {}, 17),
    ("sub", "Sub", [[3, 4]], {"c": w(4)}, {}, 17),
    ("mul", "Mul", [[1, 8, 4, 4]], {"c": w(8, 1, 1)}, {}, 17),
    ("div", "Div", [[5, 6]], {"c": w(1)}, {}, 17),
    ("sum", "Sum", [[2, 3], [3], [1, 3]], {}, {}, 17),
    ("relu", "Relu", [[2, 3]], {}, {}, 17),
    ("clip", "Clip", [[2, 3]], {"lo": np.array(0, F), "hi": np.array(6, F)}, {}, 17),
    ("clip-attr", "Clip", [[2, 3]], {}, {"min": 0.0, "max": 6.0}, 6),
    ("leakyrelu", "LeakyRelu", [[2, 3]], {}, {"alpha": 0.2}, 17),
    ("sigmoid", "Sigmoid", [[2, 3]], {}, {}, 17),
    ("hardsigmoid", "HardSigmoid", [[2, 3]], {}, {}, 17),
    ("hardswish", "HardSwish", [[2, 3]], {}, {}, 17),
    ("tanh", "Tanh", [[2, 3]], {}, {}, 17),
    ("softmax", "Softmax", [[2, 3]], {}, {"axis": -1}, 17),
    ("batchnorm", "BatchNormalization", [[1, 3, 4, 4]], {"s": w(3), "b": w(3), "m": w(3), "v": np.ones(3, F)}, {}, 15),
    ("lrn", "LRN", [[1, 6, 4, 4]], {}, {"size": 3}, 17),
    ("concat", "Concat", [[1, 3, 4], [1, 5, 4]], {}, {"axis": 1}, 17),
    ("reshape", "Reshape", [[2, 3, 4]], {"s": np.array([0, -1], I64)}, {}, 17),
    ("flatten", "Flatten", [[2, 3, 4, 5]], {}, {"axis": 2}, 17),
    ("transpose", "Transpose", [[2, 3, 4]], {}, {"perm": [2, 0, 1]}, 17),
    ("transpose-default", "Transpose", [[2, 3, 4]], {}, {}, 17),
    ("squeeze", "Squeeze", [[1, 3, 1, 4]], {"a": np.array([0, 2], I64)}, {}, 17),
    ("squeeze-all", "Squeeze", [[1, 3, 1, 4]], {}, {}, 17),
    ("squeeze-attr", "Squeeze", [[1, 3, 1, 4]], {}, {"axes": [2]}, 11),
    ("unsqueeze", "Unsqueeze", [[3, 4]], {"a": np.array([0, 3], I64)}, {}, 17),
    ("pad", "Pad", [[1, 3, 4, 4]], {"p": np.array([0, 0, 1, 2, 0, 0, 3, 4], I64)}, {}, 17),
    ("pad-attr", "Pad", [[1, 3, 4, 4]], {}, {"pads": [0, 0, 1, 1, 0, 0, 1, 1]}, 10),
    ("resize-scales", "Resize", [[1, 3, 5, 7]], {"roi": np.array([], F), "sc": np.array([1, 1, 2, 1.5], F)}, {}, 17),
    (
        "resize-sizes",
        "Resize",
        [[1, 3, 5, 7]],
        {"roi": np.array([], F), "sc": np.array([], F), "sz": np.array([1, 3, 10, 3], I64)},
        {"mode": "linear"},
        17,
    ),
    (
        "slice",
        "Slice",
        [[10, 20, 30]],
        {
            "st": np.array([1, -5], I64),
            "en": np.array([1000, -1], I64),
            "ax": np.array([0, 2], I64),
            "sp": np.array([3, 1], I64),
        },
        {},
        17,
    ),
    (
        "slice-negative-step",
        "Slice",
        [[10, 8]],
        {"st": np.array([-1], I64), "en": np.array([-100], I64), "ax": np.array([1], I64), "sp": np.array([-2], I64)},
        {},
        17,
    ),
    ("gather", "Gather", [[5, 6, 7]], {"i": np.array([[0, 2], [4, 1]], I64)}, {"axis": 1}, 17),
    ("gather-embedding", "Gather", [[2, 3]], {}, {}, 17),
    ("identity", "Identity", [[2, 3]], {}, {}, 17),
    ("dropout", "Dropout", [[2, 3]], {}, {}, 17),
    ("cast", "Cast", [[2, 3]], {}, {"to": onnx.TensorProto.INT32}, 17),
    ("expand", "Expand", [[3, 1]], {"s": np.array([2, 3, 4], I64)}, {}, 17),
    ("pow-square", "Pow", [[2, 3, 4]], {"e": np.array(2.0, F)}, {}, 17),
    ("pow-general", "Pow", [[2, 3], [2, 3]], {}, {}, 17),
    ("min", "Min", [[2, 3], [3]], {}, {}, 17),
    ("max", "Max", [[2, 3], [1, 3], [2, 1]], {}, {}, 17),
    ("mod-fmod", "Mod", [[3, 4]], {"c": np.array([1.5], F)}, {"fmod": 1}, 17),
    ("neg", "Neg", [[2, 3]], {}, {}, 17),
    ("abs", "Abs", [[2, 3]], {}, {}, 17),
    ("sign", "Sign", [[2, 3]], {}, {}, 17),
    ("floor", "Floor", [[2, 3]], {}, {}, 17),
    ("ceil", "Ceil", [[2, 3]], {}, {}, 17),
    ("round", "Round", [[2, 3]], {}, {}, 17),
    ("reciprocal", "Reciprocal", [[2, 3]], {}, {}, 17),
    ("exp", "Exp", [[2, 3]], {}, {}, 17),
    ("log", "Log", [[2, 3]], {}, {}, 17),
    ("sqrt", "Sqrt", [[2, 3]], {}, {}, 17),
    ("sin", "Sin", [[2, 3]], {}, {}, 17),
    ("cos", "Cos", [[2, 3]], {}, {}, 17),
    ("erf", "Erf", [[4, 5]], {}, {}, 17),
    ("gelu", "Gelu", [[4, 5]], {}, {}, 20),
    ("gelu-tanh", "Gelu", [[4, 5]], {}, {"approximate": "tanh"}, 20),
    ("softplus", "Softplus", [[2, 3]], {}, {}, 17),
    ("mish", "Mish", [[2, 3]], {}, {}, 18),
    ("elu", "Elu", [[2, 3]], {}, {"alpha": 0.7}, 17),
    ("celu", "Celu", [[2, 3]], {}, {"alpha": 1.3}, 17),
    ("selu", "Selu", [[2, 3]], {}, {}, 17),
    ("softsign", "Softsign", [[2, 3]], {}, {}, 17),
    ("thresholdedrelu", "ThresholdedRelu", [[2, 3]], {}, {"alpha": 0.3}, 17),
    ("prelu", "PRelu", [[1, 4, 3, 3]], {"s": w(4, 1, 1)}, {}, 17),
    ("softmax-axis1", "Softmax", [[2, 3, 4]], {}, {"axis": 1}, 17),
    ("softmax-legacy", "Softmax", [[2, 3, 4]], {}, {"axis": 1}, 11),
    ("logsoftmax", "LogSoftmax", [[2, 3, 4]], {}, {"axis": 0}, 17),
    ("layernorm", "LayerNormalization", [[2, 5, 8]], {"s": w(8), "b": w(8)}, {"epsilon": 1e-3}, 17),
    ("layernorm-axis", "LayerNormalization", [[2, 5, 8]], {"s": w(5, 8)}, {"axis": 1}, 17),
    ("instancenorm", "InstanceNormalization", [[2, 3, 5, 4]], {"s": w(3), "b": w(3)}, {}, 17),
    ("einsum-attention", "Einsum", [[2, 4, 5, 8], [2, 4, 6, 8]], {}, {"equation": "bhqd,bhkd->bhqk"}, 17),
    ("einsum-ellipsis", "Einsum", [[3, 2, 5]], {"w": w(5, 7)}, {"equation": "...i,ij->...j"}, 17),
    ("einsum-transpose", "Einsum", [[3, 4]], {}, {"equation": "ij->ji"}, 17),
    ("einsum-implicit", "Einsum", [[3, 4], [4, 5]], {}, {"equation": "ij,jk"}, 17),
    ("reducesum", "ReduceSum", [[2, 3, 4]], {"a": np.array([1], I64)}, {}, 17),
    ("reducemax", "ReduceMax", [[2, 3, 4]], {}, {"axes": [0, 2]}, 17),
    ("reducemin", "ReduceMin", [[2, 3, 4]], {}, {"keepdims": 0}, 17),
    ("reduceprod", "ReduceProd", [[2, 3, 4]], {}, {"axes": [-1]}, 17),
    ("reducesumsquare", "ReduceSumSquare", [[2, 3, 4]], {}, {"axes": [1]}, 17),
    ("reducel1", "ReduceL1", [[2, 3, 4]], {}, {"axes": [1]}, 17),
    ("reducel2", "ReduceL2", [[2, 3, 4]], {}, {"axes": [1]}, 17),
    ("reducelogsum", "ReduceLogSum", [[2, 3, 4]], {}, {"axes": [1]}, 17),
    ("reducelogsumexp", "ReduceLogSumExp", [[2, 3, 4]], {}, {"axes": [1]}, 17),
    ("argmax", "ArgMax", [[2, 3, 4]], {}, {"axis": 1}, 17),
    ("argmin-last", "ArgMin", [[2, 3, 4]], {}, {"axis": -1, "keepdims": 0, "select_last_index": 1}, 17),
    ("equal", "Equal", [[2, 3], [3]], {}, {}, 17),
    ("less", "Less", [[2, 3]], {"c": w(3)}, {}, 17),
    ("lessorequal", "LessOrEqual", [[2, 3], [2, 1]], {}, {}, 17),
    ("greater", "Greater", [[2, 3], [3]], {}, {}, 17),
    ("greaterorequal", "GreaterOrEqual", [[2, 3], [3]], {}, {}, 17),
    ("and", "And", [[2, 3], [3]], {}, {}, 17),
    ("or", "Or", [[2, 3], [2, 1]], {}, {}, 17),
    ("xor", "Xor", [[2, 3], [2, 3]], {}, {}, 17),
    ("not", "Not", [[2, 3]], {}, {}, 17),
    ("where", "Where", [[2, 3], [3], [2, 1]], {}, {}, 17),
    ("tile", "Tile", [[2, 3]], {"r": np.array([2, 3], I64)}, {}, 17),
    ("split", "Split", [[4, 6]], {"sp": np.array([6], I64)}, {"axis": 1}, 17),
    ("size", "Size", [[2, 3, 4]], {}, {}, 17),
    ("gatherelements", "GatherElements", [[3, 4]], {"i": np.array([[0, 2], [1, -1], [3, 0]], I64)}, {"axis": 1}, 17),
    ("depthtospace-dcr", "DepthToSpace", [[1, 8, 3, 4]], {}, {"blocksize": 2}, 17),
    ("depthtospace-crd", "DepthToSpace", [[2, 18, 2, 3]], {}, {"blocksize": 3, "mode": "CRD"}, 17),
    ("spacetodepth", "SpaceToDepth", [[1, 3, 4, 6]], {}, {"blocksize": 2}, 17),
    ("upsample-nearest", "Upsample", [[1, 2, 3, 4]], {"sc": np.array([1, 1, 2, 3], F)}, {}, 9),
    ("upsample-linear", "Upsample", [[1, 2, 3, 4]], {"sc": np.array([1, 1, 2, 2], F)}, {"mode": "linear"}, 9),
    ("trilu-upper", "Trilu", [[2, 4, 5]], {"k": np.array(1, I64)}, {}, 17),
    ("trilu-lower", "Trilu", [[4, 5]], {}, {"upper": 0}, 17),
    ("gathernd", "GatherND", [[3, 4, 5]], {"i": np.array([[0, 1], [2, -1]], I64)}, {}, 17),
    ("gathernd-batch", "GatherND", [[2, 4, 5]], {"i": np.array([[[1], [3]], [[0], [2]]], I64)}, {"batch_dims": 1}, 17),
    ("scatternd", "ScatterND", [[4, 5], [2, 5]], {"i": np.array([[3], [1]], I64)}, {}, 17),
    ("onehot", "OneHot", [[2, 3]], {"d": np.array(5, I64), "v": np.array([0.5, 2.0], F)}, {"axis": 1}, 17),
    ("cumsum", "CumSum", [[3, 4]], {"a": np.array(1, I64)}, {}, 17),
    ("cumsum-exclusive-reverse", "CumSum", [[3, 4]], {"a": np.array(0, I64)}, {"exclusive": 1, "reverse": 1}, 17),
    ("groupnorm-18", "GroupNormalization", [[2, 6, 3, 3]], {"s": w(3), "b": w(3)}, {"num_groups": 3}, 18),
    ("groupnorm", "GroupNormalization", [[2, 6, 3, 3]], {"s": w(6), "b": w(6)}, {"num_groups": 3}, 21),
    ("lpnorm", "LpNormalization", [[3, 4]], {}, {"axis": 1, "p": 2}, 17),
    ("lpnorm-l1", "LpNormalization", [[3, 4]], {}, {"axis": 0, "p": 1}, 17),
    ("mean", "Mean", [[2, 3], [3], [2, 1]], {}, {}, 17),
    ("quantize", "QuantizeLinear", [[2, 3]], {"s": np.array(0.1, F), "z": np.array(3, np.uint8)}, {}, 13),
    ("dequantize", "DequantizeLinear", [[2, 3]], {"s": np.array(0.1, F), "z": np.array(3, np.uint8)}, {}, 13),
    ("pow", "Pow", [[2, 3, 4]], {"e": np.array(2.0, F)}, {}, 17),
    ("sqrt", "Sqrt", [[2, 3]], {}, {}, 17),
    ("equal", "Equal", [[2, 3], [1, 3]], {}, {}, 17),
    (
        "lstm",
        "LSTM",
        [[5, 2, 4]],
        {"w": w(2, 24, 4), "r": w(2, 24, 6)},
        {"hidden_size": 6, "direction": "bidirectional"},
        14,
    ),
    ("gru", "GRU", [[3, 1, 5]], {"w": w(1, 12, 5), "r": w(1, 12, 4)}, {"hidden_size": 4}, 14),
    ("rnn", "RNN", [[4, 3, 2]], {"w": w(1, 5, 2), "r": w(1, 5, 5)}, {"hidden_size": 5, "direction": "reverse"}, 14),
]

# gather-embedding: constant table, activation indices; dequantize: activation int input
_BOOL2 = [np.bool_, np.bool_]
_ACTIVATION_DTYPES = {
    "gather-embedding": [np.int64],
    "dequantize": [np.uint8],
    **{c: _BOOL2 for c in ("and", "or", "xor")},
    "not": [np.bool_],
    "where": [np.bool_, F, F],
    "onehot": [np.int64],
}
_CONSTANT_FIRST = {"gather-embedding": {"table": w(10, 4)}}


def _case_model(case):
    cid, op, shapes, consts, attrs, opset = case
    dtypes = _ACTIVATION_DTYPES.get(cid, [F] * len(shapes))
    act = [f"x{i}" for i in range(len(shapes))]
    first = list(_CONSTANT_FIRST.get(cid, {}))
    inputs = first + act + list(consts)
    if op == "Upsample":
        inputs = act + ["sc"]
    elif op == "ScatterND":
        inputs = [act[0], *consts, act[1]]
    elif op == "Resize" and "sc" in consts and "sz" not in consts:
        inputs = act + ["roi", "sc"]
    elif op == "Resize":
        inputs = act + ["roi", "sc", "sz"]
    node = helper.make_node(op, inputs, ["y"], name="node", **attrs)
    infos = [
        tensor_info(n, s, helper.np_dtype_to_tensor_dtype(np.dtype(d)))
        for n, s, d in zip(act, shapes, dtypes, strict=True)
    ]
    return make_model(
        [node], infos, [helper.make_empty_tensor_value_info("y")], {**_CONSTANT_FIRST.get(cid, {}), **consts}, opset
    )


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_shape_matches_onnx_shape_inference(case, save):
    model = _case_model(case)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    y = next(v for v in inferred.graph.output if v.name == "y")
    if not y.type.tensor_type.HasField("shape"):
        # onnx does not infer through every function op (GroupNormalization-21): onnxruntime's output decides
        pytest.skip(f"onnx's shape inference gives no shape for {case[1]}; its kernel case checks the shape")
    expected = tuple(d.dim_value for d in y.type.tensor_type.shape.dim)
    graph = load_onnx(save(model))
    assert graph.tensors["y"].shape == expected
    expected_dtype = helper.tensor_dtype_to_np_dtype(y.type.tensor_type.elem_type)
    assert graph.tensors["y"].dtype == np.dtype(expected_dtype).name


def test_every_registered_op_has_a_case():
    # Range folds (constant inputs only) and TopK has two outputs: tests/ops/test_kernels.py; If / Loop:
    # tests/ops/test_control_flow.py; Not, Size, Split (bool, folded, several outputs): test_math_logic.py,
    # test_kernels.py
    others = {"If", "Loop", "Not", "Size", "Split", "Range", "TopK"}
    covered = {c[1] for c in CASES} | {"Constant", "ConstantOfShape", "Shape", "QLinearConv", "QLinearMatMul"} | others
    assert set(registered_ops()) <= covered, set(registered_ops()) - covered


#: cases defined on positive inputs only
_POSITIVE = ("log", "sqrt", "pow-general", "reducelogsum")


def _random(rng, shape, dtype, positive=False):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.int64:
        return rng.integers(-4, 5, shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    return np.abs(x) + dtype(0.1) if positive else x


KERNEL_CASES = [c for c in CASES if get_op(c[1]).has_kernel and c[0] not in ("gather-embedding", "dequantize")]


@pytest.mark.parametrize("case", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_float_kernel_matches_onnxruntime(case):
    cid, op, shapes, consts, attrs, _ = case
    model = _case_model(case)
    rng = np.random.default_rng(7)
    dtypes = _ACTIVATION_DTYPES.get(cid, [F] * len(shapes))
    positive = cid in _POSITIVE
    feeds = {f"x{i}": _random(rng, s, d, positive) for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True))}
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)[0]
    node = onnx_to_graph(model, "k")[0].nodes[0]
    arrays = [feeds.get(n, consts.get(n)) for n in node.inputs]
    got = get_op(op).run(node, *arrays)[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_conv_macs_by_hand(save):
    # grouped, strided conv: pads 1, stride 2: (10 + 2 - 3) // 2 + 1 = 5
    model = _case_model(
        ("g", "Conv", [[1, 8, 10, 10]], {"w": w(12, 2, 3, 3)}, {"group": 4, "strides": [2, 2], "pads": [1] * 4}, 17)
    )
    layer = count(load_onnx(save(model))).layers[0]
    assert layer.outputs == [(1, 12, 5, 5)]
    assert layer.macs == 12 * 5 * 5 * (8 // 4) * 3 * 3
    assert layer.op_class == "conv"


def test_depthwise_is_its_own_cost_class(save):
    model = _case_model(CASES[4])
    layer = count(load_onnx(save(model))).layers[0]
    assert layer.op_class == "depthwise"
    # 16 channels, depth multiplier 2, 3x3 stride 2 without padding: (15 - 3) // 2 + 1 = 7
    assert layer.outputs == [(1, 32, 7, 7)]
    assert layer.macs == 32 * 7 * 7 * 3 * 3


def test_convtranspose_macs_by_hand(save):
    layer = count(load_onnx(save(_case_model(CASES[9])))).layers[0]
    # every input element (8x7x7) meets Cout*k*k = 4*3*3 weights
    assert layer.macs == 8 * 7 * 7 * 4 * 3 * 3


def test_registry_entries_declare_a_known_cost_class():
    from simulator.ops.registry import OP_CLASSES

    for name in registered_ops():
        op = get_op(name)
        assert isinstance(op, OpDef) and op.op_class in OP_CLASSES and op.op_type == name
        assert math.isfinite(op.min_inputs) and op.min_inputs <= op.max_inputs


def _qlinear_model(op):
    u8 = np.uint8
    q = {
        "xs": np.array(0.05, F), "xz": np.array(128, u8), "ws": np.array(0.02, F), "wz": np.array(0, np.int8),
        "ys": np.array(0.1, F), "yz": np.array(120, u8),
    }  # fmt: skip
    if op == "QLinearConv":
        q["w"] = np.random.default_rng(3).integers(-127, 128, (6, 2, 3, 3)).astype(np.int8)
        q["b"] = np.arange(6, dtype=np.int32)
        inputs, attrs, shape = (
            ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
            {"group": 2, "strides": [2, 2]},
            [1, 4, 9, 9],
        )
    else:
        q["w"] = np.random.default_rng(3).integers(-127, 128, (5, 7)).astype(np.int8)
        inputs, attrs, shape = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], {}, [2, 3, 5]
    node = helper.make_node(op, inputs, ["y"], **attrs)
    return make_model(
        [node], [tensor_info("x", shape, onnx.TensorProto.UINT8)], [helper.make_empty_tensor_value_info("y")], q, 13
    )


@pytest.mark.parametrize("op, macs", [("QLinearConv", 6 * 4 * 4 * 2 * 3 * 3), ("QLinearMatMul", 2 * 3 * 7 * 5)])
def test_qlinear_ops_match_onnx_shapes_and_count_macs(op, macs, save):
    model = _qlinear_model(op)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    y = inferred.graph.output[0].type.tensor_type
    layer = count(load_onnx(save(model))).layers[0]
    assert layer.outputs == [tuple(d.dim_value for d in y.shape.dim)]
    assert layer.macs == macs
    # the int8 weights (and int32 bias) are the parameters, at their own widths
    w_size = 6 * 2 * 3 * 3 if op == "QLinearConv" else 5 * 7
    assert layer.params == w_size + (6 if op == "QLinearConv" else 0)
    assert layer.weight_bytes == w_size + (4 * 6 if op == "QLinearConv" else 0)


def _layer(save, case):
    return count(load_onnx(save(_case_model(case)))).layers[0]


def test_einsum_product_counts_like_matmul(save):
    # bhqd,bhkd->bhqk: one MAC per (b, h, q, k, d)
    layer = _layer(save, next(c for c in CASES if c[0] == "einsum-attention"))
    assert layer.macs == 2 * 4 * 5 * 6 * 8 and layer.op_class == "attention" and layer.ops == 0
    layer = _layer(save, next(c for c in CASES if c[0] == "einsum-ellipsis"))
    assert layer.macs == 3 * 2 * 5 * 7 and layer.op_class == "matmul" and layer.params == 35
    layer = _layer(save, next(c for c in CASES if c[0] == "einsum-transpose"))
    assert layer.macs == 0 and layer.op_class == "elementwise"


def test_matmul_between_activations_is_attention(save):
    layer = _layer(save, next(c for c in CASES if c[0] == "matmul-batched"))
    assert layer.op_class == "attention" and layer.params == 0 and layer.macs == 2 * 3 * 4 * 6 * 5
    assert _layer(save, next(c for c in CASES if c[0] == "matmul-const")).op_class == "matmul"


def test_pow_by_a_small_integer_is_multiplication(save):
    square = _layer(save, next(c for c in CASES if c[0] == "pow-square"))
    assert square.op_class == "elementwise" and square.ops == 2 * 3 * 4
    general = _layer(save, next(c for c in CASES if c[0] == "pow-general"))
    assert general.op_class == "transcendental" and general.ops == 2 * 3


def test_transcendental_ops_cost_one_evaluation_per_element(save):
    for cid in ("exp", "log", "sqrt", "erf", "gelu", "softplus", "mish", "elu", "reducelogsumexp"):
        layer = _layer(save, next(c for c in CASES if c[0] == cid))
        assert layer.op_class == "transcendental", cid
    assert _layer(save, next(c for c in CASES if c[0] == "erf")).ops == 4 * 5
