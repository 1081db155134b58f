"""TFLite import: the layouts and counts of the committed int8, 16x8 and int4-weight fixtures (tests/data/tflite/, built by
scripts/make_tflite_fixtures.py), quantization carried onto every tensor, and one-line errors for files that
are not TFLite models or use an op the importer does not map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite")

from simulator.errors import EdgesimError  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.summary import count  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"


def _load(name: str):
    return load_model(str(DATA / f"{name}.tflite"))


# (params, MACs) by hand: a conv has O*I/g*kh*kw weights + O biases and out_pixels * O * I/g*kh*kw MACs
HAND_COUNTS = {
    # 12x12x3 -> Conv 8 3x3 stride 2 SAME -> 6x6x8
    "conv": (8 * 3 * 3 * 3 + 8, 6 * 6 * 8 * 27),
    # 10x9x4 -> Conv 6 3x2 VALID -> 8x8x6
    "conv_valid_relu6": (6 * 4 * 3 * 2 + 6, 8 * 8 * 6 * 24),
    # 10x10x4 -> depthwise 3x3, multiplier 2, SAME -> 10x10x8
    "depthwise": (8 * 9 + 8, 10 * 10 * 8 * 9),
    # 11x11x6 -> depthwise 3x3 stride 2 SAME -> 6x6x6
    "depthwise_stride2": (6 * 9 + 6, 6 * 6 * 6 * 9),
    # 12x12x2 -> Conv 4 3x3 dilation 2 SAME -> 12x12x4
    "conv_dilated": (4 * 2 * 9 + 4, 12 * 12 * 4 * 18),
    "dense": (20 * 10 + 10, 20 * 10),
    # two convs on 8x8x4 (1x1 and 3x3, 4 filters each), then Add (no MACs)
    "add": ((16 + 4) + (144 + 4), 64 * 4 * 4 + 64 * 4 * 36),
    "maxpool": (0, 0),
    "avgpool": (0, 0),
    "softmax": (16 * 16 + 16, 16 * 16),
    # conv 3->8 3x3 s2 (16x16 -> 8x8), depthwise 3x3, conv 1x1 8->8, add, pools to 2x2x8, dense 32->12->5
    "cnn": (
        (216 + 8) + (72 + 8) + (64 + 8) + (32 * 12 + 12) + (12 * 5 + 5),
        64 * 8 * 27 + 64 * 8 * 9 + 64 * 8 * 8 + 32 * 12 + 12 * 5,
    ),
    # dense 12->32, RESHAPE to 4x4x2, conv 2->4 3x3 SAME, softmax over channels
    "reshape_conv_softmax": ((12 * 32 + 32) + (4 * 2 * 9 + 4), 12 * 32 + 16 * 4 * 18),
    "mean_global": (0, 0),
    # 6x6x3 -> Conv 8 3x3 VALID -> 4x4x8 -> LOGISTIC
    "logistic": (8 * 27 + 8, 16 * 8 * 27),
    # 6x6x3 -> Conv 8 3x3 SAME -> 6x6x8 -> HARD_SWISH
    "hard_swish": (8 * 27 + 8, 36 * 8 * 27),
    # 7x5x4 -> Conv 6 3x3 VALID -> 5x3x6 -> MEAN over H, W
    "mean_keepdims": (6 * 36 + 6, 15 * 6 * 36),
    # 5x6x8 -> Conv 8 1x1 -> MEAN over channels
    "mean_channels": (8 * 8 + 8, 30 * 8 * 8),
    # 6x6x3 -> Conv 4 1x1 and Conv 6 3x3 SAME -> CONCATENATION (10 channels) -> Conv 5 1x1
    "concat": ((12 + 4) + (162 + 6) + (50 + 5), 36 * 4 * 3 + 36 * 6 * 27 + 36 * 5 * 10),
    # 16x16x1 -> Conv 1 1x1 -> activation
    "logistic_levels": (1 + 1, 256),
    "hard_swish_levels": (1 + 1, 256),
    # 6x6x3 -> Conv 4 1x1 and Conv 4 3x3 SAME -> MUL of the two
    "mul": ((12 + 4) + (108 + 4), 36 * 4 * 3 + 36 * 4 * 27),
    # 6x6x3 -> MaxPool 2 -> MUL by a constant of 3 factors (one per channel: 3 parameters, no MACs)
    "mul_const": (3, 0),
    # 5x4x3 -> Conv 4 1x1 -> PAD / PADV2 (its value is not a parameter)
    "pad": (12 + 4, 20 * 4 * 3),
    "padv2": (12 + 4, 20 * 4 * 3),
    # 6x6x3 -> Conv 4 1x1 + Conv 4 3x3 SAME -> ADD -> RELU -> Conv 3 1x1; ADD -> two pools -> CONCATENATION (8
    # channels) -> RELU6 -> Conv 3 1x1; ADD of the two
    "relu_concat": ((12 + 4) + (108 + 4) + (12 + 3) + (24 + 3), 36 * (4 * 3 + 4 * 27 + 3 * 4 + 3 * 8)),
    # 8x8x4 -> MaxPool 1x1 (QUANTIZE / DEQUANTIZE around it in float_io_: their scales are not parameters)
    "quantize_ties": (0, 0),
    "tanh": (0, 0),
    "tanh_levels": (2, 256),  # 16x16x1 -> Conv 1 1x1 (weight and bias) -> TANH
    # 5x5x3 -> Conv2DTranspose 4 3x3 stride 2 SAME (10x10): every input element scatters 4 * 9 products
    "conv_transpose": (3 * 4 * 9 + 4, 25 * 3 * 4 * 9),
    # 6x6x3 -> Conv 4 1x1 -> PRELU with one slope per channel (shared over H and W)
    "prelu": (12 + 4 + 4, 36 * 4 * 3),
    # 6x6x3 -> Conv 4 3x3 VALID (4x4) -> Flatten (SHAPE / STRIDED_SLICE / PACK folded) -> Dense 5
    "flatten_dynamic": ((108 + 4) + (64 * 5 + 5), 16 * 4 * 27 + 64 * 5),
    # 5x12 -> q, k, v Dense 8 (keep_num_dims FC) -> q k^T (5x5, K=8) * 0.35 (a 1-element constant factor)
    # -> softmax -> A v (5x8, K=5) -> Dense 6
    "attention": (3 * (96 + 8) + 1 + (48 + 6), 3 * 5 * 12 * 8 + 5 * 5 * 8 + 5 * 8 * 5 + 5 * 8 * 6),
    # 6x5x3 -> Conv 6 1x1, then only data movement
    "tensor_ops": (18 + 6, 30 * 6 * 3),
}
# the 16x8 (a16w8_) and int4-weight (w4_) fixtures are the same Keras models converted another way
A16W8 = ("conv", "depthwise", "dense", "add", "maxpool", "avgpool", "softmax", "cnn", "mean_global", "mean_keepdims",
         "tanh", "attention", "tanh_levels", "conv_transpose",
         "mean_channels", "mul", "mul_const", "pad", "relu_concat", "concat")  # fmt: skip
W4 = ("conv", "depthwise", "depthwise_stride2", "dense", "cnn")
FLOAT_IO = ("cnn", "quantize_ties")  # float_io_: float32 input and output around the same int8 model


def _mobilenet_v2_counts(alpha: float, size: int, classes: int) -> tuple[int, int]:
    """(params, MACs) of MobileNetV2 from the paper's Table 2 (Sandler et al. 2018): a 3x3 stride-2 stem, the
    bottleneck rows (t, c, n, s), a 1x1 conv to 1280; channels are ``alpha * c`` made divisible by 8 as Keras
    does (never below 90 % of the scaled value), the first block keeps t = 1 and Keras' stem stays at 32 * alpha
    rounded the same way. Batch norm is folded: every conv carries one bias per output channel. Then global
    average pooling (no MACs) and a dense layer of ``classes``."""

    def divisible(v: float) -> int:
        d = max(8, int(v + 4) // 8 * 8)
        return d + 8 if d < 0.9 * v else d

    params = macs = 0
    hw = size // 2
    c_in = divisible(32 * alpha)
    params += c_in * 3 * 9 + c_in
    macs += hw * hw * c_in * 27
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        c_out = divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c_in * t
            if t != 1:  # 1x1 expansion
                params += hidden * c_in + hidden
                macs += hw * hw * hidden * c_in
            hw = -(-hw // stride)
            params += hidden * 9 + hidden  # depthwise 3x3
            macs += hw * hw * hidden * 9
            params += c_out * hidden + c_out  # 1x1 projection
            macs += hw * hw * c_out * hidden
            c_in = c_out
    params += 1280 * c_in + 1280
    macs += hw * hw * 1280 * c_in
    return params + 1280 * classes + classes, macs + 1280 * classes


def test_the_mobilenet_v2_formula_gives_the_published_counts():
    # the paper's Table 3: 1.0 at 224 has 3.4 M parameters and 300 M multiply-adds, 0.35 at 224 59 M; torchvision's
    # mobilenet_v2 has 3,504,872 parameters (shared/reference/model-counts.md), and its convs have 17,056 output
    # channels, each with a batch norm whose two parameters folding turns into one bias: stem 32, first block
    # 32 + 16, then per block expand + depthwise + project (528, 1152, 2944, 3360, 5472, 2240 by stage), last 1280
    params, macs = _mobilenet_v2_counts(1.0, 224, 1000)
    assert params == 3_504_872 - 17_056
    assert round(macs / 1e6) == 301
    assert round(_mobilenet_v2_counts(0.35, 224, 1000)[1] / 1e6) == 59


# MobileNetV2 0.35 at 96x96 as Keras builds it (include_top=False, pooling="avg"), then dense 1280 -> 10
HAND_COUNTS["mobilenet_v2_035"] = _mobilenet_v2_counts(0.35, 96, 10)
HAND_COUNTS |= {f"a16w8_{n}": HAND_COUNTS[n] for n in A16W8} | {f"w4_{n}": HAND_COUNTS[n] for n in W4}
HAND_COUNTS |= {f"float_io_{n}": HAND_COUNTS[n] for n in FLOAT_IO} | {"a16w8_float_io_cnn": HAND_COUNTS["cnn"]}


def test_every_fixture_has_hand_counts():
    fixtures = {p.stem for p in DATA.glob("*.tflite") if not p.stem.startswith("unsupported")}
    assert fixtures == set(HAND_COUNTS)


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_counts_of_the_fixtures_match_hand_counts(name):
    counts = count(_load(name))
    assert (counts.params, counts.macs) == HAND_COUNTS[name]


def test_16x8_tensors_are_int16_activations_int8_weights_int64_biases():
    g = _load("a16w8_cnn")
    convs = [n for n in g.order if n.op_type in ("Conv", "Gemm")]
    assert len(convs) == 5
    for node in convs:
        x, w, b = (g.tensors[name].quant for name in node.inputs)
        assert (x.bits, int(x.zero_point), w.bits, b.bits) == (16, 0, 8, 64), node.name


@pytest.mark.parametrize("name", W4)
def test_int4_weights_unpack_low_nibble_first(name):
    """An INT4 weight holds ceil(n / 2) bytes; byte i carries value 2i in its low nibble and 2i + 1 in its high
    one, two's complement. Decoded here by hand from the flatbuffer and compared with the imported levels."""
    import tflite

    from simulator.execute import int_exec
    from simulator.importers.tflite_import import _Builder
    from simulator.passes.deploy import for_deployment

    data = (DATA / f"w4_{name}.tflite").read_bytes()
    builder = _Builder(tflite, tflite.Model.GetRootAsModel(data, 0), data)
    index = {tensor: i for i, tensor in builder.names.items()}
    g = for_deployment(_load(f"w4_{name}"))
    layers = [n for n in g.order if n.op_type in ("Conv", "Gemm")]
    assert layers
    for node in layers:
        t = builder.t(index[node.inputs[1]])
        assert t.Type() == 17  # TensorType INT4
        raw = builder.model.Buffers(t.Buffer()).DataAsNumpy().astype(np.int64)
        shape = tuple(t.ShapeAsNumpy())
        nibbles = np.stack([raw & 15, raw >> 4], axis=1).reshape(-1)[: int(np.prod(shape))]
        expected = np.where(nibbles > 7, nibbles - 16, nibbles).reshape(shape)
        assert raw.size == (expected.size + 1) // 2
        w, _ = int_exec._weights(g, node, 1)
        assert g.tensors[node.inputs[1]].quant.bits == 4
        if node.op_type == "Conv":
            w = w.transpose((1, 2, 3, 0) if node.attr("group") > 1 else (0, 2, 3, 1))
        assert np.array_equal(w, expected), node.name
        assert w.min() >= -7 and w.max() <= 7


