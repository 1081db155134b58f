"""The ``ort`` mode against onnxruntime itself: zoo models quantized by onnxruntime's ``quantize_static`` (QDQ,
uint8 activations, int8 weights, per channel and per tensor) must give onnxruntime's outputs bit for bit, and
so must every intermediate quantized tensor."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")

from simulator.errors import EdgesimError  # noqa: E402
from simulator.execute import ort_kernels as K  # noqa: E402
from simulator.execute.ort_exec import run_ort  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from simulator.importers.qoperator import load_quantized_onnx  # noqa: E402
from tests.helpers import graph_to_onnx  # noqa: E402

MODELS = ["lenet-5", "resnet-8", "ds-cnn", "mobilenet-v1-0.25-vww", "mobilenet-v2"]
SEEDS = (0, 1, 2)
#: activation schemes: quantize_static's activation type and extra_options
_ACTIVATIONS = {
    "uint8": (quantization.QuantType.QUInt8, {}),
    "int8": (quantization.QuantType.QInt8, {}),
    "int8-symmetric": (quantization.QuantType.QInt8, {"ActivationSymmetric": True}),
}


class _Reader(quantization.CalibrationDataReader):
    """Deterministic calibration data: seeded standard-normal inputs."""

    def __init__(self, name: str, shape, count: int = 4, seed: int = 1234):
        rng = np.random.default_rng(seed)
        self._data = iter([{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self._data, None)


@pytest.fixture(scope="module")
def qdq_models(tmp_path_factory):
    """(model, per_channel) -> path of the QDQ model onnxruntime's quantizer wrote; built once per module."""
    root = tmp_path_factory.mktemp("ort_qdq")
    cache: dict = {}

    def get(name: str, per_channel: bool, fmt=None, activations: str = "uint8"):
        fmt = fmt or quantization.QuantFormat.QDQ
        key = (name, per_channel, fmt, activations)
        if key not in cache:
            graph = load_model(name)
            float_path = root / f"{name}.onnx"
            if not float_path.exists():
                onnx.save(graph_to_onnx(graph), str(float_path))
            out = root / f"{name}-{'pc' if per_channel else 'pt'}-{fmt.name}-{activations}.onnx"
            x = graph.inputs[0]
            calib_count = 2 if name == "mobilenet-v2" else 4
            act_type, extra = _ACTIVATIONS[activations]
            quantization.quantize_static(
                str(float_path), str(out), _Reader(x, graph.tensors[x].shape, calib_count),
                quant_format=fmt, per_channel=per_channel, activation_type=act_type,
                weight_type=quantization.QuantType.QInt8, extra_options=extra,
            )  # fmt: skip
            cache[key] = out
        return cache[key]

    return get


def _inputs(graph, seed: int) -> dict[str, np.ndarray]:
    name = graph.inputs[0]
    rng = np.random.default_rng(seed)
    # seed 2 drives activations into saturation as well
    return {name: (rng.standard_normal(graph.tensors[name].shape) * (1 + seed)).astype(np.float32)}


def _assert_outputs_match(graph, session, name: str) -> None:
    """The graph's outputs in the ort mode equal the session's, for every seed."""
    for seed in SEEDS:
        feeds = _inputs(graph, seed)
        got = run_ort(graph, feeds)
        for out, ref in zip(graph.outputs, session.run(None, feeds), strict=True):
            assert np.array_equal(got[out], ref), f"{name} seed {seed}: output {out} differs"


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("name", MODELS)
def test_qdq_zoo_model_bit_exact(qdq_models, name, per_channel):
    path = qdq_models(name, per_channel)
    model = onnx.load(str(path))
    # every QuantizeLinear output (the uint8 tensor of each fused group) is an output too: layer-by-layer proof
    quantized = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    final = [o.name for o in model.graph.output]
    probe = onnx.load(str(path))
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(q, onnx.TensorProto.UINT8, None) for q in quantized)
    plain, probed = _session(model), _session(probe)
    graph = load_onnx(path)
    for seed in SEEDS:
        feeds = _inputs(graph, seed)
        got = run_ort(graph, feeds, keep=True)
        want = plain.run(None, feeds)
        for out, ref in zip(final, want, strict=True):
            assert got[out].dtype == ref.dtype
            assert np.array_equal(got[out], ref), f"{name} seed {seed}: output {out} differs"
        refs = dict(zip([o.name for o in probed.get_outputs()], probed.run(None, feeds), strict=True))
        for q in quantized:
            diff = int(np.count_nonzero(got[q] != refs[q]))
            assert diff == 0, f"{name} seed {seed}: {diff} values of {q} differ from onnxruntime"


