"""The tflm integer executor on graphs quantized by edgesim's own quantize pass.

The kernels are proven bit for bit on the TFLite vectors (test_tflm_vectors.py); here the wiring is checked
against an independent computation: the float executor on the same fake-quantized graph, whose every
quantized activation is rounded to its grid. Integer and fake-quantized runs may differ only where TFLite's
fixed-point requantization rounds differently from float rounding: at most one level per layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.execute import tflm_kernels
from simulator.execute.float_exec import run_graph
from simulator.execute.int_exec import run_tflm, run_tflm_float
from simulator.fidelity import load_dataset
from simulator.importers import load_model
from simulator.passes.deploy import for_deployment
from simulator.plan import apply_plan, load_plan, parse_plan
from tests.helpers import logit_level_differences

INT8 = parse_plan(
    {"passes": [{"pass": "quantize", "weights": {"bits": 8}, "activations": {"bits": 8, "symmetric": False}}]}, "int8"
)


@pytest.fixture(scope="module", params=["digits-mlp", "digits-cnn"])
def quantized(request):
    graph = load_model(request.param)
    data = load_dataset(graph)
    return apply_plan(graph, INT8, data.feeds[:64]), data


def test_integer_logits_match_the_fake_quantized_float_run(quantized):
    graph, data = quantized
    logits = "fc3" if "fc3" in graph.tensors else "fc"
    _, quant = run_tflm(graph, data.feeds[0], keep=True)
    assert quant[logits].scale == graph.tensors[logits].quant.scale
    # the runtime fuses each Relu into its layer, so the layer's output is rounded once, on the Relu's grid
    differences = logit_level_differences(graph, data.feeds[:40], logits)
    assert differences.max() <= 1
    assert np.mean(differences == 0) > 0.97


def test_integer_accuracy_matches_float(quantized):
    graph, data = quantized
    predictions = [int(run_tflm_float(graph, f)[graph.outputs[0]].argmax()) for f in data.feeds]
    accuracy = np.mean(np.array(predictions) == data.labels)
    # the float models score 443 and 442 of 450; int8 loses at most a couple of samples
    assert accuracy >= 440 / 450


def test_asymmetric_weights_are_refused():
    graph = load_model("digits-mlp")
    plan = parse_plan(
        {"passes": [{"pass": "quantize", "weights": {"bits": 8, "symmetric": False}, "activations": {"bits": 8}}]}, "a"
    )
    quantized = apply_plan(graph, plan)
    with pytest.raises(EdgesimError, match="node 'fc1' \\(Gemm\\): its weights are asymmetric"):
        run_tflm(quantized, {"input": np.zeros((1, 64), np.float32)})


def test_an_unquantized_graph_is_refused():
    with pytest.raises(EdgesimError, match="has no quantization; quantize activations"):
        run_tflm(load_model("digits-mlp"), {"input": np.zeros((1, 64), np.float32)})


def test_an_op_without_an_int8_kernel_is_named():
    graph = load_model("mobilenet-v2")
    with pytest.raises(EdgesimError, match="has no quantization|no int8 kernel"):
        run_tflm(graph, {"input": np.zeros((1, 3, 224, 224), np.float32)})


def test_residual_network_runs_in_tflm_mode():
    # ResNet-8: residual Adds (fused with their Relu) and a pooled head; the quantize pass must give the Add
    # outputs a range and tie pooling outputs to their inputs, as TFLite requires
    graph = load_model("resnet-8")
    feeds = [{"input": np.random.default_rng(i).standard_normal((1, 3, 32, 32)).astype(np.float32)} for i in range(4)]
    quantized = apply_plan(graph, INT8, feeds)
    pool = next(n for n in quantized.order if n.op_type == "AveragePool")
    assert quantized.tensors[pool.outputs[0]].quant is quantized.tensors[pool.inputs[0]].quant
    adds = [n for n in for_deployment(quantized).order if n.op_type == "Add"]
    assert adds and all(quantized.tensors[n.outputs[0]].quant is not None for n in adds)
    logits = run_tflm_float(quantized, feeds[0])[quantized.outputs[0]]
    reference = run_graph(graph, feeds[0])[graph.outputs[0]]
    assert logits.argmax() == reference.argmax()


A16W8 = load_plan(Path(__file__).resolve().parents[2] / "plans" / "a16w8-per-channel.yaml")


@pytest.mark.parametrize("plan", [INT8, A16W8], ids=["int8", "a16w8"])
def test_pad_standalone_relu_and_mul(tmp_path, plan):
    # conv -> pad -> relu (nothing to fuse into) -> mul(relu, relu) -> conv: every op beyond conv/fc, in int8
    # and in 16x8
    from onnx import helper

    from simulator.importers.onnx_import import load_onnx
    from tests.helpers import make_model, tensor_info

    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Pad", ["c", "pads"], ["p"]),
        helper.make_node("Relu", ["p"], ["r"]),
        helper.make_node("Mul", ["r", "r"], ["m"]),
        helper.make_node("Conv", ["m", "w2"], ["y"]),
    ]
    inits = {
        "w1": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((3, 4, 1, 1)).astype(np.float32),
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
    }
    path = tmp_path / "m.onnx"
    import onnx

    onnx.save(make_model(nodes, [tensor_info("x", [1, 2, 6, 6])], [tensor_info("y", None)], inits), path)
    graph = load_onnx(path)
    feeds = [{"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)} for _ in range(8)]
    quantized = apply_plan(graph, plan, feeds)
    assert quantized.tensors["p"].quant is quantized.tensors["c"].quant  # PAD shares its input's parameters
    deployed = for_deployment(quantized)
    assert [n.op_type for n in deployed.order] == ["Conv", "Pad", "Relu", "Mul", "Conv"]
    assert run_tflm(quantized, feeds[0])[0]["y"].dtype == (np.int16 if plan is A16W8 else np.int8)
    assert logit_level_differences(quantized, feeds[:4], "y").max() <= 2


def test_a_session_reused_across_inputs_equals_fresh_runs_and_the_direct_kernels():
    # a prepared session keeps each layer's constants and its elementwise tables; every run must still equal a
    # fresh run, and every tabulated Add must equal the ADD kernel called on the same integers
    from simulator.execute import int_exec

    graph = load_model("resnet-8")
    rng = np.random.default_rng(21)
    feeds = [{"input": (s * rng.standard_normal((1, 3, 32, 32))).astype(np.float32)} for s in (1.0, 0.1, 3.0)]
    quantized = apply_plan(graph, INT8, feeds[:2])
    session = int_exec.prepare_tflm(quantized)
    adds = [n for n in session.graph.order if n.op_type == "Add"]
    assert adds
    for f in feeds:
        values, quant = session.run(f, keep=True)
        fresh_values, fresh_quant = run_tflm(quantized, f, keep=True)
        assert values.keys() == fresh_values.keys() and quant.keys() == fresh_quant.keys()
        for name in values:
            np.testing.assert_array_equal(values[name], fresh_values[name])
        for node in adds:
            direct = int_exec._add_function(int_exec._Run(session.graph), node)
            np.testing.assert_array_equal(values[node.outputs[0]], direct(*(values[i] for i in node.inputs)))


def test_an_elementwise_table_gives_way_where_the_kernel_overflows():
    # ADD shifts (x - zp) left (here by 24): with zero point 127, x = -128 gives -255 * 2^24 < -2^31 (an int32
    # overflow on the chip), so no table covers every input; inputs that do not overflow still run, through the
    # kernel
    from simulator.execute import int_exec
    from simulator.execute import tflm_kernels as k
    from simulator.execute.fixedpoint import FixedPointOverflow, add_params

    params = add_params(0.5, 0.5, 1.0, left_shift=24)

    def add(a, b):
        return k.add(a, b, input1_zero_point=127, input2_zero_point=0, output_zero_point=0, **params)

    op = int_exec._tabulate(add, 2)
    assert op.table is None
    ok = np.array([100, 127], np.int8)
    np.testing.assert_array_equal(op.function(ok, ok), add(ok, ok))
    with pytest.raises(FixedPointOverflow):
        op.function(np.array([-128], np.int8), np.array([0], np.int8))
    table = int_exec._tabulate(lambda a, b: add(np.maximum(a, 0), b), 2).table
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    a8, b8 = a.astype(np.int8), b.astype(np.int8)
    np.testing.assert_array_equal(table[a8.view(np.uint8), b8.view(np.uint8)], add(np.maximum(a8, 0), b8))


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.str_])
def test_a_feed_of_another_dtype_is_refused(dtype):
    quantized = apply_plan(load_model("digits-mlp"), INT8)
    with pytest.raises(EdgesimError, match="feed 'input' has dtype .*; the tflm mode takes float values"):
        run_tflm(quantized, {"input": np.zeros((1, 64), dtype)})


def test_zoo_model_with_concatenations_runs_in_tflm_mode():
    """SqueezeNet 1.1's eight fire modules concatenate a 1x1 and a 3x3 expand of different ranges. Quantized by
    plans/int8-per-channel.yaml, every concatenation's inputs share its output's parameters (as TFLite's
    converter makes them), so the whole network runs in tflm mode, its global average pool as MEAN; the int8
    result stays within about 30 dB of float on calibration inputs and on one it was not calibrated on."""
    from pathlib import Path

    from simulator.fidelity import random_inputs, sqnr_db
    from simulator.plan import load_plan

    graph = load_model("squeezenet-1.1")
    data = random_inputs(graph, 3, seed=7)
    plan = load_plan(Path(__file__).parents[2] / "plans" / "int8-per-channel.yaml")
    quantized = apply_plan(graph, plan, data.feeds[:2])
    concats = [n for n in quantized.order if n.op_type == "Concat"]
    assert len(concats) == 8
    for node in concats:
        params = {
            (float(q.scale), int(q.zero_point))
            for q in (quantized.tensors[n].quant for n in [*node.inputs, *node.outputs])
        }
        assert len(params) == 1, node.name
    (out,) = graph.outputs
    for feeds in data.feeds:
        reference, y = run_graph(graph, feeds)[out], run_tflm_float(quantized, feeds)[out]
        assert sqnr_db(reference, y) > 25  # 29.8 to 29.9 dB
        assert reference.argmax() == y.argmax()


def test_a_session_pickles():
    # sweeps ship sessions to other processes (Dask): the prepared constants travel with it
    import pickle

    from simulator.execute.int_exec import prepare_tflm

    quantized = apply_plan(load_model("digits-cnn"), INT8)
    session = prepare_tflm(quantized)
    feeds = {"input": np.random.default_rng(0).standard_normal(quantized.tensors["input"].shape).astype(np.float32)}
    before, _ = session.run(feeds)
    copy = pickle.loads(pickle.dumps(session))
    after, _ = copy.run(feeds)
    np.testing.assert_array_equal(before["prob"], after["prob"])


def test_an_int32_accumulator_overflow_names_the_layer(tmp_path):
    # 70,000 taps of (x - zp) = 255 times w = 127 sum to 2,266,950,000 > 2^31 - 1: the chip's int32 would wrap
    import onnx
    from onnx import helper

    from simulator.importers.onnx_import import load_onnx
    from tests.helpers import make_model, tensor_info

    depth = 70_000
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="wide_fc")]
    inits = {"w": np.ones((depth, 2), np.float32)}
    path = tmp_path / "wide.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, depth])], [tensor_info("y", None)], inits), path)
    feeds = {"x": np.ones((1, depth), np.float32)}
    quantized = apply_plan(load_onnx(path), INT8, [feeds])
    assert np.all(quantized.tensors["w"].quant.scale == np.float32(1 / 127))
    with pytest.raises(EdgesimError, match=r"node 'wide_fc' \(Gemm\): fully_connected: the int32 accumulator"):
        run_tflm(quantized, feeds)


def _geometry_graph(tmp_path):
    """Convs of every geometry the NCHW path must cover: stride 2 with asymmetric pads, dilation, SAME_UPPER,
    groups, a depthwise with multiplier 2, a 1x1 with stride 2."""
    import onnx
    from onnx import helper

    from simulator.importers.onnx_import import load_onnx
    from tests.helpers import make_model, tensor_info

    rng = np.random.default_rng(41)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], strides=[2, 2], pads=[1, 0, 2, 1]),
        helper.make_node("Relu", ["a"], ["ar"]),
        helper.make_node("Conv", ["ar", "w2"], ["b"], dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Conv", ["b", "w3"], ["c"], auto_pad="SAME_UPPER", group=2),
        helper.make_node("Conv", ["c", "w4", "b4"], ["d"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Conv", ["d", "w5"], ["y"], strides=[2, 2]),
    ]
    inits = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
        "w3": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "w4": rng.standard_normal((16, 1, 3, 3)).astype(np.float32),
        "b4": rng.standard_normal(16).astype(np.float32),
        "w5": rng.standard_normal((4, 16, 1, 1)).astype(np.float32),
    }
    path = tmp_path / "geometry.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 3, 17, 14])], [tensor_info("y", None)], inits), path)
    return load_onnx(path)


CONV_KERNELS = (tflm_kernels.conv2d, tflm_kernels.depthwise_conv2d)


@pytest.mark.parametrize("model", ["geometry", "ds-cnn", "mobilenet-v1-0.25-vww", "resnet-8"])
@pytest.mark.parametrize("plan", ["int8-per-channel.yaml", "w4a8-per-channel.yaml"])
def test_the_nchw_blas_convs_equal_the_nhwc_reference_kernels(model, plan, tmp_path, monkeypatch):
    # every integer tensor of a run through the prepared NCHW convs equals the run through tflm_kernels' conv2d /
    # depthwise_conv2d (the kernels proven on the TFLite vectors and against tflite-micro)
    from simulator.execute import int_exec

    graph = _geometry_graph(tmp_path) if model == "geometry" else load_model(model)
    x = graph.inputs[0]
    rng = np.random.default_rng(5)
    feeds = [{x: rng.standard_normal(graph.tensors[x].shape).astype(np.float32)} for _ in range(3)]
    quantized = apply_plan(graph, load_plan(Path(__file__).parents[2] / "plans" / plan), feeds[:2])
    session = int_exec.prepare_tflm(quantized)
    fast = [session.run(f, keep=True)[0] for f in feeds]
    convs = [v for v in session._prepared.values() if isinstance(v, int_exec._Layer) and v.kernel in CONV_KERNELS]
    assert convs and all(layer.nchw is not None for layer in convs)  # the NCHW path ran every conv
    monkeypatch.setattr(int_exec._NchwConv, "build", staticmethod(lambda *args: None))
    reference = int_exec.prepare_tflm(quantized)
    for f, values in zip(feeds, fast, strict=True):
        want, _ = reference.run(f, keep=True)
        assert values.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(values[name], want[name], err_msg=name)


@pytest.mark.parametrize(
    "zero_point, reason",
    [(np.asarray(0, np.uint8), "uint8; the tflm mode runs int8 or int16"), (np.asarray(5, np.int16), "zero point 5")],
)
def test_quantize_linear_outside_tflites_scheme_is_refused_by_name(zero_point, reason):
    """A QuantizeLinear to uint8, or to int16 with a zero point, has no TFLM QUANTIZE: one line naming it."""
    pytest.importorskip("tflite")
    from simulator.graph import Tensor

    graph = load_model(str(Path(__file__).parents[1] / "data" / "tflite" / "float_io_quantize_ties.tflite"))
    first = graph.order[0]
    tensors = dict(graph.tensors)
    tensors[first.inputs[2]] = Tensor.from_array(first.inputs[2], zero_point)
    (inp,) = graph.inputs
    with pytest.raises(EdgesimError, match=f"node '{first.name}' \\(QuantizeLinear\\): .*{reason}"):
        run_tflm(graph.replace(tensors=tensors), {inp: np.zeros(graph.tensors[inp].shape, np.float32)})


def test_a_softmax_input_scale_tflm_refuses_is_named(tmp_path):
    # TFLM's softmax scales its input by s * 2^26 through QuantizeMultiplierGreaterThanOne, which checks the
    # product exceeds 1 (tflite-micro aborts the process otherwise): logits of tiny weights have a scale near 1e-9
    import onnx
    from onnx import helper

    from simulator.importers.onnx_import import load_onnx
    from tests.helpers import make_model, tensor_info

    nodes = [helper.make_node("Gemm", ["x", "w"], ["z"]), helper.make_node("Softmax", ["z"], ["y"], name="probs")]
    inits = {"w": np.linspace(-1e-9, 1e-9, 40, dtype=np.float32).reshape(4, 10)}
    path = tmp_path / "tiny.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("y", None)], inits), path)
    feeds = [{"x": np.random.default_rng(i).standard_normal((1, 4)).astype(np.float32)} for i in range(4)]
    quantized = apply_plan(load_onnx(path), INT8, feeds)
    assert float(quantized.tensors["z"].quant.scale) * 2**26 < 1
    with pytest.raises(EdgesimError, match=r"node 'probs' \(Softmax\): TFLM refuses its parameters: multiplier"):
        run_tflm(quantized, feeds[0])
