"""onnxruntime's value-changing graph rewrites (``ort_graph``) against onnxruntime itself, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from simulator.execute.ort_exec import run_ort  # noqa: E402
from simulator.execute.ort_graph import int8_weight_parameters, quantized_bias  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from tests.helpers import make_model, tensor_info  # noqa: E402

F32 = np.float32
_HW = 24


def _conv_model(signed: bool, per_channel: bool, tail: str, float_weight: bool = False) -> onnx.ModelProto:
    """Q -> DQ -> Conv(int8 DQ weight or float weight, float32 bias) -> [Relu ->] Q -> DQ, or the Conv as the float
    output (``tail`` "q", "relu-q", "float"). The output scale is a few bias steps (s_x s_w) wide, so that rounding
    the bias to int32 moves many outputs across a rounding boundary."""
    rng = np.random.default_rng(11)
    act = np.int8 if signed else np.uint8
    c = 8
    w = rng.integers(-8, 9, (c, 3, 3, 3)).astype(np.int8)
    ws = (10 ** rng.uniform(-2.6, -2.2, c)).astype(F32) if per_channel else F32(0.004)
    xs = F32(0.02)
    inits = {
        "xs": xs, "xz": act(0 if signed else 128), "w": w, "ws": ws, "wz": np.zeros(c if per_channel else (), np.int8),
        "b": (rng.standard_normal(c) * 0.05).astype(F32), "ys": F32(0.0008), "yz": act(0 if signed else 128),
        "wf": (rng.standard_normal((c, 3, 3, 3)) * 0.05).astype(F32),
    }  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wf" if float_weight else "wd", "b"], ["c"], pads=[1, 1, 1, 1]),
    ]
    if tail == "float":
        nodes.append(helper.make_node("Identity", ["c"], ["y"]))
        outputs = [tensor_info("y", [1, c, _HW, _HW])]
    else:
        if tail == "relu-q":
            nodes.append(helper.make_node("Relu", ["c"], ["r"]))
        nodes += [
            helper.make_node("QuantizeLinear", ["r" if tail == "relu-q" else "c", "ys", "yz"], ["y"]),
        ]
        outputs = [tensor_info("y", [1, c, _HW, _HW], TensorProto.INT8 if signed else TensorProto.UINT8)]
    if float_weight:
        del inits["w"], inits["ws"], inits["wz"]
        nodes = [n for n in nodes if n.output[0] != "wd"]
    return make_model(nodes, [tensor_info("x", [1, 3, _HW, _HW])], outputs, inits, opset=13)


def _assert_equal_to_onnxruntime(model: onnx.ModelProto, tmp_path, seeds=range(3)) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = load_onnx(path)
    for seed in seeds:
        feeds = {"x": np.random.default_rng(seed).standard_normal((1, 3, _HW, _HW)).astype(F32)}
        got, want = run_ort(graph, feeds)["y"], session.run(None, feeds)[0]
        assert got.dtype == want.dtype
        diff = int(np.count_nonzero(got != want))
        assert diff == 0, f"seed {seed}: {diff} of {want.size} values differ from onnxruntime"


@pytest.mark.parametrize("tail", ["q", "relu-q", "float"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
def test_float_bias_is_quantized_as_onnxruntime_does(tmp_path, signed, per_channel, tail):
    """A QDQ Conv with a float32 bias (as paddle2onnx writes it): onnxruntime quantizes the bias to int32 at s_x s_w
    and fuses the group (uint8), or runs the float Conv on the dequantized int32 bias (int8 on x86); with a float
    output it leaves the bias alone. Before the rewrite the ort mode kept the float bias: 1 LSB off on ~1 % of
    these outputs."""
    _assert_equal_to_onnxruntime(_conv_model(signed, per_channel, tail), tmp_path)


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
def test_float_weight_is_quantized_as_onnxruntime_does(tmp_path, signed):
    """A float32 weight in a QDQ group becomes int8 with onnxruntime's own min/max parameters."""
    _assert_equal_to_onnxruntime(_conv_model(signed, False, "q", float_weight=True), tmp_path)


def test_quantized_bias_rounds_each_step_in_float32():
    # 0.5 and 1.5 steps: ties to even; 2.5 steps of a scale whose product rounds in float32
    x_scale, w_scale = F32(0.5), np.array([0.25, 0.25, 0.25], F32)
    q, scale = quantized_bias(np.array([0.0625, 0.1875, -0.3125], F32), x_scale, w_scale)
    assert scale.dtype == F32 and np.array_equal(scale, [0.125] * 3)
    assert q.tolist() == [0, 2, -2]
    q, scale = quantized_bias(np.array([1e9], F32), F32(1e-3), F32(1e-3))
    assert q.tolist() == [-(2**31)]  # outside int32: the x86 conversion's indefinite value


def test_int8_weight_parameters_by_hand():
    scale, zp = int8_weight_parameters(np.array([-1.0, 0.5], F32))
    assert scale == F32(F32(1.5) / F32(255)) and zp == np.int8(42)  # -128 + 1 / (1.5 / 255) = 42
    scale, zp = int8_weight_parameters(np.array([0.25, 2.0], F32))  # range widened to include 0
    assert scale == F32(F32(2.0) / F32(255)) and zp == np.int8(-128)
    assert int8_weight_parameters(np.zeros(3, F32)) == (F32(1), np.int8(-128))


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
def test_gemm_float_bias_is_quantized_as_onnxruntime_does(tmp_path, signed, per_channel):
    """The same rewrite on a Gemm (transB = 1: per-channel weights along axis 0), fused to QGemm."""
    rng = np.random.default_rng(12)
    act = np.int8 if signed else np.uint8
    n, k = 16, 48
    inits = {
        "xs": F32(0.02), "xz": act(0 if signed else 128), "w": rng.integers(-8, 9, (n, k)).astype(np.int8),
        "ws": (10 ** rng.uniform(-2.6, -2.2, n)).astype(F32) if per_channel else F32(0.004),
        "wz": np.zeros(n if per_channel else (), np.int8), "b": (rng.standard_normal(n) * 0.05).astype(F32),
        "ys": F32(0.0008), "yz": act(0 if signed else 128),
    }  # fmt: skip
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Gemm", ["xd", "wd", "b"], ["g"], transB=1),
        helper.make_node("QuantizeLinear", ["g", "ys", "yz"], ["y"]),
    ]
    elem = TensorProto.INT8 if signed else TensorProto.UINT8
    model = make_model(nodes, [tensor_info("x", [64, k])], [tensor_info("y", [64, n], elem)], inits, opset=13)
    path = tmp_path / "gemm.onnx"
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = load_onnx(path)
    for seed in range(3):
        feeds = {"x": np.random.default_rng(seed).standard_normal((64, k)).astype(F32)}
        got, want = run_ort(graph, feeds)["y"], session.run(None, feeds)[0]
        assert np.array_equal(got, want), f"seed {seed}: {int(np.count_nonzero(got != want))} values differ"