@pytest.mark.parametrize("activations", ["int8", "int8-symmetric"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("name", MODELS)
def test_qdq_int8_activation_zoo_model_bit_exact(qdq_models, name, per_channel, activations):
    """int8 activations: onnxruntime turns single-reader Q -> DQ pairs into uint8 and fuses those groups, and runs
    the rest (residual branches: Conv, Add) in float; the final outputs must be identical."""
    path = qdq_models(name, per_channel, activations=activations)
    session = _session(onnx.load(str(path)))
    graph = load_onnx(path)
    _assert_outputs_match(graph, session, name)


@pytest.mark.parametrize("name", ["resnet-8", "ds-cnn"])
def test_qdq_int8_every_quantized_tensor_bit_exact(tmp_path, qdq_models, name):
    """Layer by layer: with every QuantizeLinear output made a graph output, onnxruntime can no longer rewrite
    any int8 pair to uint8, so every Conv runs in float (MLAS's SGEMM) and is requantized; each int8 tensor must
    still equal onnxruntime's. One intra-op thread, under which the float Conv order is exact for any K."""
    model = onnx.load(str(qdq_models(name, True, activations="int8")))
    quantized = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(q, onnx.TensorProto.INT8, None) for q in quantized)
    path = tmp_path / "probed.onnx"
    onnx.save(model, str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph = load_onnx(path)
    for seed in SEEDS:
        feeds = _inputs(graph, seed)
        caveats: list[str] = []
        got = run_ort(graph, feeds, caveats=caveats)
        assert all("thread count" in c for c in caveats), caveats
        for out, ref in zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True):
            diff = int(np.count_nonzero(got[out] != ref))
            assert diff == 0, f"{name} seed {seed}: {diff} values of {out} differ from onnxruntime"


def test_s8_to_u8_rewrite_follows_readers(qdq_models):
    """Only pairs whose DequantizeLinear has a single reader become uint8: in ResNet-8 the stem's output feeds
    both a conv and the residual Add, so it stays int8, while a conv -> conv link inside a block is rewritten."""
    from simulator.execute.ort_exec import s8_to_u8_quantizers

    graph = load_onnx(qdq_models("resnet-8", False, activations="int8"))
    converted = s8_to_u8_quantizers(graph)
    assert "conv1.relu_QuantizeLinear_Output" not in converted
    assert "stage1.block1.conv1.relu_QuantizeLinear_Output" in converted
    assert not s8_to_u8_quantizers(load_onnx(qdq_models("resnet-8", False)))  # uint8 models: nothing to do


def test_outputs_without_keep_are_graph_outputs(qdq_models):
    graph = load_onnx(qdq_models("lenet-5", True))
    out = run_ort(graph, _inputs(graph, 0))
    assert list(out) == graph.outputs
    assert out[graph.outputs[0]].dtype == np.float32


def test_bad_feed_is_refused(qdq_models):
    graph = load_onnx(qdq_models("lenet-5", True))
    name = graph.inputs[0]
    with pytest.raises(EdgesimError, match="shape"):
        run_ort(graph, {name: np.zeros((1, 1, 3, 3), np.float32)})


# -- kernels -------------------------------------------------------------------------------------------


def _exact_fma32(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    lo = np.float32(float(exact))  # nearest double, then candidates around it
    cands = {lo, np.nextafter(lo, np.float32(np.inf)), np.nextafter(lo, np.float32(-np.inf))}
    best = min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.float32(v).view(np.int32)) & 1))
    return np.float32(best)