def test_layouts_become_nchw_and_oihw():
    g = _load("cnn")
    assert g.tensors[g.inputs[0]].shape == (1, 3, 16, 16)
    assert g.metadata["tflite_layout"]["inputs"] == {g.inputs[0]: [0, 3, 1, 2]}
    convs = [n for n in g.order if n.op_type == "Conv"]
    assert [g.tensors[n.inputs[1]].shape for n in convs] == [(8, 3, 3, 3), (8, 1, 3, 3), (8, 8, 1, 1)]
    assert [n.attr("group") for n in convs] == [1, 8, 1]
    assert convs[0].attr("pads") == [0, 0, 1, 1]  # SAME, stride 2 on 16: the extra row and column at the end
    # FULLY_CONNECTED flattens NHWC: a Transpose back to NHWC precedes the flatten
    ops = [n.op_type for n in g.order]
    assert ops[ops.index("Gemm") - 2 : ops.index("Gemm") + 1] == ["Transpose", "Reshape", "Gemm"]
    assert all(n.attr("transB") == 1 for n in g.order if n.op_type == "Gemm")


def test_quantization_is_on_every_tensor():
    g = _load("cnn")
    for name, t in g.tensors.items():
        if t.constant and (t.dtype == "int64" or t.shape == ()):
            continue  # reshape targets, clip bounds
        assert t.quant is not None, name
    dw = next(n for n in g.order if n.op_type == "Conv" and n.attr("group") == 8)
    wq = g.tensors[dw.inputs[1]].quant
    assert wq.axis == 0 and wq.scale.shape == (8,) and wq.bits == 8 and wq.symmetric  # axis 3 -> 0
    assert g.tensors[dw.inputs[2]].quant.bits == 32
    # the dequantized float weights are whole multiples of their scales
    w = g.tensors[dw.inputs[1]]
    levels = w.data / wq.scale.reshape(-1, 1, 1, 1)
    assert np.abs(levels - np.rint(levels)).max() < 1e-4
    softmax_out = g.tensors[g.outputs[0]].quant
    assert float(softmax_out.scale) == 1 / 256 and int(softmax_out.zero_point) == -128


