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


# -- MLAS's float Sigmoid / Tanh and the lookup-table and Mul kernels ------------------------------------------


def _has_fma3() -> bool:
    """Whether this CPU has AVX2 and FMA3, the features for which MLAS picks the kernels ort_kernels reproduces."""
    try:
        flags = open("/proc/cpuinfo").read().split()  # noqa: SIM115
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


needs_fma3 = pytest.mark.skipif(
    not _has_fma3(), reason="onnxruntime takes MLAS's SSE2 Sigmoid/Tanh kernels without AVX2+FMA3; not reproduced"
)


def _float_inputs(seed: int) -> np.ndarray:
    """Every kind of float32: random bit patterns (NaN, +-inf, subnormals, huge and tiny magnitudes), a dense sweep
    of the approximations' range, and the clamp boundaries with their float32 neighbours."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, 60000, dtype=np.uint64).astype(np.uint32).view(F32)
    sweep = rng.uniform(-25, 25, 60000).astype(F32)
    tiny = (rng.standard_normal(4000) * 10.0 ** rng.uniform(-44, -3, 4000)).astype(F32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 5, 9, 18, 1e30, -3e38], F32)
    edges = np.concatenate([edges, -edges])
    edges = np.concatenate([edges, np.nextafter(edges, F32(np.inf)), np.nextafter(edges, F32(-np.inf))])
    return np.concatenate([bits, sweep, tiny, edges])


def _float_op(op: str, x: np.ndarray, **attrs) -> np.ndarray:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return _run(node, {"x": x}, {}, list(x.shape), TensorProto.FLOAT)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, F32).view(np.uint32)  # equality of bit patterns: NaN == NaN, -0.0 != 0.0


@needs_fma3
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("op", "kernel"), [("Sigmoid", K.mlas_logistic), ("Tanh", K.mlas_tanh)])
def test_mlas_sigmoid_and_tanh_bit_exact(op, kernel, seed):
    x = _float_inputs(seed)
    want = _float_op(op, x)
    got = kernel(x)
    diff = int(np.count_nonzero(_bits(got) != _bits(want)))
    assert diff == 0, f"{diff} of {x.size} {op} values differ, e.g. at x = {x[_bits(got) != _bits(want)][:4]}"


@needs_fma3
def test_mlas_sigmoid_is_not_libm():
    """The proof above is not vacuous: float64 libm's logistic, or the approximation with separately rounded
    multiply-adds, differ from onnxruntime on many elements of the range."""
    x = _float_inputs(0)
    x = x[np.isfinite(x) & (np.abs(x) < 18)]
    want = _bits(_float_op("Sigmoid", x))
    libm = (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)
    assert np.count_nonzero(_bits(libm) != want) > 1000
    x2 = x * x
    p = x2 * K._LOGISTIC_P[0] + K._LOGISTIC_P[1]
    for c in K._LOGISTIC_P[2:]:
        p = p * x2 + c
    q = x2 * K._LOGISTIC_Q[0] + K._LOGISTIC_Q[1]
    for c in K._LOGISTIC_Q[2:]:
        q = q * x2 + c
    unfused = ((x * p) / q + F32(0.5)).astype(F32)
    assert np.count_nonzero(_bits(unfused) != want) > 100


def test_leaky_relu_float_bit_exact():
    x = _float_inputs(1)
    assert np.array_equal(_bits(K.leaky_relu_f32(x, 0.1)), _bits(_float_op("LeakyRelu", x, alpha=0.1)))


def test_mlas_logistic_hand_values():
    # at the clamp, x = 18 and x = 1e30 give the same value; y(0) is 0 / beta_0 + 0.5 = 0.5 exactly; NaN stays NaN
    y = K.mlas_logistic(np.array([18.0, 1e30, 0.0, -0.0, np.nan], F32))
    assert y[0] == y[1] and y[2] == F32(0.5) and y[3] == F32(0.5) and np.isnan(y[4])
    # tanh is odd and keeps the sign of zero: (-0 * P) / Q = -0
    t = K.mlas_tanh(np.array([-0.0, 3.0, -3.0], F32))
    assert np.signbit(t[0]) and t[1] == -t[2]


def _qlinear_unary(op, x, xs, xz, ys, yz, **attrs):
    node = helper.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", **attrs)
    out_type = helper.np_dtype_to_tensor_dtype(x.dtype)
    return _run(node, {"x": x}, {"xs": xs, "xz": xz, "ys": ys, "yz": yz}, list(x.shape), out_type)


@needs_fma3
@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("seed", range(4))
def test_qlinear_sigmoid_and_leaky_relu(seed, signed):
    """Every one of the 256 levels through QLinearSigmoid / QLinearLeakyRelu with random parameters."""
    rng = np.random.default_rng(seed)
    dtype = np.int8 if signed else np.uint8
    lo, hi = K._limits(dtype)
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(4, 64)
    xs, ys = _scale(rng, -2.5, -0.5), _scale(rng, -3.5, -2)
    xz, yz = dtype(rng.integers(lo, hi + 1)), dtype(rng.integers(lo, hi + 1))
    want = _qlinear_unary("QLinearSigmoid", x, xs, xz, ys, yz)
    got = K.qlinear_lookup(x, K.lookup_table(K.mlas_logistic, xs, xz, ys, yz))
    assert got.dtype == want.dtype and np.array_equal(got, want)
    alpha = float(rng.uniform(0.01, 0.5))
    want = _qlinear_unary("QLinearLeakyRelu", x, xs, xz, xs * F32(2), yz, alpha=alpha)
    got = K.qlinear_lookup(x, K.lookup_table(lambda v: K.leaky_relu_f32(v, alpha), xs, xz, xs * F32(2), yz))
    assert np.array_equal(got, want)


def _mul_case(seed: int, signed: bool):
    """All 65536 pairs of 8-bit values and random QLinearMul parameters whose outputs spread over the range."""
    rng = np.random.default_rng(seed)
    dtype = np.int8 if signed else np.uint8
    lo, hi = K._limits(dtype)
    levels = np.arange(256, dtype=np.uint8).view(dtype)
    a, b = (g.reshape(256, 256) for g in np.meshgrid(levels, levels, indexing="ij"))
    sa, sb = _scale(rng), _scale(rng)
    sc = F32(sa * sb * F32(10 ** rng.uniform(1.7, 3.5)))
    za, zb, zc = (dtype(rng.integers(lo, hi + 1)) for _ in range(3))
    return a, b, {"sa": sa, "za": za, "sb": sb, "zb": zb, "sc": sc, "zc": zc}


def _onnxruntime_qlinear_mul(a, b, p):
    node = helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"], domain="com.microsoft")
    out_shape = list(np.broadcast_shapes(a.shape, b.shape))
    return _run(node, {"a": a, "b": b}, p, out_shape, helper.np_dtype_to_tensor_dtype(a.dtype))


def _edgesim_qlinear_mul(a, b, p):
    return K.qlinear_mul(a, p["sa"], p["za"], b, p["sb"], p["zb"], p["sc"], p["zc"])


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("seed", range(6))
def test_qlinear_mul(seed, signed):
    """Every pair of 8-bit values (and a broadcast one-element B, MLAS's scalar path): ties and saturation."""
    a, b, p = _mul_case(seed, signed)
    if seed % 3 == 2:
        b = b[:1, :1]
    want = _onnxruntime_qlinear_mul(a, b, p)
    got = _edgesim_qlinear_mul(a, b, p)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want), f"{int(np.count_nonzero(got != want))} values differ"