def test_fma32_rounds_once():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, 2000).astype(np.float32)
    b = (rng.random(2000) * 2).astype(np.float32)
    c = (rng.standard_normal(2000) * 100).astype(np.float32)
    # the float64 sum lands exactly on a float32 midpoint while the exact value lies 2^-70 below it:
    # (1 + 2^-23) + (1 + 2^-23) * 2^-24 (1 - 2^-23) = 1 + 2^-23 + 2^-24 - 2^-70
    a[:5] = np.float32(1 + 2.0**-23)
    b[:5] = np.float32(2.0**-24 * (1 - 2.0**-23))
    c[:5] = np.float32(1 + 2.0**-23)
    got = K.fma32(a, b, c)
    want = np.array([_exact_fma32(x, y, z) for x, y, z in zip(a, b, c, strict=True)], np.float32)
    assert np.array_equal(got, want)
    assert got[0] == np.float32(1 + 2.0**-23)  # rounding the float64 sum (a tie) to even would go up


def test_quantize_linear_rounds_half_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0], np.float32)
    assert K.quantize_linear(x, np.float32(1.0), np.uint8(10), np.uint8).tolist() == [10, 12, 12, 10, 8, 255, 0]
    assert K.quantize_linear(x, np.float32(1.0), np.int8(0), np.int8).tolist() == [0, 2, 2, 0, -2, 127, -128]


def test_requantize_ties_go_to_even():
    acc = np.array([[1, 3, 5, -1, -3]], np.int64)
    out = K.requantize(acc, np.float32(0.5), 0, np.int8, channel_axis=1)
    assert out.tolist() == [[0, 2, 2, 0, -2]]


def test_int32_accumulator_overflow_is_reported():
    x = np.full((1, 1, 1, 1), 255, np.uint8)
    w = np.full((1, 1, 1, 1), -128, np.int8)
    bias = np.array([-(2**31) + 100], np.int64)
    with pytest.raises(K.AccumulatorOverflow):
        K.qlinear_conv(x, 1.0, 0, w, np.float32(1.0), 0, 1.0, np.uint8(0), bias, name="c")


def test_depthwise_grouped_conv_matches_direct_sum():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (1, 4, 7, 6)).astype(np.uint8)
    w = rng.integers(-127, 128, (8, 1, 3, 3)).astype(np.int8)  # depthwise, multiplier 2
    acc = K.conv_accumulate(
        x, 128, w, 0, None, strides=[2, 1], dilations=[1, 2], pads_begin=[1, 2], pads_end=[1, 2], group=4
    )
    xp = np.pad(x.astype(np.int64) - 128, [(0, 0), (0, 0), (1, 1), (2, 2)])
    want = np.zeros_like(acc)
    for m in range(8):
        c = m // 2
        for oy in range(acc.shape[2]):
            for ox in range(acc.shape[3]):
                patch = xp[0, c, oy * 2 : oy * 2 + 3, ox : ox + 5 : 2]
                want[0, m, oy, ox] = int((patch * w[m, 0].astype(np.int64)).sum())
    assert np.array_equal(acc, want)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("name", MODELS)
def test_qoperator_zoo_model_bit_exact(qdq_models, name, per_channel):
    """QOperator models (QLinearConv, QGemm, QLinearAdd, QLinear*Pool, QLinearSoftmax) run bit-exact too."""
    path = qdq_models(name, per_channel, quantization.QuantFormat.QOperator)
    session = _session(onnx.load(str(path)))
    graph = load_quantized_onnx(path)
    assert any(n.op_type == "QLinearConv" for n in graph.nodes)
    _assert_outputs_match(graph, session, name)