def test_fused_activations_become_separate_nodes():
    assert [n.op_type for n in _load("conv_valid_relu6").order] == ["Conv", "Clip"]
    g = _load("conv_valid_relu6")
    clip = g.order[1]
    assert [float(g.tensors[name].data) for name in clip.inputs[1:]] == [0.0, 6.0]
    assert [n.op_type for n in _load("dense").order] == ["Gemm", "Relu"]


def _one_line_error(path: Path) -> str:
    with pytest.raises(EdgesimError) as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_random_bytes_are_a_one_line_error(tmp_path):
    path = tmp_path / "noise.tflite"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a TFLite flatbuffer" in _one_line_error(path)


def test_corrupt_body_is_a_one_line_error(tmp_path):
    # the right identifier, a broken body: the flatbuffer readers fail deep inside
    good = (DATA / "conv.tflite").read_bytes()
    noise = np.random.default_rng(1).integers(0, 256, len(good) - 8, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.tflite"
    path.write_bytes(good[:4] + b"TFL3" + noise)
    _one_line_error(path)


def test_truncated_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "truncated.tflite"
    path.write_bytes((DATA / "cnn.tflite").read_bytes()[:600])
    _one_line_error(path)


def test_unsupported_op_names_the_op_and_its_index():
    message = _one_line_error(DATA / "unsupported_elu.tflite")
    assert "operator 1" in message and "is ELU" in message


def test_keras_flatten_on_a_dynamic_batch_folds_shape_strided_slice_pack():
    """Keras' Flatten with batch None converts to SHAPE -> STRIDED_SLICE (shrink) -> PACK -> RESHAPE: with the
    file's static shapes the three fold into the RESHAPE's constant shape, leaving conv, reshape, dense."""
    g = load_model(str(DATA / "flatten_dynamic.tflite"))
    assert [n.op_type for n in g.order] == ["Conv", "Transpose", "Reshape", "Gemm"]
    assert g.tensors[g.outputs[0]].shape == (1, 5)


def test_tensor_manipulation_ops_import_in_tflite_layout():
    ops = {n.op_type for n in load_model(str(DATA / "tensor_ops.tflite")).order}
    assert {"Slice", "Split", "Gather", "Squeeze", "Unsqueeze", "Concat", "Transpose"} <= ops
    attention = load_model(str(DATA / "attention.tflite"))
    matmuls = [n for n in attention.order if n.op_type == "MatMul"]
    assert len(matmuls) == 2 and all(not attention.tensors[i].constant for n in matmuls for i in n.inputs)
    # keep_num_dims FULLY_CONNECTED on [1, 5, 12]: flattened to [5, 12], Gemm, back to [1, 5, 8]
    assert attention.tensors[matmuls[0].inputs[0]].shape == (1, 5, 8)


def test_input_shape_is_refused_for_tflite():
    with pytest.raises(EdgesimError, match="input-shape"):
        load_model(str(DATA / "conv.tflite"), {"x": (1, 3, 12, 12)})


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_integer_executor_reads_back_the_stored_integers(name):
    """The float weights and biases give back, in the tflm executor, exactly the int8 weights (in the new
    layout) and int32 biases the flatbuffer holds."""
    import tflite

    from simulator.execute import int_exec
    from simulator.importers.tflite_import import _Builder
    from simulator.passes.deploy import for_deployment

    data = (DATA / f"{name}.tflite").read_bytes()
    builder = _Builder(tflite, tflite.Model.GetRootAsModel(data, 0), data)
    index = {tensor: i for i, tensor in builder.names.items()}
    g = for_deployment(_load(name))
    for node in g.order:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w, w_scale = int_exec._weights(g, node, 1)
        stored = builder.raw(index[node.inputs[1]])
        if node.op_type == "Conv":
            stored = stored.transpose((3, 0, 1, 2) if node.attr("group") > 1 else (0, 3, 1, 2))
        assert np.array_equal(w, stored), node.name
        x_scale = float(g.tensors[node.inputs[0]].quant.scale)
        bias = int_exec._bias(g, node, 2, x_scale, w_scale, w.shape[0])
        assert np.array_equal(bias, builder.raw(index[node.inputs[2]])), node.name


#: fixtures where tflite-micro itself leaves the float model's neighbourhood: its RELU6 clamps in the input's
#: domain and does not requantize to the output's parameters, which the converter set otherwise (relu_concat:
#: input zero point -49, output -128, so real 0 comes out 79 steps high)
TFLM_RELU6_KEEPS_INPUT_GRID = ("relu_concat",)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="TFLM's RELU6 does not requantize"))
        if n in TFLM_RELU6_KEEPS_INPUT_GRID
        else n
        for n in sorted(HAND_COUNTS)
    ],
)
def test_float_execution_agrees_with_tflm_within_two_steps(name):
    """The imported graph run in float (dequantized weights, no activation rounding) lands within two output
    quantization steps of tflite-micro's int8 result: the layouts, pads and flattens mean what TFLite means.
    A final LOGISTIC's or TANH's fixed output grid (1/256, 1/128, 2^-15) can be finer than what two steps of
    its input grid move it by (slope at most 1/4, 1), so there the input's two steps count too."""
    from simulator.execute.float_exec import run_graph

    g = _load(name)
    data = np.load(DATA / f"{name}_input.npz")
    (inp,), (out,) = g.inputs, g.outputs
    layout = g.metadata["tflite_layout"]
    x = data["input_float32"] if "input_float32" in data else data["input"]  # float_io_: what TFLM was fed
    y = run_graph(g, {inp: x.transpose(layout["inputs"][inp])})[out]
    y = y.transpose(np.argsort(layout["outputs"][out]))
    q = g.tensors[out].quant
    if q is None:  # a float output (DEQUANTIZE): TFLM's floats, steps of the grid it dequantized
        q = g.tensors[g.producers[out].inputs[0]].quant
        reference = data["tflm_output"].astype(np.float64)
    else:
        reference = (data["tflm_output"].astype(np.float64) - int(q.zero_point)) * float(q.scale)
    tolerance = 2 * float(q.scale)
    last = g.producers[out]
    if last.op_type in ("Sigmoid", "Tanh"):  # slopes at most 1/4 and 1
        slope = 0.25 if last.op_type == "Sigmoid" else 1.0
        tolerance += slope * 2 * float(g.tensors[last.inputs[0]].quant.scale)
    assert np.abs(y - reference).max() <= tolerance