def test_qlinear_mul_is_not_dequantize_mul_quantize():
    """QLinearMul's arithmetic (integer product times one float32 ratio) differs, near ties, from dequantizing,
    multiplying and quantizing: on the first seeded parameter sets where the two disagree, onnxruntime's
    QLinearMul takes the fused value."""
    disagreements = 0
    for seed in range(200):
        a, b, p = _mul_case(seed, False)
        fused = _edgesim_qlinear_mul(a, b, p)
        product = K.dequantize_linear(a, p["sa"], p["za"]) * K.dequantize_linear(b, p["sb"], p["zb"])
        unfused = K.quantize_linear(product, p["sc"], p["zc"], np.uint8)
        if np.array_equal(fused, unfused):
            continue
        want = _onnxruntime_qlinear_mul(a, b, p)
        assert np.array_equal(fused, want) and not np.array_equal(unfused, want)
        disagreements += 1
        if disagreements == 3:
            return
    pytest.fail("no parameter set where QLinearMul and the float path disagree")


def test_qlinear_mul_hand_values():
    # ratio = 0.5 * 0.5 / 0.25 = 1: (3 - 1)(4 - 2) = 4, + zp 10 = 14; a tie (1)(1) * 0.5 = 0.5 rounds to even 0;
    # a product beyond int32 after scaling becomes INT32_MIN in cvtps2dq and saturates to the type's minimum
    one = F32(1.0)
    assert K.qlinear_mul(np.uint8([3]), 0.5, 1, np.uint8([4]), 0.5, 2, 0.25, np.uint8(10)).tolist() == [14]
    assert K.qlinear_mul(np.uint8([1]), one, 0, np.uint8([1]), 0.5, 0, one, np.uint8(0)).tolist() == [0]
    assert K.qlinear_mul(np.uint8([255]), one, 0, np.uint8([255]), 1e6, 0, 1e-3, np.uint8(0)).tolist() == [0]


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("seed", range(4))
def test_qlinear_concat(seed, signed):
    """Every level of three inputs, one of them with the output's own parameters (onnxruntime copies it)."""
    rng = np.random.default_rng(seed)
    dtype = np.int8 if signed else np.uint8
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    levels = np.arange(256, dtype=np.uint8).view(dtype).reshape(1, 2, 128)
    inputs = {"a": levels, "b": levels[:, :, ::-1].copy(), "c": levels[:, :1].copy()}
    ys, yz = _scale(rng), dtype(rng.integers(lo, hi + 1))
    params = {"a": (_scale(rng), dtype(rng.integers(lo, hi + 1))), "b": (_scale(rng), dtype(rng.integers(lo, hi + 1)))}
    params["c"] = (ys, yz)
    consts = {"ys": ys, "yz": yz}
    names = ["ys", "yz"]
    for k, (s, z) in params.items():
        consts[f"{k}s"], consts[f"{k}z"] = s, z
        names += [k, f"{k}s", f"{k}z"]
    node = helper.make_node("QLinearConcat", names, ["y"], domain="com.microsoft", axis=1)
    out_type = TensorProto.INT8 if signed else TensorProto.UINT8
    want = _run(node, inputs, consts, (1, 5, 128), out_type)
    parts = [(inputs[k], *params[k]) for k in "abc"]
    got = K.qlinear_concat(parts, ys, yz, axis=1)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(got[:, 4:], inputs["c"])  # same parameters: copied


@pytest.mark.parametrize("y_scale", [F32(1 / 256), F32(0.002)])
@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
def test_qlinear_softmax_saturates_a_dominant_value(signed, y_scale):
    """A row whose maximum dominates gives a quotient near floor(1 / y_scale) >= 256: onnxruntime saturates the
    result to the type's maximum (the ort mode used to wrap int8 results past 127 to negative values)."""
    dtype = np.int8 if signed else np.uint8
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    out_type = TensorProto.INT8 if signed else TensorProto.UINT8
    for d in (2, 6, 30):
        x = np.full((3, d), lo, dtype)
        x[:, -1] = hi
        x[1, 0], x[2, 0] = hi - 7, hi - 100
        for xs in (F32(0.001), F32(0.05), F32(0.5)):
            for zero in (dtype(lo), dtype(lo + 28)):
                consts = {"xs": xs, "xz": dtype(0), "ys": y_scale, "yz": zero}
                node = helper.make_node(
                    "QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", axis=-1, opset=13
                )
                want = _run(node, {"x": x}, consts, x.shape, out_type)
                assert np.array_equal(K.qlinear_softmax(x, xs, y_scale, zero), want), (d, xs, zero)
