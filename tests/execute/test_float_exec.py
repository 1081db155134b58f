"""The float reference executor on whole models, against onnxruntime (one onnxruntime run returns every
intermediate tensor).

- Light models (the onnx wheel's, constant-filled weights): every activation tensor end to end, within
  rtol 1e-4 of onnxruntime's relative to that tensor's magnitude.
- Zoo models (random weights, exported back to ONNX): the outputs end to end (and the logits before a final
  Softmax) within rtol 1e-4, and every layer's kernel, fed onnxruntime's values of its inputs, within 1e-5.
  Deep random networks amplify float32 rounding differences on the way down (MobileNetV2's activations
  drift apart by ~1e-4 relative by block 17 although no layer is off by more than ~1e-6), so the per-layer
  check is the tight one there.
"""

from __future__ import annotations

import weakref

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper

from simulator.errors import EdgesimError
from simulator.execute import float_exec, run_graph
from simulator.graph import Graph, Node, Tensor
from simulator.importers import load_model
from simulator.importers.onnx_import import load_onnx, onnx_to_graph
from simulator.ops import get_op
from simulator.passes.deploy import for_deployment, fuse_activations
from simulator.passes.infer_shapes import infer_shapes
from tests.helpers import LIGHT_DIR, graph_to_onnx, make_model, tensor_info

LIGHT_MODELS = ["squeezenet", "resnet50", "inception_v1", "densenet121", "shufflenet"]
ZOO_MODELS = ["resnet-8", "ds-cnn", "mobilenet-v1-0.25-vww", "lenet-5", "mobilenet-v2"]


def _feeds(graph, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(graph.tensors[name].shape).astype(np.float32) for name in graph.inputs}


