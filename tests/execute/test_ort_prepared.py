"""The ort mode's prepared kernels (a session's BLAS-ready weights, static exactness proof, stride phases) against
single onnxruntime ops, bit for bit, including the layers where one float32 GEMM is not provably exact."""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnxruntime import quantization  # noqa: E402

from simulator.errors import EdgesimError  # noqa: E402
from simulator.execute import ort_kernels as K  # noqa: E402
from simulator.execute.ort_exec import prepare_ort, run_ort  # noqa: E402
from simulator.execute.ort_prepared import (  # noqa: E402
    PreparedAdd,
    PreparedConv,
    PreparedMatMul,
    WorkBuffers,
    centred_range,
)
from simulator.importers import load_model  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from tests.execute.test_ort_kernels import _run, _scale  # noqa: E402
from tests.execute.test_ort_mode import _inputs, _Reader, _session  # noqa: E402
from tests.helpers import graph_to_onnx  # noqa: E402

F32 = np.float32

# (shape of x, weight shape, strides, dilations, pads begin + end, group): 1x1 read in place, strided 1x1,
# 3x3 with stride phases, asymmetric pads, dilation, grouped, depthwise with multipliers 1 and 2 (small images:
# batched matmul; large: one multiply-add per tap), two images, 1-d
CONVS = [
    ((1, 8, 7, 9), (5, 8, 1, 1), [1, 1], [1, 1], [0, 0, 0, 0], 1),
    ((1, 6, 9, 8), (4, 6, 1, 1), [2, 2], [1, 1], [0, 0, 0, 0], 1),
    ((2, 4, 9, 8), (6, 4, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 1),
    ((1, 4, 11, 10), (6, 4, 3, 3), [2, 2], [1, 1], [1, 1, 1, 1], 1),
    ((1, 3, 13, 12), (4, 3, 7, 7), [2, 2], [1, 1], [3, 3, 3, 3], 1),
    ((1, 4, 9, 8), (6, 2, 3, 3), [2, 1], [1, 2], [1, 2, 0, 1], 2),
    ((1, 6, 10, 9), (6, 1, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 6),
    ((1, 6, 11, 10), (6, 1, 3, 3), [2, 2], [1, 1], [0, 1, 1, 0], 6),
    ((1, 4, 7, 6), (8, 1, 3, 3), [3, 1], [2, 2], [2, 2, 2, 2], 4),
    ((1, 3, 50, 48), (3, 1, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 3),  # > 2048 outputs per channel: per-tap path
    ((1, 2, 48, 47), (4, 1, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 2),
    ((1, 5, 17), (3, 5, 3), [2], [2], [1, 2], 1),
]


def _qlinear_conv(rng, x_shape, w_shape, strides, dilations, pads, group, signed=False, work=None, zero=False):
    """Random QLinearConv operands, the prepared kernel's output and onnxruntime's."""
    dt = np.int8 if signed else np.uint8
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, x_shape).astype(dt)
    w = rng.integers(-127, 128, w_shape).astype(np.int8)
    m = w_shape[0]
    bias = rng.integers(-5000, 5000, m).astype(np.int32)
    xs, ys = _scale(rng, -2, 0), _scale(rng, -1, 1)
    ws = (10 ** rng.uniform(-3, -1, m)).astype(F32)
    xz, yz = dt(rng.integers(info.min, info.max + 1)), dt(rng.integers(info.min, info.max + 1))
    if zero:  # the zero points of ReLU outputs: the kernel skips subtracting / adding them
        xz, yz = dt(0), dt(0)
    wz = np.zeros(m, np.int8)
    spatial = len(x_shape) - 2
    attrs = {"strides": strides, "dilations": dilations, "pads": pads, "group": group}
    consts = {"xs": xs, "xz": xz, "w": w, "ws": ws, "wz": wz, "ys": ys, "yz": yz, "b": bias}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], **attrs)
    out_type = TensorProto.INT8 if signed else TensorProto.UINT8
    want = _run(node, {"x": x}, consts, None, out_type)
    kernel = PreparedConv.build(
        x.shape, x.dtype, xz, xs, w, wz, ws, ys, yz, bias, strides=strides, dilations=dilations,
        pads_begin=pads[:spatial], pads_end=pads[spatial:], group=group, name="conv", work=work,
    )  # fmt: skip
    return kernel, x, want


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_prepared_conv_matches_onnxruntime(case, signed):
    rng = np.random.default_rng(case + 100 * signed)
    kernel, x, want = _qlinear_conv(rng, *CONVS[case], signed=signed)
    got = kernel(x)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    assert np.array_equal(kernel(x), got)  # a prepared kernel is reusable


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("case", [0, 3, 7, 10])
def test_prepared_conv_with_zero_points_of_zero(case, signed):
    kernel, x, want = _qlinear_conv(np.random.default_rng(case), *CONVS[case], signed=signed, zero=True)
    assert np.array_equal(kernel(x), want)


def test_kernels_sharing_work_buffers_stay_exact():
    """Kernels of one session share columns and accumulators: called in turn, each still gives onnxruntime's
    output (a larger layer grows the shared arrays, a smaller one reuses their start)."""
    rng = np.random.default_rng(11)
    work = WorkBuffers()
    layers = [_qlinear_conv(rng, *CONVS[i], work=work) for i in (2, 3, 4, 7, 11, 2)]
    for _ in range(2):
        for kernel, x, want in layers:
            assert np.array_equal(kernel(x), want)


def test_prepared_conv_splits_channels_where_one_float32_gemm_is_not_exact():
    # 600 channels x 9 taps of weights in [-127, 127] against x - zp up to 252: one dot product's partial sums
    # can reach about 600 * 9 / 2 * 64 * 252 ~ 4.4e7 > 2^24, so the channels are split into exact chunks
    rng = np.random.default_rng(5)
    kernel, x, want = _qlinear_conv(rng, (1, 600, 5, 4), (7, 600, 3, 3), [1, 1], [1, 1], [1, 1, 1, 1], 1)
    assert len(kernel.chunks) > 1
    assert np.array_equal(kernel(x), want)


def test_prepared_conv_with_a_bias_beyond_float32_integers():
    # |bias| >= 2^24 is not exact in float32: acc + bias is formed in float64, then rounded once
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (1, 3, 4, 4)).astype(np.uint8)
    w = rng.integers(-127, 128, (2, 3, 1, 1)).astype(np.int8)
    bias = np.array([2**24 + 3, -(2**25) - 7], np.int32)
    ws, wz, xs, ys = np.full(2, 1e-3, F32), np.zeros(2, np.int8), F32(0.5), F32(2.0**17)
    consts = {"xs": xs, "xz": np.uint8(9), "w": w, "ws": ws, "wz": wz, "ys": ys, "yz": np.uint8(128), "b": bias}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"])
    want = _run(node, {"x": x}, consts, None)
    kernel = PreparedConv.build(
        x.shape, x.dtype, np.uint8(9), xs, w, wz, ws, ys, np.uint8(128), bias, strides=[1, 1], dilations=[1, 1],
        pads_begin=[0, 0], pads_end=[0, 0], group=1, name="conv",
    )  # fmt: skip
    assert kernel.requant.bias32 is None
    assert np.array_equal(kernel(x), want)


