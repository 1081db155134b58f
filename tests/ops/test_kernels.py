"""Float kernels of the window, padding, resampling and QLinear ops against onnxruntime, on a matrix of
attribute combinations; every case also checks that the kernel's output shape and dtype are the ones shape
inference gives the estimator. And the fused-activation clamp of every op deploy.py fuses into."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from simulator.errors import EdgesimError
from simulator.graph import Node
from simulator.importers.onnx_import import onnx_to_graph
from simulator.ops import get_op
from simulator.passes.deploy import FUSING_PRODUCERS
from simulator.passes.infer_shapes import infer_shapes
from tests.helpers import make_model, tensor_info

F = np.float32
I64 = np.int64
U8, I8, I32 = np.uint8, np.int8, np.int32


def rand(*shape, seed=0):
    return np.random.default_rng(seed + len(shape) + sum(shape)).standard_normal(shape).astype(F)


def _model(op, feeds, consts, attrs, opset, n_outputs=1, order=None):
    """One-node model; ``order`` lists input names ('' for an omitted optional input), default feeds then
    constants."""
    names = order if order is not None else [*feeds, *consts]
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outputs, name="node", **attrs)
    infos = [tensor_info(k, list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype)) for k, v in feeds.items()]
    return make_model([node], infos, [helper.make_empty_tensor_value_info(o) for o in outputs], consts, opset)


def run_both(op, feeds, consts=None, attrs=None, opset=17, n_outputs=1, order=None, peer="onnxruntime"):
    """(edgesim outputs, the peer's outputs) of one node; edgesim's match shape inference. The peer is
    onnxruntime, or onnx's reference evaluator where onnxruntime refuses the attributes."""
    consts = consts or {}
    model = _model(op, feeds, consts, attrs or {}, opset, n_outputs, order)
    if peer == "reference":
        expected = ReferenceEvaluator(model).run(None, feeds)
    else:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
    graph = infer_shapes(onnx_to_graph(model, "k")[0])
    [node] = graph.order
    values = {**feeds, **consts}
    got = get_op(op).run(node, *[values[n] if n else None for n in node.inputs])
    for name, value in zip(node.outputs, got, strict=True):
        t = graph.tensors[name]
        assert (value.shape, value.dtype.name) == (t.shape, t.dtype), name
    return got, expected


def check(op, feeds, consts=None, attrs=None, opset=17, n_outputs=1, order=None, peer="onnxruntime"):
    got, expected = run_both(op, feeds, consts, attrs, opset, n_outputs, order, peer)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        scale = max(float(np.abs(e).max(initial=0)), 1.0)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * scale)


# -- Conv ------------------------------------------------------------------------------------------------

