"""If and Loop resolved at import: the inlined / unrolled graph computes what onnxruntime computes on the
original model, costs the body once per iteration, and control flow over run-time values is a one-line error
naming the node and what to bind."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from simulator.errors import EdgesimError
from simulator.execute.float_exec import run_graph
from simulator.importers.onnx_import import onnx_to_graph
from simulator.ops import get_op
from simulator.passes.infer_shapes import infer_shapes
from tests.helpers import make_model, tensor_info

F = TensorProto.FLOAT


def _const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def _ort(model, feeds):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def _edgesim(model, feeds, values=None):
    graph = infer_shapes(onnx_to_graph(model, "cf", {k: v.shape for k, v in feeds.items()}, values)[0])
    assert not any(n.op_type in ("If", "Loop") for n in graph.nodes)
    return graph, run_graph(graph, feeds)


def _branch(name, nodes, outputs, initializers=()):
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers]
    return helper.make_graph(nodes, name, [], [helper.make_empty_tensor_value_info(o) for o in outputs], inits)


def _if_model(nested=False):
    """y = x @ W1 (then) or x * 2 (else), chosen by mode == 1; the then branch has its own initializer and
    (nested) an inner If on the input's size; the branches reuse the value name 't', as exporters do."""
    then_nodes = [helper.make_node("MatMul", ["x", "w1"], ["t"], name="then_mm")]
    inner_out = "t"
    if nested:
        inner_then = _branch("inner_then", [helper.make_node("Relu", ["t"], ["r"])], ["r"])
        inner_else = _branch("inner_else", [helper.make_node("Neg", ["t"], ["r2"])], ["r2"])
        then_nodes += [
            helper.make_node("Size", ["x"], ["n"]),
            _const("twelve", np.array(12, np.int64)),
            helper.make_node("Equal", ["n", "twelve"], ["is12"]),
            helper.make_node(
                "If", ["is12"], ["inner"], name="inner_if", then_branch=inner_then, else_branch=inner_else
            ),
        ]
        inner_out = "inner"
    w1 = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
    then = _branch("then", then_nodes, [inner_out], [("w1", w1)])
    other = _branch("else", [helper.make_node("Mul", ["x", "two"], ["t"], name="else_mul")], ["t"])
    nodes = [
        _const("one", np.array(1, np.int64)),
        _const("two", np.array(2.0, np.float32)),
        helper.make_node("Equal", ["mode", "one"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], name="choose", then_branch=then, else_branch=other),
    ]
    inputs = [tensor_info("x", [3, 4]), tensor_info("mode", [], TensorProto.INT64)]
    return make_model(nodes, inputs, [helper.make_empty_tensor_value_info("y")], opset=17)


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("mode", [1, 0])
def test_if_inlines_the_branch_a_bound_input_selects(mode, nested):
    model = _if_model(nested)
    x = np.random.default_rng(mode).standard_normal((3, 4)).astype(np.float32)
    expected = _ort(model, {"x": x, "mode": np.array(mode, np.int64)})["y"]
    graph, got = _edgesim(model, {"x": x}, {"mode": np.array(mode)})
    np.testing.assert_allclose(got["y"], expected, rtol=1e-6)
    ops = {n.op_type for n in graph.nodes}
    assert ("MatMul" in ops) == (mode == 1) and ("Mul" in ops) == (mode == 0)


def test_if_over_an_unbound_input_names_the_node_and_the_input():
    with pytest.raises(EdgesimError) as info:
        infer_shapes(onnx_to_graph(_if_model(), "cf", {"x": (3, 4)})[0])
    message = str(info.value)
    assert "node 'choose' (If): its condition 'cond' is computed at run time from input(s) mode" in message
    assert "--input-value mode=VALUE" in message and "\n" not in message


def test_if_over_data_says_it_cannot_fold():
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        _const("zero", np.array(0.0, np.float32)),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], name="data_if",
                         then_branch=_branch("a", [helper.make_node("Relu", ["x"], ["a"])], ["a"]),
                         else_branch=_branch("b", [helper.make_node("Neg", ["x"], ["b"])], ["b"])),
    ]  # fmt: skip
    model = make_model(nodes, [tensor_info("x", [2])], [helper.make_empty_tensor_value_info("y")])
    graph, _ = onnx_to_graph(model, "cf")
    # ReduceSum / Greater may be unknown to this registry; either way the If cannot fold
    with pytest.raises(EdgesimError, match="data_if|ReduceSum|Greater"):
        infer_shapes(graph)


def _loop_model(trip=4, stop_after=None):
    """acc_{i+1} = acc_i @ W + i (W an outer-scope initializer), scan output acc_i * 2 per iteration;
    with ``stop_after`` the body's condition turns false once i reaches it."""
    body_nodes = [
        helper.make_node("MatMul", ["acc_in", "w"], ["mm"]),
        helper.make_node("Cast", ["i"], ["i_f"], to=F),
        helper.make_node("Add", ["mm", "i_f"], ["acc_out"]),
        helper.make_node("Mul", ["acc_in", "scale"], ["scan"]),
    ]
    if stop_after is None:
        body_nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    else:
        body_nodes += [
            _const("limit", np.array(stop_after, np.int64)),
            helper.make_node("Equal", ["i", "limit"], ["at_limit"]),
            helper.make_node("Not", ["at_limit"], ["cond_out"]),
        ]
    body = helper.make_graph(
        body_nodes, "body",
        [tensor_info("i", [], TensorProto.INT64), tensor_info("cond_in", [], TensorProto.BOOL), tensor_info("acc_in", [2, 3])],
        [tensor_info("cond_out", [], TensorProto.BOOL), tensor_info("acc_out", [2, 3]), tensor_info("scan", [2, 3])],
        [numpy_helper.from_array(np.array(2.0, np.float32), "scale")],
    )  # fmt: skip
    nodes = [
        _const("M", np.array(trip, np.int64)),
        _const("go", np.array(True)),
        helper.make_node("Loop", ["M", "go", "acc0"], ["acc", "scans"], name="loop", body=body),
    ]
    w = (np.eye(3, dtype=np.float32) * 0.5 + 0.1).astype(np.float32)
    outs = [helper.make_empty_tensor_value_info(n) for n in ("acc", "scans")]
    return make_model(nodes, [tensor_info("acc0", [2, 3])], outs, {"w": w})