def test_prepared_conv_reports_int32_overflow():
    # 255 * -128 + (-2^31 + 100) = -2^31 - 32540 leaves int32
    x = np.full((1, 1, 1, 1), 255, np.uint8)
    w = np.full((1, 1, 1, 1), -128, np.int8)
    kernel = PreparedConv.build(
        x.shape, x.dtype, 0, 1.0, w, 0, F32(1.0), 1.0, np.uint8(0), np.array([-(2**31) + 100]), strides=[1, 1],
        dilations=[1, 1], pads_begin=[0, 0], pads_end=[0, 0], group=1, name="c",
    )  # fmt: skip
    with pytest.raises(K.AccumulatorOverflow, match="c"):
        kernel(x)


def test_centred_range_covers_every_value_of_the_dtype():
    assert centred_range(np.uint8, 0) == (0, 255)
    assert centred_range(np.uint8, 200) == (-200, 55)
    assert centred_range(np.int8, -128) == (0, 255)


@pytest.mark.parametrize("depth", [33, 4000])
def test_prepared_matmul_matches_onnxruntime(depth):
    rng = np.random.default_rng(depth)
    a = rng.integers(0, 256, (3, depth)).astype(np.uint8)
    b = rng.integers(-128, 128, (depth, 7)).astype(np.int8)
    sa, sb, sy = _scale(rng), (10 ** rng.uniform(-3, -1, 7)).astype(F32), _scale(rng, 0, 2)
    za, zy, zb = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256)), np.zeros(7, np.int8)
    consts = {"sa": sa, "za": za, "b": b, "sb": sb, "zb": zb, "sy": sy, "zy": zy}
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    want = _run(node, {"a": a}, consts, a.shape[:1] + b.shape[1:])
    kernel = PreparedMatMul.build(a.dtype, za, sa, b, zb, sb, sy, zy, None, name="mm")
    # 4000 taps of |w| <= 128 against |a - za| <= 255 may exceed 2^24: chunks along the depth
    assert (len(kernel.chunks) > 1) == (depth == 4000)
    assert np.array_equal(kernel(a), want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_prepared_add_matches_onnxruntime(dtype):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    a, b = (rng.integers(info.min, info.max + 1, (2, 3, 40, 30)).astype(dtype) for _ in range(2))
    params = {"as": _scale(rng), "az": dtype(rng.integers(info.min, info.max + 1)), "bs": _scale(rng)}
    params |= {"bz": dtype(rng.integers(info.min, info.max + 1)), "cs": _scale(rng), "cz": dtype(3)}
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"], domain="com.microsoft")
    out_type = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    want = _run(node, {"a": a, "b": b}, params, a.shape, out_type)
    assert np.array_equal(PreparedAdd.build(dtype, *params.values())(a, b), want)


def test_session_prepares_once_and_runs_like_run_ort(tmp_path):
    """A session reuses its kernels across inputs and gives what a fresh run_ort (and onnxruntime) gives."""
    path = tmp_path / "resnet-8.onnx"
    _quantize("resnet-8", path)
    graph = load_onnx(path)
    session = prepare_ort(graph)
    reference = _session(onnx.load(str(path)))
    kernels = None
    for seed in (0, 1):
        feeds = _inputs(graph, seed)
        got = session.run(feeds)
        if kernels is None:
            kernels = {name: kernel for name, (_, kernel) in session.kernels.items()}
            assert any(isinstance(k, PreparedConv) for k in kernels.values())
        else:
            assert all(session.kernels[name][1] is kernel for name, kernel in kernels.items())
        fresh = run_ort(graph, feeds)
        for out, want in zip(graph.outputs, reference.run(None, feeds), strict=True):
            assert np.array_equal(got[out], want) and np.array_equal(fresh[out], want)


def _quantize(name: str, path) -> None:
    graph = load_model(name)
    float_path = path.with_name(f"{name}-float.onnx")
    onnx.save(graph_to_onnx(graph), str(float_path))
    x = graph.inputs[0]
    quantization.quantize_static(
        str(float_path), str(path), _Reader(x, graph.tensors[x].shape), quant_format=quantization.QuantFormat.QDQ,
        per_channel=True, activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
    )  # fmt: skip


def test_blas_threads_change_speed_not_results(tmp_path):
    path = tmp_path / "lenet-5.onnx"
    _quantize("lenet-5", path)
    graph = load_onnx(path)
    feeds = _inputs(graph, 1)
    want = _session(onnx.load(str(path))).run(None, feeds)
    got = prepare_ort(graph, blas_threads=1).run(feeds)
    assert all(np.array_equal(got[o], w) for o, w in zip(graph.outputs, want, strict=True))


def test_blas_threads_without_threadpoolctl_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes the import fail
    with pytest.raises(EdgesimError, match="threadpoolctl"):
        prepare_ort(load_model("lenet-5"), blas_threads=1)