def test_quantized_loader_reads_qdq_models_like_load_onnx(qdq_models):
    path = qdq_models("resnet-8", True)
    a, b = load_onnx(path), load_quantized_onnx(path)
    assert [n.op_type for n in a.order] == [n.op_type for n in b.order]
    feeds = _inputs(a, 0)
    assert np.array_equal(run_ort(a, feeds)[a.outputs[0]], run_ort(b, feeds)[b.outputs[0]])


# -- edgesim's own quantized graphs, exported as QDQ ----------------------------------------------------

_LAYER_OPS = ("Conv", "Gemm", "MatMul")


def _edgesim_quantized(name: str, granularity: str):
    from simulator.passes.quantize import quantize_activations, quantize_weights

    graph = load_model(name)
    x = graph.inputs[0]
    layers = [n for n in graph.order if n.op_type in _LAYER_OPS]
    graph = quantize_weights(graph, layers, 8, symmetric=True, granularity=granularity)
    acts = [n for n in graph.order if n.op_type in (*_LAYER_OPS, "Add", "Softmax")]
    rng = np.random.default_rng(99)
    calibration = [{x: rng.standard_normal(graph.tensors[x].shape).astype(np.float32)} for _ in range(2)]
    return quantize_activations(graph, acts, 8, symmetric=False, method="minmax", calibration=calibration)


@pytest.mark.parametrize("granularity", ["per-tensor", "per-channel"])
@pytest.mark.parametrize("name", MODELS)
def test_exported_qdq_model_bit_exact(tmp_path, name, granularity):
    from simulator.execute.qdq_export import write_qdq

    path = write_qdq(_edgesim_quantized(name, granularity), tmp_path / f"{name}.onnx")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}
    assert "QLinearConv" in fused, "onnxruntime did not fuse the exported QDQ groups"
    graph = load_onnx(path)
    _assert_outputs_match(graph, session, name)


def test_export_refuses_what_qdq_cannot_store():
    from simulator.execute.qdq_export import export_qdq
    from simulator.passes.quantize import quantize_activations, quantize_weights

    graph = load_model("lenet-5")
    x = graph.inputs[0]
    layers = [n for n in graph.order if n.op_type in _LAYER_OPS]
    feeds = [{x: np.zeros(graph.tensors[x].shape, np.float32)}]
    wide = quantize_activations(quantize_weights(graph, layers, 8), layers, 16, False, "minmax", feeds)
    with pytest.raises(EdgesimError, match="16 bits"):
        export_qdq(wide)
    with pytest.raises(EdgesimError, match="activation_dtype"):
        export_qdq(graph, activation_dtype="int4")


@pytest.mark.parametrize("activation", ["Relu", "Clip"])
def test_activation_between_conv_and_quantize_is_folded(tmp_path, activation):
    """DQ -> Conv -> Relu/Clip -> Q with a range that already implies the activation: onnxruntime drops the
    activation and fuses the rest into QLinearConv; so does the ort mode."""
    from onnx import TensorProto, helper

    from tests.helpers import make_model, tensor_info

    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    ws = (10 ** rng.uniform(-3, -2, 8)).astype(np.float32)
    xs = np.float32(0.02)
    inits = {
        "xs": xs, "xz": np.uint8(128), "w": w, "ws": ws, "wz": np.zeros(8, np.int8),
        "b": rng.integers(-2000, 2000, 8).astype(np.int32), "bs": (xs * ws).astype(np.float32),
        "bz": np.zeros(8, np.int32), "ys": np.float32(0.01), "yz": np.uint8(0),
        "lo": np.float32(0.0), "hi": np.float32(1e6),
    }  # fmt: skip
    act = (
        helper.make_node("Relu", ["c"], ["r"])
        if activation == "Relu"
        else helper.make_node("Clip", ["c", "lo", "hi"], ["r"])
    )
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"], axis=0),
        helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
        act,
        helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 3, 10, 10])], [tensor_info("y", [1, 8, 10, 10])], inits)
    model.graph.output.append(helper.make_tensor_value_info("yq", TensorProto.UINT8, [1, 8, 10, 10]))
    path = tmp_path / "conv_act.onnx"
    onnx.save(model, str(path))
    session = _session(model)
    graph = load_onnx(path)
    for seed in SEEDS:
        feeds = {"x": (np.random.default_rng(seed).standard_normal((1, 3, 10, 10)) * 2).astype(np.float32)}
        got = run_ort(graph, feeds)
        want = session.run(None, feeds)
        assert np.array_equal(got["yq"], want[1])
        assert np.array_equal(got["y"], want[0])


