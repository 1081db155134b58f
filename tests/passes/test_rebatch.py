"""Batched runs of many samples equal single runs, and graphs that move the batch are not batched."""

from __future__ import annotations

import numpy as np
from onnx import helper

from simulator.execute.float_exec import run_graph
from simulator.fidelity import run_samples
from simulator.importers import load_model
from simulator.importers.onnx_import import load_onnx
from simulator.ops.registry import reductions_in
from simulator.passes.rebatch import with_batch
from tests.helpers import make_model, tensor_info


def _feeds(graph, n, seed=0):
    rng = np.random.default_rng(seed)
    return [{x: rng.standard_normal(graph.tensors[x].shape).astype(np.float32) for x in graph.inputs} for _ in range(n)]


def test_batched_samples_equal_single_runs():
    for model in ("digits-cnn", "lenet-5", "resnet-8", "ds-cnn"):
        graph = load_model(model)
        assert with_batch(graph, 5) is not None, model
        feeds = _feeds(graph, 5)
        batched = run_samples(graph, feeds, keep=True, reduction=np.float64)
        for i, f in enumerate(feeds):
            single = run_graph(graph, f, keep=True)
            for name, value in single.items():
                # float64 reductions: the batch changes only BLAS's blocking, not the float32 results
                np.testing.assert_allclose(batched[name][i : i + 1], value, rtol=1e-6, atol=1e-6, err_msg=name)


def test_a_reshape_to_a_constant_batch_is_not_batched(tmp_path):
    """Reshape to [1, -1] would swallow the batch into the features: the inferred shapes show it."""
    shape = helper.make_tensor("shape", 7, [2], [1, -1])
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["y"])],
        [tensor_info("x", [1, 3, 4])],
        [tensor_info("y", [1, 12])],
    )
    model.graph.initializer.append(shape)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    graph = load_onnx(path)
    assert with_batch(graph, 4) is None
    feeds = _feeds(graph, 4)
    out = run_samples(graph, feeds)  # falls back to single runs
    for i, f in enumerate(feeds):
        np.testing.assert_array_equal(out["y"][i : i + 1], run_graph(graph, f)["y"])


def test_float32_reductions_stay_close_to_the_float64_reference():
    graph = load_model("resnet-8")
    (feeds,) = _feeds(graph, 1)
    exact = run_graph(graph, feeds)[graph.outputs[0]]
    with reductions_in(np.float32):
        fast = run_graph(graph, feeds)[graph.outputs[0]]
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-5)