def test_quantize_and_dequantize_become_linear_pairs_with_the_integer_sides_parameters():
    """A float-IO model starts with QUANTIZE and ends with DEQUANTIZE; each becomes QuantizeLinear ->
    DequantizeLinear with the int8 tensor's scale and zero point, so the graph stays float at both ends."""
    g = _load("float_io_cnn")
    first, second, *_, before_last, last = g.order
    assert [first.op_type, second.op_type, before_last.op_type, last.op_type] == [
        "QuantizeLinear", "DequantizeLinear", "QuantizeLinear", "DequantizeLinear"
    ]  # fmt: skip
    (inp,), (out,) = g.inputs, g.outputs
    assert first.inputs[0] == inp and last.outputs[0] == out
    assert g.tensors[inp].quant is None and g.tensors[out].quant is None and g.tensors[out].dtype == "float32"
    for q_node, quantized in ((first, first.outputs[0]), (before_last, before_last.inputs[0])):
        q = g.tensors[quantized].quant
        scale, zero_point = (np.asarray(g.tensors[n].data) for n in q_node.inputs[1:])
        assert scale.dtype == np.float32 and float(scale) == float(q.scale)
        assert zero_point.dtype == np.int8 and int(zero_point) == int(q.zero_point)
        assert g.tensors[q_node.outputs[0]].dtype == "int8"
    # the first pair's float output carries the int8 grid the convs read
    assert g.tensors[second.outputs[0]].quant.scale == g.tensors[first.outputs[0]].quant.scale


def test_16x8_concatenation_of_differently_scaled_inputs_requantizes_int16():
    g = _load("a16w8_concat")
    (quantize,) = [n for n in g.order if n.op_type == "QuantizeLinear"]
    source, target = g.tensors[quantize.inputs[0]].quant, g.tensors[quantize.outputs[0]].quant
    assert source.bits == target.bits == 16 and float(source.scale) != float(target.scale)
    (concat,) = [n for n in g.order if n.op_type == "Concat"]
    scales = {float(g.tensors[n].quant.scale) for n in [*concat.inputs, *concat.outputs]}
    assert len(scales) == 1
