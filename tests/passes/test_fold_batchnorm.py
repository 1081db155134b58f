"""Folding batch norm and per-channel Mul / Add into the conv before it, against the weights onnxruntime's own
optimizer writes (ConvBNFusion, ConvMulFusion, ConvAddFusion) and its Conv output, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper  # noqa: E402

from simulator.execute import ort_kernels as K  # noqa: E402
from simulator.execute.float_exec import run_graph  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from tests.helpers import make_model, tensor_info  # noqa: E402

F32 = np.float32
_C, _HW = 8, 20


def _conv_bn(with_bias: bool, tail: tuple[str, ...] = ()) -> onnx.ModelProto:
    """Conv [bias] -> BatchNormalization (ResNet's stem: no conv bias) [-> Mul -> Add by per-channel constants]."""
    rng = np.random.default_rng(7)
    inits = {
        "w": (rng.standard_normal((_C, 3, 3, 3)) * 0.2).astype(F32),
        "gamma": rng.uniform(0.5, 1.5, _C).astype(F32), "beta": (rng.standard_normal(_C) * 0.1).astype(F32),
        "mean": (rng.standard_normal(_C) * 0.1).astype(F32), "var": rng.uniform(0.1, 2.0, _C).astype(F32),
        "m": rng.uniform(0.5, 2.0, (1, _C, 1, 1)).astype(F32), "a": (rng.standard_normal((1, _C, 1, 1))).astype(F32),
    }  # fmt: skip
    conv_inputs = ["x", "w"]
    if with_bias:
        inits["b"] = (rng.standard_normal(_C) * 0.1).astype(F32)
        conv_inputs.append("b")
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], epsilon=1e-3),
    ]
    last = "n"
    for op in tail:
        nodes.append(helper.make_node(op, [last, op.lower()[0]], [f"{last}_{op}"]))
        last = f"{last}_{op}"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    return make_model(nodes, [tensor_info("x", [1, 3, _HW, _HW])], [tensor_info("y", [1, _C, _HW, _HW])], inits)


def _onnxruntime_folded(model: onnx.ModelProto, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """The Conv weight and bias in the model onnxruntime's basic (level 1) optimizer writes."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    (conv,) = [n for n in optimized.graph.node if n.op_type == "Conv"]
    assert not [n for n in optimized.graph.node if n.op_type in ("BatchNormalization", "Mul", "Add")]
    inits = {t.name: numpy_helper.to_array(t) for t in optimized.graph.initializer}
    return inits[conv.input[1]], inits[conv.input[2]]


def _edgesim_folded(model: onnx.ModelProto, tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    graph = load_onnx(path)
    (conv,) = [n for n in graph.nodes if n.op_type == "Conv"]
    assert [n.op_type for n in graph.order] == ["Conv", "Relu"]
    return graph, graph.tensors[conv.inputs[1]].data, graph.tensors[conv.inputs[2]].data


@pytest.mark.parametrize("tail", [(), ("Mul", "Add")], ids=["bn", "bn-mul-add"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_folded_weights_are_onnxruntimes(tmp_path, with_bias, tail):
    model = _conv_bn(with_bias, tail)
    want_w, want_b = _onnxruntime_folded(model, tmp_path)
    _, w, b = _edgesim_folded(model, tmp_path)
    assert w.dtype == b.dtype == np.float32
    assert np.array_equal(w, want_w) and np.array_equal(b, want_b)


def _float64_fold(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    """The fold the pass used to compute: multiplier and offset in float64, rounded to float32 once."""
    p = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    m = p["gamma"] / np.sqrt(p["var"] + 1e-3)
    return (p["w"] * m[:, None, None, None]).astype(F32), (p["beta"] - p["mean"] * m).astype(F32)


def test_folded_conv_output_equals_onnxruntime(tmp_path):
    """ResNet's stem pattern (Conv without bias -> BN -> Relu) through onnxruntime with its optimizer on (one
    thread, no layout change): MLAS's float Conv on edgesim's folded weights gives onnxruntime's output bit for bit;
    the float64 fold moves the last bit of many outputs; edgesim's own float executor stays within float32 rounding."""
    model = _conv_bn(with_bias=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    graph, w, b = _edgesim_folded(model, tmp_path)
    old_w, old_b = _float64_fold(model)
    geometry = {"strides": [1, 1], "dilations": [1, 1], "pads_begin": [1, 1], "pads_end": [1, 1]}
    moved = 0
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 3, _HW, _HW)).astype(F32)
        want = session.run(None, {"x": x})[0]
        y, caveat = K.mlas_conv_float(x, w, b, **geometry)
        assert caveat is None
        assert np.array_equal(np.maximum(y, F32(0)), want)
        old, _ = K.mlas_conv_float(x, old_w, old_b, **geometry)
        moved += int(np.count_nonzero(np.maximum(old, F32(0)) != want))
        np.testing.assert_allclose(run_graph(graph, {"x": x})["y"], want, rtol=1e-5, atol=1e-6)
    assert moved > 0.05 * 3 * want.size  # what the float64 fold did: a sizeable share of outputs off by ulps
