"""ONNX import: folding (checked numerically against onnx's reference evaluator), dynamic shapes, external
data confinement, QDQ weights, unknown ops."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from simulator.errors import EdgesimError
from simulator.importers.onnx_import import load_onnx
from simulator.ops import get_op
from simulator.summary import count
from tests.helpers import make_model, tensor_info

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _bn_params(prefix, c):
    return {
        f"{prefix}_s": RNG.uniform(0.5, 1.5, c).astype(np.float32),
        f"{prefix}_b": _rand(c),
        f"{prefix}_m": _rand(c),
        f"{prefix}_v": RNG.uniform(0.5, 1.5, c).astype(np.float32),
    }


def _run_folded(graph, x):
    """Evaluate the folded edgesim graph with onnx's reference evaluator (an independent executor)."""
    nodes, inits = [], []
    for node in graph.order:
        nodes.append(helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name, **node.attrs))
        for name in node.inputs:
            t = graph.tensors[name]
            if t.constant:
                inits.append(numpy_helper.from_array(np.asarray(t.data), name))
    inp = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.outputs[0]]
    model = helper.make_model(
        helper.make_graph(
            nodes, "folded", [tensor_info(inp.name, inp.shape)], [tensor_info(out.name, out.shape)], inits
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    return ReferenceEvaluator(model).run(None, {inp.name: x})[0]


def test_conv_batchnorm_fold_is_numerically_exact(save):
    inits = {"w": _rand(8, 3, 3, 3), "b": _rand(8), **_bn_params("bn", 8)}
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["y"], epsilon=1e-3),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 8, 8, 8])], inits)
    graph = load_onnx(save(model))
    assert [n.op_type for n in graph.order] == ["Conv"]
    x = _rand(1, 3, 8, 8)
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(_run_folded(graph, x), expected, rtol=1e-4, atol=1e-5)
    # weights 8*3*3*3 plus one bias per channel; the BN's 4*8 numbers are gone
    assert count(graph).params == 8 * 27 + 8


def test_caffe_scale_chain_and_gemm_fold(save):
    # Conv (no bias) -> BN -> Mul -> Add (Caffe's Scale layer) -> Relu -> Flatten -> Gemm -> BN
    inits = {
        "w": _rand(4, 2, 1, 1),
        **_bn_params("bn", 4),
        "scale": _rand(4, 1, 1),
        "shift": _rand(4, 1, 1),
        "fc": _rand(5, 64),
        "fc_b": _rand(5),
        **_bn_params("bn2", 5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["n"]),
        helper.make_node("Mul", ["n", "scale"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fc_b"], ["g"], transB=1),
        helper.make_node("BatchNormalization", ["g", "bn2_s", "bn2_b", "bn2_m", "bn2_v"], ["y"]),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 5])], inits)
    graph = load_onnx(save(model))
    assert [n.op_type for n in graph.order] == ["Conv", "Relu", "Flatten", "Gemm"]
    x = _rand(1, 2, 4, 4)
    np.testing.assert_allclose(_run_folded(graph, x), ReferenceEvaluator(model).run(None, {"x": x})[0], rtol=1e-4)


def test_bn_not_folded_when_conv_output_is_shared(save):
    inits = {"w": _rand(4, 2, 1, 1), **_bn_params("bn", 4)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["n"]),
        helper.make_node("Add", ["c", "n"], ["y"]),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 2, 4, 4])], [tensor_info("y", [1, 4, 4, 4])], inits)
    graph = load_onnx(save(model))
    assert [n.op_type for n in graph.order] == ["Conv", "BatchNormalization", "Add"]
    # standalone BN: scale and shift per channel
    assert count(graph).params == 4 * 2 + 2 * 4


def test_shape_subgraph_is_folded(save):
    # y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])) as exporters write flatten
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    model = make_model(nodes, [tensor_info("x", [2, 3, 4, 5])], [tensor_info("y", None)], inits)
    graph = load_onnx(save(model))
    assert [n.op_type for n in graph.order] == ["Reshape"]
    assert graph.tensors["y"].shape == (2, 60)


def _dynamic_model():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return make_model(nodes, [tensor_info("x", ["batch", 3, 8, 8])], [tensor_info("y", None)])


def test_unbound_dynamic_dim_is_named(save):
    with pytest.raises(EdgesimError, match=r"input 'x' has dynamic dims 0 \(batch\); bind them with --input-shape x="):
        load_onnx(save(_dynamic_model()))


def test_bound_dynamic_dim(save):
    graph = load_onnx(save(_dynamic_model()), {"x": (4, 3, 8, 8)})
    assert graph.tensors["y"].shape == (4, 3, 8, 8)


def test_binding_an_unknown_input_lists_the_inputs(save):
    with pytest.raises(EdgesimError, match="model's inputs are x"):
        load_onnx(save(_dynamic_model()), {"image": (1, 3, 8, 8)})


