"""Resource-variable state kept between calls, as TFLM keeps it: a streaming model converted by TensorFlow
(tests/data/tflite_stream, see scripts/make_tflite_fixtures.py) over 8 consecutive calls of one session
equals tflite-micro's outputs call by call; a new session starts again from the CALL_ONCE init values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite")

from simulator.execute import state  # noqa: E402
from simulator.execute.int_exec import prepare_tflm, run_tflm  # noqa: E402
from simulator.importers import load_model  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite_stream"


def _graph():
    return load_model(str(DATA / "streaming_window.tflite"))


def test_streaming_calls_equal_tflite_micro_call_by_call():
    graph = _graph()
    calls = np.load(DATA / "streaming_window_calls.npz")
    session = prepare_tflm(graph)
    (x_name,) = [n for n in graph.inputs if n not in state.state_inputs(graph)]
    outputs = [session.run({x_name: frame})[0][graph.outputs[0]] for frame in calls["frames"]]
    assert np.array_equal(np.stack(outputs), calls["tflm_outputs"])
    assert len({o.tobytes() for o in outputs}) > 4  # the window really moves: outputs differ call to call


def test_a_new_run_starts_from_the_init_subgraph_values():
    graph = _graph()
    calls = np.load(DATA / "streaming_window_calls.npz")
    (var,) = graph.metadata["tflite_variables"].values()
    assert np.array_equal(var["initial"], np.zeros((1, 4, 8), np.float32))  # tf.zeros in the CALL_ONCE subgraph
    (x_name,) = [n for n in graph.inputs if n not in state.state_inputs(graph)]
    for _ in range(2):  # run_tflm is one call from the initial state, every time
        values, _ = run_tflm(graph, {x_name: calls["frames"][0]})
        assert np.array_equal(values[graph.outputs[0]], calls["tflm_outputs"][0])


def test_state_after_a_call_is_the_assigned_value():
    graph = _graph()
    calls = np.load(DATA / "streaming_window_calls.npz")
    session = prepare_tflm(graph)
    (x_name,) = [n for n in graph.inputs if n not in state.state_inputs(graph)]
    session.run({x_name: calls["frames"][0]})
    (window,) = session.state.values()
    assert window.shape == (1, 4, 8) and not np.any(window[:, :3])  # three zero frames, then the first frame
    assert np.any(window[:, 3])


def test_tflite_micro_live():
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    graph = _graph()
    interpreter = runtime.Interpreter.from_file(str(DATA / "streaming_window.tflite"), arena_size=1 << 16)
    session = prepare_tflm(graph)
    (x_name,) = [n for n in graph.inputs if n not in state.state_inputs(graph)]
    rng = np.random.default_rng(11)
    for _ in range(20):
        frame = rng.integers(-128, 128, (1, 1, 8)).astype(np.int8)
        interpreter.set_input(frame, 0)
        interpreter.invoke()
        assert np.array_equal(session.run({x_name: frame})[0][graph.outputs[0]], interpreter.get_output(0))