# -- Sigmoid, LeakyRelu, Mul and Tanh: onnxruntime's QDQ fusions and MLAS float kernels ------------------------

_ACT_HW = 12


def _activation_net() -> onnx.ModelProto:
    """A small float network with each op of the fusions: Conv -> LeakyRelu -> Conv -> x * Sigmoid(x) -> Tanh ->
    * (the LeakyRelu branch) -> GlobalAveragePool -> Gemm. Seeded weights."""
    from onnx import helper

    from tests.helpers import make_model, tensor_info

    rng = np.random.default_rng(21)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
        helper.make_node("Conv", ["l1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s2"]),
        helper.make_node("Mul", ["c2", "s2"], ["m2"]),
        helper.make_node("Tanh", ["m2"], ["t2"]),
        helper.make_node("Mul", ["t2", "l1"], ["m3"]),
        helper.make_node("GlobalAveragePool", ["m3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1),
    ]
    inits = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 8, 3, 3), "b2": w(8), "w3": w(10, 8), "b3": w(10)}
    return make_model(nodes, [tensor_info("x", [1, 3, _ACT_HW, _ACT_HW])], [tensor_info("y", [1, 10])], inits)


@pytest.fixture(scope="module")
def activation_qdq(tmp_path_factory):
    """activations ("uint8" / "int8") -> the QDQ model quantize_static writes for :func:`_activation_net`."""
    root = tmp_path_factory.mktemp("ort_act")
    float_path = root / "act.onnx"
    onnx.save(_activation_net(), str(float_path))
    paths = {}
    for name in ("uint8", "int8"):
        act_type, extra = _ACTIVATIONS[name]
        paths[name] = root / f"act-{name}.onnx"
        quantization.quantize_static(
            str(float_path), str(paths[name]), _Reader("x", [1, 3, _ACT_HW, _ACT_HW]),
            quant_format=quantization.QuantFormat.QDQ, activation_type=act_type,
            weight_type=quantization.QuantType.QInt8, extra_options=extra,
        )  # fmt: skip
    return paths


@pytest.mark.parametrize("probed", [False, True], ids=["plain", "every-tensor"])
@pytest.mark.parametrize("activations", ["uint8", "int8"])
def test_qdq_sigmoid_leaky_relu_mul_tanh_bit_exact(tmp_path, activation_qdq, activations, probed):
    """onnxruntime fuses DQ -> Sigmoid / LeakyRelu -> Q into QLinearSigmoid / QLinearLeakyRelu and DQ, DQ -> Mul -> Q
    into QLinearMul (uint8; int8 where the types stay int8: with every quantized tensor an output, none is rewritten
    to uint8) and runs Tanh in float through MLAS: every quantized tensor and the output must be identical."""
    model = onnx.load(str(activation_qdq[activations]))
    if probed:
        elem = onnx.TensorProto.UINT8 if activations == "uint8" else onnx.TensorProto.INT8
        quantized = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
        model.graph.output.extend(onnx.helper.make_tensor_value_info(q, elem, None) for q in quantized)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # int8 Convs run in float, exact for one thread
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}
    if activations == "uint8" or probed:
        assert {"QLinearSigmoid", "QLinearLeakyRelu", "QLinearMul", "Tanh"} <= fused, fused
    graph = load_onnx(path)
    for seed in SEEDS:
        feeds = {"x": (np.random.default_rng(seed).standard_normal((1, 3, _ACT_HW, _ACT_HW)) * (1 + seed))}
        feeds = {"x": feeds["x"].astype(np.float32)}
        caveats: list[str] = []
        got = run_ort(graph, feeds, caveats=caveats)
        assert all("thread count" in c for c in caveats), caveats  # Sigmoid / Tanh / LeakyRelu are no caveat
        for out, ref in zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True):
            assert got[out].dtype == ref.dtype
            diff = int(np.count_nonzero(got[out] != ref))
            assert diff == 0, f"seed {seed}: {diff} values of {out} differ from onnxruntime"


