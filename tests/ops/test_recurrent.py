"""LSTM, GRU and RNN: the float kernel against onnxruntime on seeded random models over every variant the spec
allows (directions, sequence_lens, initial states, all outputs, activations with alpha / beta, clip,
linear_before_reset, peepholes, input_forget, layout), and the counts against a hand calculation."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

from simulator.errors import EdgesimError
from simulator.importers.onnx_import import onnx_to_graph
from simulator.ops import get_op
from simulator.passes.infer_shapes import infer_shapes
from tests.helpers import make_model, tensor_info

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _case(op, *, steps=5, batch=3, size=4, hidden=6, direction="forward", layout=0, bias=True, seq_lens=False,
          initial=False, peepholes=False, attrs=None, outputs=None, seed=0):  # fmt: skip
    """A one-node model with its weights as initializers and X / sequence_lens / states as feeds."""
    rng = np.random.default_rng(seed)
    num_dir = 2 if direction == "bidirectional" else 1
    gates = GATES[op]
    f32 = lambda *shape: (0.5 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    x_shape = (batch, steps, size) if layout else (steps, batch, size)
    state_shape = (batch, num_dir, hidden) if layout else (num_dir, batch, hidden)
    feeds = {"X": f32(*x_shape)}
    consts = {"W": f32(num_dir, gates * hidden, size), "R": f32(num_dir, gates * hidden, hidden)}
    names = ["X", "W", "R", "", "", ""]
    if bias:
        consts["B"] = f32(num_dir, 2 * gates * hidden)
        names[3] = "B"
    if seq_lens:
        feeds["L"] = rng.integers(1, steps + 1, batch).astype(np.int32)
        feeds["L"][0] = steps
        names[4] = "L"
    if initial:
        feeds["H0"] = f32(*state_shape)
        names[5] = "H0"
        if op == "LSTM":
            feeds["C0"] = f32(*state_shape)
            names.append("C0")
    if peepholes:
        names += [""] * (7 - len(names))
        consts["P"] = f32(num_dir, 3 * hidden)
        names.append("P")
    while names and not names[-1]:
        names.pop()
    n_out = outputs if outputs is not None else (3 if op == "LSTM" else 2)
    out_names = ["Y", "Y_h", "Y_c"][:n_out]
    node = helper.make_node(op, names, out_names, name="rnn", hidden_size=hidden, direction=direction,
                            layout=layout, **(attrs or {}))  # fmt: skip
    infos = [tensor_info(k, list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype)) for k, v in feeds.items()]
    model = make_model([node], infos, [helper.make_empty_tensor_value_info(o) for o in out_names], consts, 14)
    return model, feeds, consts


def _batch_major_as_time_major(model, feeds):
    """onnxruntime refuses layout 1, so the peer runs the same weights at layout 0 on transposed feeds (X
    [batch, steps] -> [steps, batch], states [batch, dirs] -> [dirs, batch]) and its outputs are transposed
    back: the spec defines layout 1 as exactly that."""
    time_major = model.__deepcopy__()
    for a in time_major.graph.node[0].attribute:
        if a.name == "layout":
            a.i = 0
    swapped = {k: (v if k == "L" else np.swapaxes(v, 0, 1)) for k, v in feeds.items()}
    for info in time_major.graph.input:
        dims = info.type.tensor_type.shape.dim
        for dim, size in zip(dims, swapped[info.name].shape, strict=True):
            dim.dim_value = size
    session = onnxruntime.InferenceSession(time_major.SerializeToString(), providers=["CPUExecutionProvider"])
    y, *states = session.run(None, swapped)
    return [np.transpose(y, (2, 0, 1, 3))] + [np.swapaxes(s, 0, 1) for s in states]


def _compare(model, feeds, consts):
    if any(a.name == "layout" and a.i == 1 for a in model.graph.node[0].attribute):
        expected = _batch_major_as_time_major(model, feeds)
    else:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
    graph = infer_shapes(onnx_to_graph(model, "rnn")[0])
    [node] = graph.order
    values = {**feeds, **consts}
    got = get_op(node.op_type).run(node, *[values[n] if n else None for n in node.inputs])
    assert len(got) == len(expected)
    for name, g, e in zip(node.outputs, got, expected, strict=True):
        t = graph.tensors[name]
        assert (g.shape, g.dtype.name) == (t.shape, t.dtype) == (e.shape, e.dtype.name), name
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=name)
    return graph, node


VARIANTS = {
    "forward": {},
    "reverse": {"direction": "reverse"},
    "bidirectional": {"direction": "bidirectional"},
    "no-bias": {"bias": False},
    "seq-lens": {"seq_lens": True},
    "seq-lens-reverse": {"seq_lens": True, "direction": "reverse"},
    "seq-lens-bidirectional-initial": {"seq_lens": True, "direction": "bidirectional", "initial": True},
    "initial-states": {"initial": True},
    "layout-1": {"layout": 1, "initial": True, "direction": "bidirectional"},
    "layout-1-seq-lens": {"layout": 1, "seq_lens": True},
    "only-Y": {"outputs": 1},
    "clip": {"attrs": {"clip": 0.7}},
    "one-step": {"steps": 1, "batch": 1},
}


@pytest.mark.parametrize("op", sorted(GATES))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kernel_equals_onnxruntime(op, variant):
    _compare(*_case(op, seed=len(variant), **VARIANTS[variant]))


ACTIVATIONS = {
    "RNN": [["Relu"], ["LeakyRelu", "HardSigmoid"], ["ThresholdedRelu", "Affine"]],
    "GRU": [["HardSigmoid", "Softsign"], ["Sigmoid", "Relu", "ScaledTanh", "Elu"]],
    "LSTM": [["HardSigmoid", "Softsign", "Softplus"], ["Sigmoid", "Tanh", "Relu", "HardSigmoid", "Elu", "Tanh"]],
}


@pytest.mark.parametrize(("op", "index"), [(op, i) for op, lists in ACTIVATIONS.items() for i in range(len(lists))])
def test_activation_attributes_with_alpha_and_beta(op, index):
    names = ACTIVATIONS[op][index]
    per_dir = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
    direction = "bidirectional" if len(names) == 2 * per_dir else "forward"
    attrs = {"activations": names, "activation_alpha": [0.3, 0.6, 0.9], "activation_beta": [0.2, 0.4]}
    _compare(*_case(op, direction=direction, attrs=attrs, initial=True, seed=index))


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(direction):
    _compare(*_case("GRU", direction=direction, initial=True, seq_lens=True, attrs={"linear_before_reset": 1}))


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_lstm_peepholes_and_input_forget(direction):
    _compare(*_case("LSTM", direction=direction, peepholes=True, initial=True, seq_lens=True))
    _compare(*_case("LSTM", direction=direction, attrs={"input_forget": 1}, seed=4))


def test_counts_by_hand():
    # bidirectional LSTM, 7 steps, batch 2, input 10, hidden 20: 2 * 7 * 2 dirs * 4 gates * 20 * (10 + 20)
    model, _, consts = _case("LSTM", steps=7, batch=2, size=10, hidden=20, direction="bidirectional", peepholes=True)
    graph = infer_shapes(onnx_to_graph(model, "rnn")[0])
    [node] = graph.order
    op = get_op("LSTM")
    ins = [graph.tensors[n] if n else None for n in node.inputs]
    outs = [graph.tensors[n] for n in node.outputs]
    assert op.macs(node, ins, outs) == 2 * 7 * 2 * 4 * 20 * 30 == 67200
    assert op.params(node, ins) == sum(v.size for v in consts.values()) == 2 * (80 * 10 + 80 * 20 + 160 + 60)
    # per step, direction and sequence: gate sums with both biases 3*80, activations 100, cell 80, peepholes 120
    assert op.ops(node, ins, outs) == 2 * 7 * 2 * (240 + 100 + 80 + 120)
    assert op.cost_class(node, ins) == "matmul"
    gru, _, _ = _case("GRU", steps=3, batch=1, size=5, hidden=8)
    graph = infer_shapes(onnx_to_graph(gru, "gru")[0])
    [node] = graph.order
    ins = [graph.tensors[n] if n else None for n in node.inputs]
    assert get_op("GRU").macs(node, ins, []) == 3 * 3 * 8 * 13


def test_bad_attributes_are_one_line_errors():
    model, _, _ = _case("GRU", attrs={"activations": ["Sigmoid"]})
    with pytest.raises(EdgesimError, match="node 'rnn' \\(GRU\\): activations lists 1 functions; 2 per direction"):
        infer_shapes(onnx_to_graph(model, "gru")[0])
    model, _, _ = _case("RNN", attrs={"activations": ["Swish"]})
    with pytest.raises(EdgesimError, match="activation 'Swish'"):
        infer_shapes(onnx_to_graph(model, "rnn")[0])
    model, _, _ = _case("RNN", direction="sideways")
    with pytest.raises(EdgesimError, match="direction 'sideways'"):
        infer_shapes(onnx_to_graph(model, "rnn")[0])
    bad = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="bad", hidden_size=5)
    x = tensor_info("X", [2, 1, 3])
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 16, 3], np.zeros(48))
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 16, 4], np.zeros(64))
    m = make_model([bad], [x], [helper.make_empty_tensor_value_info("Y")], (), 14)
    m.graph.initializer.extend([w, r])
    with pytest.raises(EdgesimError, match="node 'bad' \\(LSTM\\).*expected"):
        infer_shapes(onnx_to_graph(m, "bad")[0])