def _external_model(location: str) -> onnx.ModelProto:
    w = numpy_helper.from_array(_rand(4, 4), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * 16))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "ext",
        [tensor_info("x", [1, 4])],
        [tensor_info("y", [1, 4])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_external_data_inside_the_model_directory_is_read(tmp_path):
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    (tmp_path / "weights.bin").write_bytes(values.tobytes())
    path = tmp_path / "m.onnx"
    onnx.save(_external_model("weights.bin"), path)
    graph = load_onnx(path)
    np.testing.assert_array_equal(graph.tensors["w"].data, values)
    assert count(graph).params == 16


@pytest.mark.parametrize("location", ["../secret.bin", "../../etc/passwd", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, location):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    path = model_dir / "m.onnx"
    onnx.save(_external_model(location), path)
    with pytest.raises(EdgesimError, match="outside the model's directory"):
        load_onnx(path)


def test_missing_external_data_file(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_external_model("gone.bin"), path)
    with pytest.raises(EdgesimError, match="'gone.bin', which is missing"):
        load_onnx(path)


def test_qdq_weight_keeps_its_quantization(save):
    w_int8 = RNG.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    scales = RNG.uniform(0.01, 0.1, 8).astype(np.float32)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"]),
    ]
    inits = {"wq": w_int8, "ws": scales, "wz": np.zeros(8, np.int8)}
    model = make_model(nodes, [tensor_info("x", [1, 3, 6, 6])], [tensor_info("y", None)], inits, opset=13)
    graph = load_onnx(save(model))
    assert [n.op_type for n in graph.order] == ["Conv"]
    w = graph.tensors[graph.order[0].inputs[1]]
    assert w.quant is not None and w.quant.bits == 8 and w.quant.axis == 0 and w.quant.symmetric
    np.testing.assert_allclose(w.data, w_int8.astype(np.float32) * scales[:, None, None, None])
    layer = count(graph).layers[0]
    assert layer.params == 216 and layer.weight_bytes == 216  # one byte per int8 weight


def _custom_op_model():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shrink", ["r"], ["c"]),  # a real ONNX op edgesim does not model
        helper.make_node("MatMul", ["c", "w"], ["y"]),
    ]
    return make_model(nodes, [tensor_info("x", [2, 4])], [tensor_info("y", None)], {"w": _rand(4, 3)})


def test_unknown_op_is_an_error_naming_the_node(save):
    with pytest.raises(EdgesimError, match=r"node 'Shrink_1' uses op 'Shrink'.*--allow-unknown"):
        load_onnx(save(_custom_op_model()))


def test_unknown_op_allowed_costs_nothing_and_warns(save):
    graph = load_onnx(save(_custom_op_model()), allow_unknown=True)
    counts = count(graph)
    assert graph.tensors["y"].shape == (2, 3)
    shrink = next(layer for layer in counts.layers if layer.op == "Shrink")
    assert (shrink.params, shrink.macs, shrink.ops) == (0, 0, 0) and shrink.warning
    assert counts.macs == 2 * 4 * 3
    assert any("Shrink" in w for w in counts.warnings)


def test_legacy_softmax_axis_defaults_to_one(save):
    model = make_model(
        [helper.make_node("Softmax", ["x"], ["y"])], [tensor_info("x", [2, 5])], [tensor_info("y", None)], opset=11
    )
    assert load_onnx(save(model)).order[0].attrs["axis"] == 1


def _unknown_between_dynamic_model():
    """x (dynamic N x 8) -> Relu -> Shrink -> TopK(k=4) -> MatMul: two ops edgesim does not model, whose
    output shapes exist only once N is bound (the file records none)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shrink", ["r"], ["s"], lambd=0.5),
        helper.make_node("TopK", ["s", "k"], ["v", "i"], axis=-1),
        helper.make_node("MatMul", ["v", "w"], ["y"]),
    ]
    inits = {"k": np.array([4], np.int64), "w": _rand(4, 3)}
    return make_model(nodes, [tensor_info("x", ["N", 8])], [tensor_info("y", None)], inits)


def test_allow_unknown_takes_shapes_from_onnx_inference_after_binding(save):
    graph = load_onnx(save(_unknown_between_dynamic_model()), {"x": (5, 8)}, allow_unknown=True)
    assert graph.tensors["s"].shape == (5, 8)
    assert graph.tensors["v"].shape == (5, 4) and graph.tensors["i"].dtype == "int64"
    counts = count(graph)
    assert counts.macs == 5 * 4 * 3  # the MatMul after the unknown ops is still counted
    unknown = [op for op in ("Shrink", "TopK") if get_op(op) is None]  # TopK has since gained an entry
    assert "Shrink" in unknown
    assert [layer.op for layer in counts.layers if layer.warning] == unknown
    assert len(counts.warnings) == len(unknown)


def test_dynamic_hint_names_the_dims_and_uses_the_exported_size(save):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    model = make_model(nodes, [tensor_info("x", ["N", 3, "H", "W"])], [tensor_info("y", None)])
    with pytest.raises(EdgesimError) as exc:
        load_onnx(save(model, "detector.onnx"))
    assert "dims 0 (N), 2 (H), 3 (W)" in str(exc.value) and "--input-shape x=1,3,<H>,<W>" in str(exc.value)
    with pytest.raises(EdgesimError, match=r"--input-shape x=1,3,320,480 \(batch 1; the 320x480 image size"):
        load_onnx(save(model, "detector_320x480.onnx"))
    helper.set_model_props(model, {"imgsz": "[640, 640]"})
    with pytest.raises(EdgesimError, match=r"--input-shape x=1,3,640,640 "):
        load_onnx(save(model, "detector.onnx"))


def test_dynamic_hint_binds_a_shared_batch_symbol_and_leaves_other_dims_named(save):
    """silero-vad's spelling: the state shares the input's batch symbol; a sequence length is not a batch."""
    nodes = [helper.make_node("Identity", ["audio"], ["y"]), helper.make_node("Identity", ["state"], ["s"])]
    inputs = [tensor_info("audio", ["batch", "sequence"]), tensor_info("state", [2, "batch", 128])]
    model = make_model(nodes, inputs, [tensor_info("y", None), tensor_info("s", None)])
    with pytest.raises(EdgesimError, match=r"--input-shape audio=1,<sequence> --input-shape state=2,1,128 "):
        load_onnx(save(model))
    model = make_model(nodes[:1], [tensor_info("audio", ["sequence_length", 576])], [tensor_info("y", None)])
    with pytest.raises(EdgesimError, match=r"--input-shape audio=<sequence_length>,576 \(for each <name>"):
        load_onnx(save(model))