def test_qdq_mul_group_runs_as_qlinear_mul(tmp_path):
    """The fusion decides the integers: on every pair of uint8 values, with parameters where QLinearMul and
    DQ -> float Mul -> Q disagree (found by test_ort_kernels), onnxruntime with and without its graph optimizer
    give different results, and the ort mode gives the optimized (fused) one."""
    from onnx import TensorProto, helper

    from tests.execute.test_ort_kernels import _edgesim_qlinear_mul, _mul_case
    from tests.helpers import make_model, tensor_info

    for seed in range(200):
        a, b, p = _mul_case(seed, False)
        product = K.dequantize_linear(a, p["sa"], p["za"]) * K.dequantize_linear(b, p["sb"], p["zb"])
        if not np.array_equal(_edgesim_qlinear_mul(a, b, p), K.quantize_linear(product, p["sc"], p["zc"], np.uint8)):
            break
    nodes = [
        helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["ad"]),
        helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bd"]),
        helper.make_node("Mul", ["ad", "bd"], ["m"]),
        helper.make_node("QuantizeLinear", ["m", "sc", "zc"], ["y"]),
    ]
    u8 = TensorProto.UINT8
    model = make_model(
        nodes, [tensor_info("a", [256, 256], u8), tensor_info("b", [256, 256], u8)], [tensor_info("y", [256, 256], u8)],
        p,
    )  # fmt: skip
    path = tmp_path / "mul.onnx"
    onnx.save(model, str(path))
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    feeds = {"a": a, "b": b}
    fused = _session(model).run(None, feeds)[0]
    unfused = ort.InferenceSession(str(path), plain, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert not np.array_equal(fused, unfused)
    assert np.array_equal(run_ort(load_onnx(path), feeds)["y"], fused)


@pytest.mark.parametrize("activations", ["uint8", "int8"])
def test_qoperator_sigmoid_leaky_relu_mul_bit_exact(tmp_path, activations):
    """QOperator models carry QLinearSigmoid, QLinearLeakyRelu and QLinearMul themselves."""
    act_type, extra = _ACTIVATIONS[activations]
    float_path, path = tmp_path / "act.onnx", tmp_path / "act-qop.onnx"
    onnx.save(_activation_net(), str(float_path))
    quantization.quantize_static(
        str(float_path), str(path), _Reader("x", [1, 3, _ACT_HW, _ACT_HW]),
        quant_format=quantization.QuantFormat.QOperator, activation_type=act_type,
        weight_type=quantization.QuantType.QInt8, extra_options=extra,
    )  # fmt: skip
    model = onnx.load(str(path))
    assert {"QLinearSigmoid", "QLinearLeakyRelu", "QLinearMul"} <= {n.op_type for n in model.graph.node}
    graph = load_quantized_onnx(path)
    _assert_outputs_match(graph, _session(model), "activation net")


_MATMUL_SHAPES = [
    ((1, 6, 16), (16, 16)),  # a 3-d activation times a 2-d weight: batch folded into M
    ((2, 6, 16), (2, 16, 5)),  # batched, as attention's A.V
    ((3, 1, 8), (3, 8, 4)),  # batched with M = 1 (MLAS's M=1 kernel per batch)
    ((1, 16), (16, 8)),  # M = 1
    ((5, 300), (300, 7)),  # K sliced (narrow N doubles the slice depth)
    ((4, 200), (200, 300)),
]


@pytest.mark.parametrize(("a_shape", "b_shape"), _MATMUL_SHAPES)
def test_float_matmul_in_mlas_order(a_shape, b_shape, tmp_path):
    """A MatMul the ort mode leaves in float (int8 activations on x86) is computed in MLAS's SGEMM order: equal to
    onnxruntime's float MatMul with one intra-op thread, both operands activations; a caveat only where the result
    depends on the thread count."""
    from onnx import helper

    from tests.helpers import make_model, tensor_info

    out_shape = np.broadcast_shapes(a_shape[:-2], b_shape[:-2]) + (a_shape[-2], b_shape[-1])
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    model = make_model(nodes, [tensor_info("a", a_shape), tensor_info("b", b_shape)], [tensor_info("y", out_shape)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    onnx.save(model, str(tmp_path / "matmul.onnx"))
    graph = load_onnx(tmp_path / "matmul.onnx")
    rng = np.random.default_rng(len(a_shape) + a_shape[-1])
    feeds = {"a": rng.standard_normal(a_shape).astype(np.float32), "b": rng.standard_normal(b_shape).astype(np.float32)}
    caveats: list[str] = []
    got = run_ort(graph, feeds, caveats=caveats)["y"]
    assert np.array_equal(got, session.run(None, feeds)[0])
    assert bool(caveats) == (a_shape[-1] > K.sgemm_stride_k(b_shape[-1], a_shape[-1]) and a_shape[-2] > 1)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_data_movement_moves_integers(tmp_path, dtype):
    """DQ -> Gather / Expand / Slice -> Q with equal parameters (onnxruntime's "drop" rules), and a Concat of an
    activation with a quantized constant of the same parameters: the integers move unchanged, as in onnxruntime
    (the ort mode used to concatenate the constant's float values with the activation's integers)."""
    from onnx import helper

    from tests.helpers import make_model, tensor_info

    elem = onnx.TensorProto.INT8 if dtype == np.int8 else onnx.TensorProto.UINT8
    zp = dtype(-3 if dtype == np.int8 else 125)
    inits = {
        "s": np.float32(0.05), "z": zp, "idx": np.array([0, 2, 2], np.int64), "shape": np.array([2, 3, 6], np.int64),
        "table": np.arange(12, dtype=np.uint8).reshape(1, 2, 6).astype(dtype), "st": np.array([1], np.int64),
        "en": np.array([4], np.int64), "ax": np.array([1], np.int64),
    }  # fmt: skip

    def qdq(name, out):
        return [helper.make_node("QuantizeLinear", [name, "s", "z"], [f"{out}_q"]),
                helper.make_node("DequantizeLinear", [f"{out}_q", "s", "z"], [out])]  # fmt: skip

    nodes = [
        *qdq("x", "xd"),
        helper.make_node("Gather", ["xd", "idx"], ["g"], axis=1), *qdq("g", "gd"),
        helper.make_node("Expand", ["gd", "shape"], ["e"]), *qdq("e", "ed"),
        helper.make_node("DequantizeLinear", ["table", "s", "z"], ["td"]),
        helper.make_node("Concat", ["gd", "td"], ["c"], axis=1), *qdq("c", "cd"),
        helper.make_node("Slice", ["cd", "st", "en", "ax"], ["sl"]), *qdq("sl", "y"),
    ]  # fmt: skip
    outputs = [tensor_info("y", [1, 3, 6]), tensor_info("ed", [2, 3, 6])]
    model = make_model(nodes, [tensor_info("x", [1, 4, 6])], outputs, inits, opset=13)
    model.graph.output.extend(helper.make_tensor_value_info(n, elem, None) for n in ("gd_q", "ed_q", "cd_q", "y_q"))
    path = tmp_path / "movement.onnx"
    onnx.save(model, str(path))
    session = _session(model)
    graph = load_onnx(path)
    for seed in SEEDS:
        feeds = {"x": (np.random.default_rng(seed).standard_normal((1, 4, 6)) * 4).astype(np.float32)}
        caveats: list[str] = []
        got = run_ort(graph, feeds, caveats=caveats)
        names = [o.name for o in session.get_outputs()]
        for name, want in zip(names, session.run(None, feeds), strict=True):
            assert got[name].dtype == want.dtype and np.array_equal(got[name], want), name
        assert caveats == []


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize(("m", "k", "n", "bias_shape"), [(8, 48, 16, (16,)), (5, 100, 3, (1, 3)), (6, 20, 7, None)])
def test_float_gemm_in_mlas_order(tmp_path, m, k, n, bias_shape, trans_b):
    """A Gemm the ort mode leaves in float (int8 activations whose output type differs) equals onnxruntime's float
    Gemm where K is one SGEMM slice and M > 1: the bias is added to the product once."""
    from onnx import helper

    from tests.helpers import make_model, tensor_info

    rng = np.random.default_rng(m * k + n)
    inits = {"b": rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)}
    inputs = ["a", "b"]
    if bias_shape is not None:
        inits["c"] = rng.standard_normal(bias_shape).astype(np.float32)
        inputs.append("c")
    nodes = [helper.make_node("Gemm", inputs, ["y"], transB=trans_b)]
    model = make_model(nodes, [tensor_info("a", [m, k])], [tensor_info("y", [m, n])], inits)
    onnx.save(model, str(tmp_path / "gemm.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    caveats: list[str] = []
    got = run_ort(load_onnx(tmp_path / "gemm.onnx"), feeds, caveats=caveats)["y"]
    assert np.array_equal(got, session.run(None, feeds)[0]) and caveats == []


@pytest.mark.parametrize("qoperator", [False, True], ids=["qdq", "qlinear-softmax"])
def test_opset11_softmax_normalises_the_flattened_rows(tmp_path, qoperator):
    """Before opset 13 Softmax (and onnxruntime's QLinearSoftmax with opset < 13) normalises over every axis from
    ``axis`` on: a 4-d input with axis 1 is one row per batch item."""
    from onnx import helper

    from tests.helpers import make_model, tensor_info

    inits = {"s": np.float32(0.05), "z": np.uint8(128), "ys": np.float32(1 / 256), "yz": np.uint8(0)}
    quantize = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"])
    if qoperator:
        softmax = [helper.make_node("QLinearSoftmax", ["xq", "s", "z", "ys", "yz"], ["y"], domain="com.microsoft",
                                    axis=1, opset=11)]  # fmt: skip
    else:
        softmax = [
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
            helper.make_node("Softmax", ["xd"], ["p"], axis=1),
            helper.make_node("QuantizeLinear", ["p", "ys", "yz"], ["y"]),
        ]
    out = tensor_info("y", [2, 3, 4, 5], onnx.TensorProto.UINT8)
    model = make_model([quantize, *softmax], [tensor_info("x", [2, 3, 4, 5])], [out], inits, opset=11)
    if qoperator:
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    path = tmp_path / "softmax11.onnx"
    onnx.save(model, str(path))
    session = _session(model)
    graph = load_quantized_onnx(path)
    for seed in SEEDS:
        feeds = {"x": (np.random.default_rng(seed).standard_normal((2, 3, 4, 5)) * 3).astype(np.float32)}
        assert np.array_equal(run_ort(graph, feeds)["y"], session.run(None, feeds)[0])