def _onnxruntime_all(model: onnx.ModelProto, names, feeds) -> dict[str, np.ndarray]:
    """onnxruntime's values of ``names`` (intermediate tensors made graph outputs)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.output[:]
    model.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the light models carry unused initializers onnxruntime warns about
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(list(names), feeds), strict=True))


def _close(got, expected, rtol, what):
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    scale = max(float(np.abs(expected).max(initial=0)), 1e-30)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol / 10 * scale, err_msg=what)
    return float(np.abs(got.astype(np.float64) - expected).max() / scale)


def _compare(graph, model, *, every_tensor: bool) -> float:
    """Compare with onnxruntime (see the module docstring); returns the worst end-to-end relative error."""
    feeds = _feeds(graph)
    got = run_graph(graph, feeds, keep=True)
    # a Dropout's mask is compared nowhere: before opset 10 onnxruntime returns it as float zeros
    names = [n.outputs[0] for n in graph.order]
    expected = _onnxruntime_all(model, names, feeds)
    checked = names if every_tensor else list(graph.outputs)
    last = graph.producers.get(graph.outputs[0])
    if last is not None and last.op_type == "Softmax":
        checked.append(last.inputs[0])
    worst = max(_close(got[name], expected[name], 1e-4, f"end to end: {name}") for name in checked)
    if not every_tensor:
        for node in graph.order:
            # onnxruntime's activations (graph inputs are the feeds), edgesim's constants
            inputs = [
                expected.get(n, got.get(n)) if n in got else graph.tensors[n].data if n else None for n in node.inputs
            ]
            [value, *_] = get_op(node.op_type).run(node, *inputs)
            _close(value, expected[node.outputs[0]], 1e-5, f"layer {node.name} ({node.op_type})")
    return worst


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_onnxruntime(name):
    path = LIGHT_DIR / f"light_{name}.onnx"
    graph = load_onnx(path)  # batch norm folded, constant fills folded: onnxruntime runs the original file
    _compare(graph, onnx.load(path), every_tensor=True)


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_matches_onnxruntime(name):
    graph = load_model(name)
    _compare(graph, graph_to_onnx(graph), every_tensor=False)


@pytest.mark.parametrize("name", ["mobilenet-v1-0.25-vww", "ds-cnn", "resnet-8", "squeezenet"])
def test_fused_activations_compute_what_the_graph_does(name):
    graph = load_onnx(LIGHT_DIR / f"light_{name}.onnx") if name == "squeezenet" else load_model(name)
    fused = for_deployment(graph)
    assert len(fused.order) < len(graph.order)
    assert any("activation" in n.attrs for n in fused.order)
    feeds = _feeds(graph)
    expected = run_graph(graph, feeds)
    got = run_graph(fused, feeds)
    for name in graph.outputs:
        np.testing.assert_array_equal(got[name], expected[name])


def test_fusion_into_every_producer():
    # Conv -> Relu, ConvTranspose -> Clip(0, 6), MatMul -> Relu, Add -> Clip, MaxPool -> Relu, ...
    w = np.random.default_rng(1).standard_normal((4, 4, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["c_r"]),
        helper.make_node("ConvTranspose", ["c_r", "w"], ["t"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["t", "zero", "six"], ["t_r"]),
        helper.make_node("Sub", ["t_r", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["s_r"]),
        helper.make_node("Mul", ["s_r", "x"], ["m"]),
        helper.make_node("Clip", ["m", "lo", "six"], ["m_r"]),
        helper.make_node("AveragePool", ["m_r"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a_r"]),
        helper.make_node("MaxPool", ["a_r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Clip", ["p", "lo", "six"], ["p_r"]),
        helper.make_node("Flatten", ["p_r"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["g"], transB=1),
        helper.make_node("Relu", ["g"], ["g_r"]),
        helper.make_node("MatMul", ["g_r", "mm"], ["mat"]),
        helper.make_node("Clip", ["mat", "lo", "six"], ["mat_r"]),
        helper.make_node("Add", ["mat_r", "g_r"], ["y0"]),
        helper.make_node("Relu", ["y0"], ["y1"]),
        helper.make_node("Add", ["y1", "y1"], ["y"]),
    ]
    inits = {
        "w": w, "zero": np.array(0, np.float32), "six": np.array(6, np.float32), "lo": np.array(-1, np.float32),
        "fc": np.random.default_rng(2).standard_normal((5, 36)).astype(np.float32),
        "mm": np.random.default_rng(3).standard_normal((5, 5)).astype(np.float32),
    }  # fmt: skip
    model = make_model(nodes, [tensor_info("x", [1, 4, 6, 6])], [tensor_info("y", [1, 5])], inits)
    graph = infer_shapes(onnx_to_graph(model, "chain")[0])
    fused = fuse_activations(graph)
    assert {n.op_type for n in fused.order if "activation" in n.attrs} == {
        "Conv", "ConvTranspose", "Sub", "Mul", "AveragePool", "MaxPool", "Gemm", "MatMul", "Add"
    }  # fmt: skip
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 4, 6, 6)).astype(np.float32)}
    expected = _onnxruntime_all(model, ["y"], feeds)["y"]
    np.testing.assert_allclose(run_graph(graph, feeds)["y"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(run_graph(fused, feeds)["y"], run_graph(graph, feeds)["y"])


# -- the executor's own behaviour ------------------------------------------------------------------------


def _chain(n=4):
    """x -> Relu -> Sigmoid -> Relu -> ...: n nodes, every intermediate read once."""
    tensors = {"x": Tensor("x", (2, 3))}
    nodes, previous = [], "x"
    for i in range(n):
        name = f"t{i}"
        nodes.append(Node(f"n{i}", "Relu" if i % 2 == 0 else "Sigmoid", [previous], [name]))
        tensors[name] = Tensor(name, (2, 3))
        previous = name
    return Graph("chain", nodes, tensors, ["x"], [previous])


def test_keep_returns_every_activation_and_default_only_outputs():
    graph = _chain()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    assert set(run_graph(graph, {"x": x})) == {"t3"}
    kept = run_graph(graph, {"x": x}, keep=True)
    assert set(kept) == {"x", "t0", "t1", "t2", "t3"}
    np.testing.assert_array_equal(kept["t0"], np.maximum(x, 0))


def test_tensors_are_freed_after_their_last_reader(monkeypatch):
    graph = _chain(6)
    alive: list[weakref.ref] = []
    peak = []

    class Spy:
        def __init__(self, op):
            self.op, self.has_kernel = op, True

        def run(self, node, *inputs):
            peak.append(sum(r() is not None for r in alive))
            out = self.op.run(node, *inputs)
            alive.extend(weakref.ref(v) for v in out)
            return out

    monkeypatch.setattr(float_exec, "get_op", lambda op_type: Spy(get_op(op_type)))
    run_graph(graph, {"x": np.ones((2, 3), np.float32)})
    # when a node runs, only its input is still held (the one before it was dropped)
    assert max(peak) == 1


def test_feed_errors_name_the_inputs():
    graph = _chain()
    with pytest.raises(EdgesimError, match="missing x; unknown image.*its inputs are x"):
        run_graph(graph, {"image": np.zeros((2, 3), np.float32)})
    with pytest.raises(EdgesimError, match=r"feed 'x' has shape \(3, 2\); the graph expects \(2, 3\)"):
        run_graph(graph, {"x": np.zeros((3, 2), np.float32)})
    with pytest.raises(EdgesimError, match="feed 'x' has dtype int64; the graph expects float32"):
        run_graph(graph, {"x": np.zeros((2, 3), np.int64)})
    # a wider float is narrowed to the declared dtype
    assert run_graph(graph, {"x": np.zeros((2, 3))})["t3"].dtype == np.float32


def test_an_op_without_kernel_is_named(save):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gelu", ["r"], ["y"], domain="com.example")]
    model = make_model(nodes, [tensor_info("x", [2, 3])], [tensor_info("y", [2, 3])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    graph = load_onnx(save(model), allow_unknown=True)
    with pytest.raises(EdgesimError, match=r"node 'Gelu_1' \(com.example.Gelu\): it has no float kernel"):
        run_graph(graph, {"x": np.zeros((2, 3), np.float32)})


def test_a_kernel_disagreeing_with_shape_inference_is_caught():
    graph = _chain(1)
    graph.tensors["t0"].shape = (3, 2)  # as if infer had said so
    with pytest.raises(EdgesimError, match=r"node 'n0' \(Relu\): its kernel wrote 't0' as float32\[2, 3\]"):
        run_graph(graph, {"x": np.zeros((2, 3), np.float32)})