@pytest.mark.parametrize(("trip", "stop_after"), [(4, None), (1, None), (6, 2)])
def test_loop_unrolls_to_what_onnxruntime_computes(trip, stop_after):
    model = _loop_model(trip, stop_after)
    acc0 = np.random.default_rng(trip).standard_normal((2, 3)).astype(np.float32)
    expected = _ort(model, {"acc0": acc0})
    graph, got = _edgesim(model, {"acc0": acc0})
    for name in ("acc", "scans"):
        assert got[name].shape == expected[name].shape
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)
    iterations = expected["scans"].shape[0]
    assert iterations == (trip if stop_after is None else stop_after + 1)
    # cost: the body's MatMul once per iteration (2 x 3 x 3 MACs each)
    matmuls = [n for n in graph.nodes if n.op_type == "MatMul"]
    assert len(matmuls) == iterations
    op = get_op("MatMul")
    assert sum(op.macs(n, graph.input_tensors(n), graph.output_tensors(n)) for n in matmuls) == iterations * 18


def test_loop_with_a_run_time_trip_count_names_what_to_bind():
    model = _loop_model()
    node = model.graph.node[2]
    node.input[0] = "trips"
    del model.graph.node[0]
    model.graph.input.append(tensor_info("trips", [], TensorProto.INT64))
    with pytest.raises(EdgesimError, match=r"node 'loop' \(Loop\): its trip count 'trips' .*--input-value trips"):
        infer_shapes(onnx_to_graph(model, "cf", {"acc0": (2, 3)})[0])
    graph, got = _edgesim(model, {"acc0": np.ones((2, 3), np.float32)}, {"trips": np.array(3)})
    assert got["scans"].shape == (3, 2, 3)


def test_input_value_must_fit_the_declared_input():
    with pytest.raises(EdgesimError, match="--input-value mode: 2 value"):
        onnx_to_graph(_if_model(), "cf", {"x": (3, 4)}, {"mode": np.array([1, 2])})
    with pytest.raises(EdgesimError, match="--input-value names rate, but the model's inputs are x, mode"):
        onnx_to_graph(_if_model(), "cf", {"x": (3, 4)}, {"rate": np.array(1)})


def test_a_branch_reading_a_value_produced_later_in_the_file_is_ordered_after_it():
    then = _branch("then", [helper.make_node("Add", ["late", "x"], ["t"])], ["t"])
    other = _branch("else", [helper.make_node("Identity", ["x"], ["e"])], ["e"])
    nodes = [
        _const("go", np.array(True)),
        helper.make_node("If", ["go"], ["y"], name="early_if", then_branch=then, else_branch=other),
        helper.make_node("Relu", ["x"], ["late"], name="producer"),
    ]
    model = make_model(nodes, [tensor_info("x", [4])], [helper.make_empty_tensor_value_info("y")])
    x = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
    _, got = _edgesim(model, {"x": x})
    np.testing.assert_array_equal(got["y"], np.maximum(x, 0) + x)


def test_loop_body_with_an_if_on_the_iteration_number_folds_per_iteration():
    """Each unrolled copy renames its nested If's branches too, and the If's condition (i == 0) folds per copy."""
    first = _branch("first", [helper.make_node("Add", ["acc_in", "one_f"], ["f_out"])], ["f_out"])
    later = _branch("later", [helper.make_node("Mul", ["acc_in", "two_f"], ["l_out"])], ["l_out"])
    body = helper.make_graph(
        [
            _const("zero", np.array(0, np.int64)),
            helper.make_node("Equal", ["i", "zero"], ["is_first"]),
            helper.make_node("If", ["is_first"], ["acc_out"], name="step_if", then_branch=first, else_branch=later),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [tensor_info("i", [], TensorProto.INT64), tensor_info("cond_in", [], TensorProto.BOOL), tensor_info("acc_in", [3])],
        [tensor_info("cond_out", [], TensorProto.BOOL), tensor_info("acc_out", [3])],
    )  # fmt: skip
    nodes = [
        _const("M", np.array(3, np.int64)),
        _const("one_f", np.array(1.0, np.float32)),
        _const("two_f", np.array(2.0, np.float32)),
        helper.make_node("Loop", ["M", "", "acc0"], ["acc"], name="loop", body=body),
    ]
    model = make_model(nodes, [tensor_info("acc0", [3])], [helper.make_empty_tensor_value_info("acc")])
    acc0 = np.array([1.0, -2.0, 0.5], np.float32)
    expected = _ort(model, {"acc0": acc0})["acc"]
    graph, got = _edgesim(model, {"acc0": acc0})
    np.testing.assert_array_equal(got["acc"], expected)
    np.testing.assert_array_equal(expected, (acc0 + 1) * 4)
    assert sorted(n.op_type for n in graph.nodes if n.op_type in ("Add", "Mul")) == ["Add", "Mul", "Mul"]
