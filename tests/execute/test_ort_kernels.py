"""Single onnxruntime quantized ops with random scales against the ``ort`` kernels, bit for bit: ties and
saturation come up far more often here than in whole models."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from simulator.execute import ort_kernels as K  # noqa: E402

F32 = np.float32


def _run(node, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray], out_shape, out_type=TensorProto.UINT8):
    infos = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()
    ]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
    graph = helper.make_graph([node], "op", infos, [helper.make_tensor_value_info("y", out_type, out_shape)], inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def _scale(rng, lo=-3.0, hi=-1.0) -> np.float32:
    return F32(10 ** rng.uniform(lo, hi))


@pytest.mark.parametrize("seed", range(6))
def test_qlinear_add(seed):
    rng = np.random.default_rng(seed)
    shape_b = [(2, 8, 5, 7), (1, 8, 1, 1), (1,)][seed % 3]
    a = rng.integers(0, 256, (2, 8, 5, 7)).astype(np.uint8)
    b = rng.integers(0, 256, shape_b).astype(np.uint8)
    sa, sb, sc = _scale(rng), _scale(rng), _scale(rng)
    za, zb, zc = (np.uint8(rng.integers(0, 256)) for _ in range(3))
    consts = {"sa": sa, "za": za, "sb": sb, "zb": zb, "sc": sc, "zc": zc}
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"], domain="com.microsoft")
    want = _run(node, {"a": a, "b": b}, consts, a.shape)
    assert np.array_equal(K.qlinear_add(a, sa, za, b, sb, zb, sc, zc), want)


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("seed", range(6))
def test_qlinear_softmax(seed, signed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 40))
    dtype = np.int8 if signed else np.uint8
    x = (rng.integers(0, 256, (32, d)) - (128 if signed else 0)).astype(dtype)
    x[::2] = x[::2, :1]  # all-equal rows: exact ties
    xs, ys = _scale(rng, -3, 0), _scale(rng, -3, -1.5)
    zero = dtype(-128 if signed else 0)
    consts = {"xs": xs, "xz": dtype(0), "ys": ys, "yz": zero}
    node = helper.make_node(
        "QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", axis=-1, opset=13
    )
    out_type = TensorProto.INT8 if signed else TensorProto.UINT8
    want = _run(node, {"x": x}, consts, x.shape, out_type)
    assert np.array_equal(K.qlinear_softmax(x, xs, ys, zero), want)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("depthwise", [False, True])
def test_qlinear_conv(seed, depthwise):
    rng = np.random.default_rng(seed)
    c, m, group = (6, 6, 6) if depthwise else (4, 6, 2 if seed % 2 else 1)
    x = rng.integers(0, 256, (1, c, 9, 8)).astype(np.uint8)
    w = rng.integers(-127, 128, (m, c // group, 3, 3)).astype(np.int8)
    bias = rng.integers(-5000, 5000, m).astype(np.int32)
    xs, ys = _scale(rng), _scale(rng, -2, 0)
    ws = (10 ** rng.uniform(-3, -1, m)).astype(F32) if seed % 2 else _scale(rng)
    xz, yz = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256))
    wz = np.zeros(np.shape(ws), np.int8)
    attrs = {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 0, 1], "group": group}
    consts = {"xs": xs, "xz": xz, "w": w, "ws": ws, "wz": wz, "ys": ys, "yz": yz, "b": bias}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], **attrs)
    want = _run(node, {"x": x}, consts, None)
    got = K.qlinear_conv(
        x, xs, xz, w, ws, wz, ys, yz, bias, strides=[2, 1], dilations=[1, 2], pads_begin=[1, 2], pads_end=[0, 1],
        group=group,
    )  # fmt: skip
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(4))
def test_qlinear_matmul(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (5, 33)).astype(np.uint8)
    b = rng.integers(-128, 128, (33, 7)).astype(np.int8)
    sa, sy = _scale(rng), _scale(rng, -2, 0)
    sb = (10 ** rng.uniform(-3, -1, 7)).astype(F32) if seed % 2 else _scale(rng)
    za, zy = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256))
    zb = np.zeros(np.shape(sb), np.int8)
    consts = {"sa": sa, "za": za, "b": b, "sb": sb, "zb": zb, "sy": sy, "zy": zy}
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    want = _run(node, {"a": a}, consts, a.shape[:1] + b.shape[1:])
    assert np.array_equal(K.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy), want)


@pytest.mark.parametrize("seed", range(4))
def test_qlinear_average_pools(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, 5, 7, 6)).astype(np.uint8)
    xs, ys = _scale(rng), _scale(rng)
    xz, yz = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256))
    consts = {"xs": xs, "xz": xz, "ys": ys, "yz": yz}
    node = helper.make_node(
        "QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", channels_last=0
    )
    want = _run(node, {"x": x}, consts, None)
    assert np.array_equal(K.qlinear_global_average_pool(x, xs, xz, ys, yz), want)
    include = seed % 2
    node = helper.make_node(
        "QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft",
        kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 0], count_include_pad=include,
    )  # fmt: skip
    want = _run(node, {"x": x}, consts, None)
    got = K.qlinear_average_pool(
        x, xs, xz, ys, yz, kernel=[3, 2], strides=[2, 2], pads_begin=[1, 1], pads_end=[1, 0], count_include_pad=include
    )
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_quantize_and_dequantize_linear(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((4, 300)) * 3).astype(F32)
    x[0, :8] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1e6, -1e6], F32) * 0.02  # ties at scale 0.02
    s, z = F32(0.02) if seed == 0 else _scale(rng), np.uint8(rng.integers(0, 256))
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    want = _run(node, {"x": x}, {"s": s, "z": z}, x.shape)
    q = K.quantize_linear(x, s, z, np.uint8)
    assert np.array_equal(q, want)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])
    want = _run(node, {"q": q}, {"s": s, "z": z}, x.shape, TensorProto.FLOAT)
    assert np.array_equal(K.dequantize_linear(q, s, z), want)


# (kernel, strides, dilations, pads begin + end): ResNet's 3x3 / 2 with padding, plain 2x2 / 2, dilated with
# asymmetric padding (the edge windows hold few in-image taps)
MAX_POOLS = [([3, 3], [2, 2], [1, 1], [1, 1, 1, 1]), ([2, 2], [2, 2], [1, 1], [0, 0, 0, 0]),
             ([3, 2], [1, 2], [2, 1], [2, 0, 1, 1])]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("case", range(len(MAX_POOLS)))
def test_max_pool(case, dtype):
    kernel, strides, dilations, pads = MAX_POOLS[case]
    info = np.iinfo(dtype)
    x = np.random.default_rng(case).integers(info.min, info.max + 1, (1, 3, 9, 8)).astype(dtype)
    x[0, 0] = info.min  # a plane at the minimum: padding must not be mistaken for it, nor win
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads}
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    want = _run(node, {"x": x}, {}, None, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    got = K.max_pool(x, kernel=kernel, strides=strides, dilations=dilations, pads_begin=pads[:2], pads_end=pads[2:])
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "c, m, hw, k, stride, pad, group",
    [
        (3, 32, 32, 3, 2, 1, 1),  # K = 27: one FMA chain
        (24, 144, 14, 1, 1, 0, 1),  # 1x1 (MLAS's direct GEMM)
        (64, 64, 8, 3, 1, 1, 1),  # K = 576 over 64 pixels: slices of 256, 256, 64
        (160, 96, 7, 1, 1, 0, 1),  # K = 160 > 128 but N < K: one slice of 256
        (32, 32, 16, 3, 1, 1, 32),  # depthwise: M = 1 kernel, K = 9 = 4 + 4 + 1
        (16, 16, 9, 3, 2, 1, 16),
    ],
)
def test_mlas_float_conv_matches_onnxruntime(c, m, hw, k, stride, pad, group):
    """The float Conv of unfused int8 QDQ groups, against onnxruntime's own float Conv (weights as a graph
    input, as a DequantizeLinear output is: no prepacking, no NCHWc rewrite), one intra-op thread."""
    rng = np.random.default_rng(c * m + k)
    x = rng.standard_normal((1, c, hw, hw)).astype(F32)
    w = rng.standard_normal((m, c // group, k, k)).astype(F32)
    b = rng.standard_normal(m).astype(F32)
    attrs = {"strides": [stride] * 2, "pads": [pad] * 4, "group": group}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    infos = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in (("x", x), ("w", w), ("b", b))]
    graph = helper.make_graph([node], "conv", infos, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x, "w": w, "b": b})[0]
    got, caveat = K.mlas_conv_float(
        x, w, b, strides=[stride] * 2, dilations=[1, 1], pads_begin=[pad] * 2, pads_end=[pad] * 2, group=group
    )
    assert np.array_equal(got, want)
    assert (caveat is not None) == (hw == 8 and k == 3)  # only the sliced K depends on the thread count