CONV = [
    ("basic", [1, 3, 9, 9], [4, 3, 3, 3], {}),
    ("pads-strides", [1, 3, 13, 11], [5, 3, 5, 3], {"pads": [2, 1, 1, 0], "strides": [2, 3]}),
    ("dilated", [2, 4, 12, 12], [6, 4, 3, 3], {"dilations": [2, 3], "pads": [1, 2, 1, 0]}),
    ("groups", [1, 8, 10, 10], [12, 2, 3, 3], {"group": 4, "pads": [1, 1, 1, 1]}),
    ("depthwise", [1, 6, 11, 11], [6, 1, 3, 3], {"group": 6, "pads": [1, 1, 1, 1]}),
    ("depthwise-multiplier", [1, 5, 15, 15], [10, 1, 3, 3], {"group": 5, "strides": [2, 2]}),
    ("same-upper", [1, 3, 17, 17], [4, 3, 4, 4], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("same-lower", [1, 3, 16, 9], [4, 3, 3, 2], {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    # onnxruntime refuses dilations with auto_pad SAME_*: checked against onnx's reference evaluator
    ("same-dilated", [1, 2, 10, 9], [3, 2, 3, 2], {"auto_pad": "SAME_LOWER", "dilations": [2, 3], "strides": [2, 1]}),
    ("valid", [1, 3, 16, 16], [4, 3, 3, 3], {"auto_pad": "VALID", "strides": [2, 2]}),
    ("pointwise", [2, 16, 7, 7], [8, 16, 1, 1], {}),
    ("stride-over-kernel", [1, 2, 11, 11], [3, 2, 2, 2], {"strides": [3, 3], "pads": [0, 0, 1, 1]}),
    ("big-pads", [1, 2, 4, 4], [3, 2, 3, 3], {"pads": [3, 3, 2, 2]}),
    ("conv1d", [1, 3, 50], [4, 3, 7], {"strides": [3], "pads": [2, 1]}),
    ("conv1d-depthwise", [2, 4, 20], [8, 1, 5], {"group": 4, "auto_pad": "SAME_LOWER"}),
    ("conv3d", [1, 4, 6, 7, 5], [6, 2, 3, 2, 3], {"group": 2, "dilations": [1, 2, 1], "pads": [1, 0, 1, 1, 1, 0]}),
]


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("case", CONV, ids=[c[0] for c in CONV])
def test_conv(case, bias):
    _, x, w, attrs = case
    consts = {"w": rand(*w, seed=1)}
    if bias:
        consts["b"] = rand(w[0], seed=2)
    check("Conv", {"x": rand(*x)}, consts, attrs, peer="reference" if case[0] == "same-dilated" else "onnxruntime")


# -- ConvTranspose ---------------------------------------------------------------------------------------

CONV_TRANSPOSE = [
    ("basic", [1, 3, 5, 5], [3, 4, 3, 3], {}),
    ("strides-pads", [1, 8, 7, 7], [8, 4, 3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("asymmetric-pads", [1, 2, 6, 5], [2, 3, 4, 3], {"strides": [2, 3], "pads": [1, 0, 2, 1]}),
    ("output-padding-groups", [1, 8, 5, 6], [8, 2, 4, 4], {"strides": [2, 2], "output_padding": [1, 1], "group": 2}),
    ("dilations", [2, 3, 4, 4], [3, 2, 3, 2], {"strides": [3, 2], "dilations": [2, 3], "pads": [1, 1, 0, 2]}),
    ("depthwise", [1, 4, 5, 5], [4, 1, 3, 3], {"group": 4, "strides": [2, 2]}),
    ("output-shape-even", [1, 3, 4, 4], [3, 2, 4, 4], {"strides": [2, 2], "output_shape": [8, 8]}),
    # an odd total padding: the extra row / column is cropped at the start (NOTSET) or the end (SAME_UPPER)
    ("output-shape-odd", [1, 3, 4, 4], [3, 2, 3, 3], {"strides": [2, 2], "output_shape": [8, 8]}),
    (
        "output-shape-same-upper",
        [1, 3, 4, 4],
        [3, 2, 3, 3],
        {"strides": [2, 2], "output_shape": [8, 8], "auto_pad": "SAME_UPPER"},
    ),
    ("same-upper", [1, 3, 4, 5], [3, 2, 4, 4], {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("same-lower", [1, 3, 4, 5], [3, 2, 3, 3], {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ("valid", [1, 3, 4, 5], [3, 2, 3, 3], {"strides": [2, 2], "auto_pad": "VALID"}),
    ("conv1d", [1, 3, 10], [3, 5, 4], {"strides": [2], "pads": [1, 2], "output_padding": [1]}),
    ("conv3d", [1, 2, 3, 4, 3], [2, 2, 2, 3, 2], {"strides": [2, 1, 2], "pads": [0, 1, 1, 0, 0, 1]}),
]


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("case", CONV_TRANSPOSE, ids=[c[0] for c in CONV_TRANSPOSE])
def test_conv_transpose(case, bias):
    _, x, w, attrs = case
    consts = {"w": rand(*w, seed=1)}
    if bias:
        consts["b"] = rand(w[1] * attrs.get("group", 1), seed=2)
    check("ConvTranspose", {"x": rand(*x)}, consts, attrs)


# -- pooling ---------------------------------------------------------------------------------------------

POOL = [
    ("basic", [1, 3, 9, 9], {"kernel_shape": [3, 3], "strides": [2, 2]}),
    ("pads", [1, 2, 8, 7], {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1]}),
    ("ceil", [1, 2, 10, 10], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("ceil-pads", [1, 2, 13, 12], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 0, 1, 1]}),
    ("same-upper", [1, 2, 9, 8], {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("same-lower", [1, 2, 9, 8], {"kernel_shape": [2, 3], "strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ("valid", [1, 2, 9, 8], {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID"}),
    ("dilated", [1, 2, 12, 12], {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    ("dilated-ceil", [1, 2, 11, 11], {"kernel_shape": [3, 3], "dilations": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ("pool1d", [2, 3, 17], {"kernel_shape": [4], "strides": [3], "pads": [2, 1]}),
    ("pool3d", [1, 2, 6, 7, 5], {"kernel_shape": [2, 3, 2], "strides": [2, 2, 1], "pads": [1, 0, 0, 0, 1, 1]}),
]


@pytest.mark.parametrize("case", POOL, ids=[c[0] for c in POOL])
def test_maxpool(case):
    _, x, attrs = case
    check("MaxPool", {"x": rand(*x)}, attrs=attrs, opset=12)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("case", [POOL[1], POOL[3], POOL[7], POOL[10]], ids=["pads", "ceil-pads", "dilated", "3d"])
def test_maxpool_indices(case, storage_order):
    _, x, attrs = case
    if storage_order and len(x) != 4:
        pytest.skip("onnxruntime implements storage_order for 2-D pooling only")
    check("MaxPool", {"x": rand(*x)}, attrs={**attrs, "storage_order": storage_order}, opset=12, n_outputs=2)


@pytest.mark.parametrize("dtype", [U8, I8])
def test_maxpool_integer(dtype):
    x = np.random.default_rng(1).integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (1, 2, 7, 7)).astype(dtype)
    check("MaxPool", {"x": x}, attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, opset=12)


@pytest.mark.parametrize("include_pad", [0, 1], ids=["exclude-pad", "include-pad"])
@pytest.mark.parametrize("case", POOL, ids=[c[0] for c in POOL])
def test_average_pool(case, include_pad):
    _, x, attrs = case
    check("AveragePool", {"x": rand(*x)}, attrs={**attrs, "count_include_pad": include_pad}, opset=19)


# -- Pad -------------------------------------------------------------------------------------------------

PADS = [
    ("positive", [0, 1, 2, 3, 0, 2, 1, 0]),
    ("negative", [0, -1, 2, -3, 0, 1, -2, 2]),
    ("crop-only", [0, 0, -1, -2, 0, 0, -3, 0]),
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PADS, ids=[p[0] for p in PADS])
def test_pad(pads, mode):
    x = rand(1, 3, 6, 7)
    consts = {"pads": np.array(pads[1], I64)}
    order = ["x", "pads"]
    if mode == "constant":
        consts["value"] = np.array(1.5, F)
        order.append("value")
    check("Pad", {"x": x}, consts, {"mode": mode}, opset=19, order=order)


def test_pad_axes_input_and_integers():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    consts = {"pads": np.array([1, 2, 0, 1], I64), "value": np.array(-7, np.int32), "axes": np.array([-1, 0], I64)}
    check("Pad", {"x": x}, consts, {}, opset=18)


def test_pad_opset2_attributes():
    check("Pad", {"x": rand(2, 5)}, attrs={"pads": [1, 0, 2, 3], "mode": "constant", "value": 2.5}, opset=2)
    check("Pad", {"x": rand(2, 5)}, attrs={"pads": [0, 2, 1, 3], "mode": "reflect"}, opset=2)


# -- Resize ----------------------------------------------------------------------------------------------

COORDINATES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (id, input shape, scales or None, sizes or None)
RESIZES = [
    ("up2", [1, 2, 4, 5], [1, 1, 2, 2], None),
    ("up-odd", [1, 2, 5, 4], [1, 1, 1.5, 2.75], None),
    ("down", [1, 2, 9, 10], [1, 1, 0.5, 0.6], None),
    ("sizes", [2, 3, 6, 5], None, [2, 3, 13, 3]),
    ("to-one", [1, 1, 5, 6], None, [1, 1, 1, 4]),
]


def _resize(x_shape, scales, sizes, attrs, opset=19):
    consts = {"roi": np.array([], F), "scales": np.array(scales or [], F)}
    order = ["x", "roi", "scales"]
    if sizes is not None:
        consts["sizes"] = np.array(sizes, I64)
        order.append("sizes")
    return {"x": rand(*x_shape)}, consts, attrs, opset, order


@pytest.mark.parametrize("nearest", NEAREST)
@pytest.mark.parametrize("coordinates", COORDINATES)
@pytest.mark.parametrize("case", RESIZES, ids=[c[0] for c in RESIZES])
def test_resize_nearest(case, coordinates, nearest):
    _, x, scales, sizes = case
    attrs = {"mode": "nearest", "coordinate_transformation_mode": coordinates, "nearest_mode": nearest}
    feeds, consts, attrs, opset, order = _resize(x, scales, sizes, attrs)
    check("Resize", feeds, consts, attrs, opset, order=order)


@pytest.mark.parametrize("coordinates", COORDINATES)
@pytest.mark.parametrize("case", RESIZES, ids=[c[0] for c in RESIZES])
def test_resize_linear(case, coordinates):
    _, x, scales, sizes = case
    feeds, consts, attrs, opset, order = _resize(
        x, scales, sizes, {"mode": "linear", "coordinate_transformation_mode": coordinates}
    )
    check("Resize", feeds, consts, attrs, opset, order=order)


@pytest.mark.parametrize("exclude_outside", [0, 1])
@pytest.mark.parametrize("a", [-0.75, -0.5])
@pytest.mark.parametrize("case", RESIZES[:4], ids=[c[0] for c in RESIZES[:4]])
def test_resize_cubic(case, a, exclude_outside):
    _, x, scales, sizes = case
    attrs = {"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": exclude_outside}
    feeds, consts, attrs, opset, order = _resize(x, scales, sizes, attrs)
    check("Resize", feeds, consts, attrs, opset, order=order)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_tf_crop_and_resize(mode):
    consts = {"roi": np.array([0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], F), "scales": np.array([], F)}
    consts["sizes"] = np.array([1, 2, 7, 8], I64)
    attrs = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -3.0}
    check("Resize", {"x": rand(1, 2, 6, 5)}, consts, attrs, 19, order=["x", "roi", "scales", "sizes"])


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
def test_resize_axes_and_aspect_ratio(policy):
    consts = {"roi": np.array([], F), "scales": np.array([], F), "sizes": np.array([9, 7], I64)}
    attrs = {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": policy}
    check("Resize", {"x": rand(1, 2, 5, 4)}, consts, attrs, 19, order=["x", "roi", "scales", "sizes"])


@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 0.4], [1, 1, 1.7, 0.75]], ids=["up", "down", "mixed"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(mode, scales):
    check("Resize", {"x": rand(1, 2, 6, 5)}, {"scales": np.array(scales, F)}, {"mode": mode}, opset=10)


def test_resize_unsupported_mode_is_an_edgesim_error():
    node = Node("up", "Resize", ["x", "", "s"], ["y"], {"mode": "linear", "antialias": 1})
    with pytest.raises(EdgesimError, match="node 'up' \\(Resize\\): antialiased downsampling"):
        get_op("Resize").run(node, rand(1, 1, 4, 4), None, np.array([1, 1, 0.5, 0.5], F))
    node = Node("up", "Resize", ["x", "", "s"], ["y"], {"mode": "area"})
    with pytest.raises(EdgesimError, match="mode 'area' is not one of nearest, linear, cubic"):
        get_op("Resize").run(node, rand(1, 1, 4, 4), None, np.array([1, 1, 2, 2], F))


def test_pad_unknown_mode_is_an_edgesim_error():
    node = Node("p", "Pad", ["x", "pads"], ["y"], {"mode": "mirror"})
    with pytest.raises(EdgesimError, match="node 'p' \\(Pad\\): mode 'mirror'"):
        get_op("Pad").run(node, rand(2, 2), np.array([1, 1, 1, 1], I64))


# -- QLinearConv / QLinearMatMul -------------------------------------------------------------------------


def _ints(dtype, shape, seed):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def check_quantized(op, feeds, consts, attrs, order):
    """Exact, except where float rounding of the requantize multiplier moves a value across a .5 tie:
    onnxruntime accumulates in int32 and scales by a float32 x_scale * w_scale / y_scale."""
    got, expected = run_both(op, feeds, consts, attrs, opset=13, order=order)
    assert got[0].dtype == expected[0].dtype and got[0].shape == expected[0].shape
    diff = np.abs(got[0].astype(np.int32) - expected[0].astype(np.int32))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
    return got[0]


# (id, x dtype, w dtype, y dtype, per-channel weights, groups, bias)
QCONV = [
    ("u8-i8", U8, I8, U8, False, 1, True),
    ("u8-i8-per-channel", U8, I8, U8, True, 1, True),
    ("i8-i8-grouped", I8, I8, I8, False, 2, True),
    ("u8-u8-nobias", U8, U8, U8, False, 1, False),
    ("i8-depthwise-per-channel", I8, I8, I8, True, 4, True),
]


@pytest.mark.parametrize("case", QCONV, ids=[c[0] for c in QCONV])
def test_qlinear_conv(case):
    _, xt, wt, yt, per_channel, groups, bias = case
    cout = 4 if groups == 4 else 6
    w = _ints(wt, (cout, 4 // groups, 3, 3), 2)
    w_scale = np.linspace(0.004, 0.02, cout).astype(F) if per_channel else np.array(0.01, F)
    zero = {U8: 128, I8: 0}
    consts = {
        "xs": np.array(0.05, F), "xz": np.array(zero[xt] - 3, xt), "w": w, "ws": w_scale,
        "wz": np.zeros(cout, wt) if per_channel else np.array(zero[wt], wt),
        "ys": np.array(0.05, F), "yz": np.array(zero[yt] + 5, yt),
    }  # fmt: skip
    order = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias:
        consts["b"] = np.random.default_rng(4).integers(-2000, 2000, cout).astype(I32)
        order.append("b")
    attrs = {"group": groups, "pads": [1, 0, 1, 1], "strides": [2, 1]}
    y = check_quantized("QLinearConv", {"x": _ints(xt, (1, 4, 9, 8), 1)}, consts, attrs, order)
    info = np.iinfo(yt)
    assert y.min() == info.min and y.max() == info.max  # the scales were chosen so that outputs saturate


QMATMUL = [
    ("u8-u8", U8, U8, U8, [3, 7], [7, 5], False),
    ("u8-i8-batched", U8, I8, U8, [2, 3, 7], [7, 5], False),
    ("i8-i8-per-column", I8, I8, I8, [4, 6], [6, 3], True),
]


@pytest.mark.parametrize("case", QMATMUL, ids=[c[0] for c in QMATMUL])
def test_qlinear_matmul(case):
    _, at, bt, yt, a_shape, b_shape, per_column = case
    zero = {U8: 128, I8: 0}
    n = b_shape[-1]
    consts = {
        "as": np.array(0.02, F), "az": np.array(zero[at] + 2, at), "b": _ints(bt, b_shape, 2),
        "bs": np.linspace(0.01, 0.03, n).astype(F) if per_column else np.array(0.015, F),
        "bz": np.zeros(n, bt) if per_column else np.array(zero[bt] - 1, bt),
        "ys": np.array(0.3, F), "yz": np.array(zero[yt] - 4, yt),
    }  # fmt: skip
    order = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    check_quantized("QLinearMatMul", {"a": _ints(at, a_shape, 1)}, consts, {}, order)


# -- fused activations -----------------------------------------------------------------------------------

# one node per op deploy.py fuses into: (op, activation inputs, constant inputs, attrs)
FUSED = {
    "Conv": ([[1, 3, 6, 6]], {"w": rand(4, 3, 3, 3)}, {"pads": [1, 1, 1, 1]}),
    "ConvTranspose": ([[1, 3, 4, 4]], {"w": rand(3, 2, 3, 3)}, {"strides": [2, 2]}),
    "Gemm": ([[3, 5]], {"b": rand(4, 5), "c": rand(4)}, {"transB": 1}),
    "MatMul": ([[2, 3, 5]], {"b": rand(5, 4)}, {}),
    "Add": ([[2, 8], [8]], {}, {}),
    "Sub": ([[2, 8], [8]], {}, {}),
    "Mul": ([[2, 8], [8]], {}, {}),
    "MaxPool": ([[1, 2, 6, 6]], {}, {"kernel_shape": [2, 2]}),
    "AveragePool": ([[1, 2, 6, 6]], {}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
}


def test_every_fusing_producer_has_a_fused_case():
    assert set(FUSED) == set(FUSING_PRODUCERS)


@pytest.mark.parametrize("bounds", [(0.0, float("inf")), (0.0, 6.0), (-0.5, 0.25)], ids=["relu", "relu6", "clip"])
@pytest.mark.parametrize("op", sorted(FUSED))
def test_fused_activation_is_applied(op, bounds):
    shapes, consts, attrs = FUSED[op]
    inputs = [rand(*s, seed=i) * 4 for i, s in enumerate(shapes)] + list(consts.values())
    kernel = get_op(op)
    plain = kernel.run(Node("n", op, [], ["y"], attrs), *inputs)[0]
    fused = kernel.run(Node("n", op, [], ["y"], {**attrs, "activation": bounds}), *inputs)[0]
    assert fused.dtype == plain.dtype
    np.testing.assert_array_equal(fused, np.clip(plain, *bounds))
    assert (plain < bounds[0]).any() or (plain > bounds[1]).any()  # the clamp did something


# -- multi-output and folding-only ops ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, k, attrs",
    [
        ([3, 7], 3, {"axis": 1}),
        ([5, 4], 2, {"axis": 0, "largest": 0}),
        ([2, 6], 6, {}),  # k = the whole axis: a full sort
    ],
)
def test_topk_values_and_indices(shape, k, attrs):
    # integers in a small range: ties, which must keep the lower index first
    x = np.random.default_rng(1).integers(-3, 4, shape).astype(F)
    check("TopK", {"x": x}, {"k": np.array([k], I64)}, attrs, n_outputs=2)


@pytest.mark.parametrize(
    "split, attrs, opset",
    [
        (np.array([2, 3, 1], I64), {"axis": 1}, 17),
        (None, {"axis": 0}, 17),  # equal pieces
        (None, {"axis": 1, "num_outputs": 3}, 18),  # 7 = 3 + 3 + 1
    ],
)
def test_split_pieces(split, attrs, opset):
    x = rand(6, 7) if split is None and "num_outputs" in attrs else rand(6, 6)
    consts = {} if split is None else {"split": split}
    check("Split", {"x": x}, consts, attrs, opset=opset, n_outputs=3)


def test_layer_normalization_mean_and_inverse_std_outputs():
    x, scale, bias = rand(2, 3, 8), rand(8, seed=1), rand(8, seed=2)
    check("LayerNormalization", {"x": x}, {"s": scale, "b": bias}, {"axis": -1}, n_outputs=3)


@pytest.mark.parametrize("start, limit, delta, dtype", [(0, 10, 3, I64), (5, -4, -2, I64), (0.5, 2.0, 0.25, F)])
def test_range_folds_to_its_values(start, limit, delta, dtype):
    model = make_model(
        [helper.make_node("Range", ["a", "b", "c"], ["r"]), helper.make_node("Add", ["x", "r"], ["y"])],
        [tensor_info("x", [1], helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))],
        [helper.make_empty_tensor_value_info("y")],
        {"a": np.array(start, dtype), "b": np.array(limit, dtype), "c": np.array(delta, dtype)},
    )
    graph = infer_shapes(onnx_to_graph(model, "r")[0])
    assert [n.op_type for n in graph.order] == ["Add"]  # the Range folded away
    expected = np.arange(start, limit, delta, dtype=dtype)
    np.testing.assert_array_equal(graph.tensors["r"].data, expected)
    assert graph.tensors["y"].shape == expected.shape
