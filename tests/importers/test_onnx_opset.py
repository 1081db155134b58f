"""Nodes checked against the model's opset on import: what onnxruntime refuses to load, edgesim refuses with one
line naming the node; the same nodes at an opset that defines them load in both."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.importers.onnx_import import load_onnx
from tests.helpers import make_model, tensor_info

ort = pytest.importorskip("onnxruntime")

_C = 4


def _per_channel_dq(opset: int, axis: bool) -> onnx.ModelProto:
    """A per-channel int8 weight DequantizeLinear (with or without the ``axis`` attribute) feeding a Conv."""
    rng = np.random.default_rng(0)
    inits = {
        "w": rng.integers(-127, 128, (_C, 3, 1, 1)).astype(np.int8),
        "ws": np.linspace(0.01, 0.02, _C).astype(np.float32),
        "wz": np.zeros(_C, np.int8),
    }
    dq = helper.make_node(
        "DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="weight_dq", **({"axis": 0} if axis else {})
    )
    nodes = [dq, helper.make_node("Conv", ["x", "wd"], ["y"])]
    return make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, _C, 4, 4])], inits, opset=opset)


def _int16_dq(opset: int) -> onnx.ModelProto:
    """An int16 DequantizeLinear: the 16-bit types exist for it from opset 21."""
    inits = {"q": np.arange(8, dtype=np.int16).reshape(1, 8), "s": np.float32(0.5), "z": np.int16(3)}
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dq16"),
             helper.make_node("Add", ["x", "d"], ["y"])]  # fmt: skip
    return make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", [1, 8])], inits, opset=opset)


def _clip_with_inputs(opset: int) -> onnx.ModelProto:
    """Clip with min / max as inputs, which exist from opset 11 (attributes before)."""
    inits = {"lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="relu6")]
    return make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", [1, 8])], inits, opset=opset)


def _quantize_before_it_existed(opset: int) -> onnx.ModelProto:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="quantize")]
    out = tensor_info("y", [1, 8], onnx.TensorProto.UINT8)
    return make_model(nodes, [tensor_info("x", [1, 8])], [out], {"s": np.float32(0.1)}, opset=opset)


_REFUSED = [
    ("dq-axis-opset10", lambda: _per_channel_dq(10, axis=True), ["weight_dq", "'axis'", "opset 13", "opset 10"]),
    ("dq-int16-opset13", lambda: _int16_dq(13), ["dq16", "input 0 ('q') is tensor(int16)", "opset 21"]),
    ("clip-inputs-opset10", lambda: _clip_with_inputs(10), ["relu6", "3 inputs", "opset 11"]),
    ("quantize-opset9", lambda: _quantize_before_it_existed(9), ["quantize", "exists from opset 10"]),
]


@pytest.mark.parametrize(("build", "fragments"), [c[1:] for c in _REFUSED], ids=[c[0] for c in _REFUSED])
def test_what_onnxruntime_refuses_is_refused_naming_the_node(tmp_path, capsys, build, fragments):
    path = tmp_path / "model.onnx"
    onnx.save(build(), str(path))
    with pytest.raises(Exception):  # noqa: B017 (onnxruntime raises its own exception types)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(EdgesimError) as caught:
        load_onnx(path)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"edgesim: error: {path}: node ") and "re-export" in err


@pytest.mark.parametrize(
    "build",
    [lambda: _per_channel_dq(13, axis=True), lambda: _clip_with_inputs(11), lambda: _quantize_before_it_existed(10)],
)
def test_the_same_nodes_at_an_opset_that_defines_them_load(tmp_path, build):
    path = tmp_path / "model.onnx"
    onnx.save(build(), str(path))
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    load_onnx(path)
