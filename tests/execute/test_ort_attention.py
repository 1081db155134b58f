"""A small multi-head attention block quantized by onnxruntime's ``quantize_static`` runs in the ort mode bit for bit
as onnxruntime runs it: MatMul between two activations (Q.K^T, A.V) fused to QLinearMatMul, QLinearSoftmax, the
data movement around the heads (Reshape, Transpose, Gather, Slice) on integers, and with int8 activations the float
MatMuls in MLAS's order. From the command line (``run --mode ort``) and tensor by tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

from onnx import helper  # noqa: E402

from simulator.cli import main  # noqa: E402
from simulator.execute.ort_exec import run_ort  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from simulator.importers.qoperator import load_quantized_onnx  # noqa: E402
from tests.helpers import make_model, quantize_with_onnxruntime, tensor_info  # noqa: E402

F32 = np.float32
_T, _D, _H = 6, 16, 2  # tokens, model width, heads


def _attention_block() -> onnx.ModelProto:
    """x -> Q, K, V projections -> heads (Reshape, Transpose) -> softmax(Q K^T / sqrt(d)) V -> merge heads ->
    output projection + x; then two tokens picked by Gather plus a Slice of two others. Seeded weights."""
    rng = np.random.default_rng(17)
    dh = _D // _H

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(F32)

    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Reshape", ["q", "heads"], ["q4"]),
        helper.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k", "heads"], ["k4"]),
        helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["v", "heads"], ["v4"]),
        helper.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kt"], ["scores"]),
        helper.make_node("Mul", ["scores", "inv_sqrt_d"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "vh"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ot", "tokens"], ["merged"]),
        helper.make_node("MatMul", ["merged", "wo"], ["proj"]),
        helper.make_node("Add", ["proj", "x"], ["res"]),
        helper.make_node("Gather", ["res", "picked"], ["g"], axis=1),
        helper.make_node("Slice", ["res", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Add", ["g", "s"], ["y"]),
    ]
    inits = {
        "wq": w(_D, _D), "wk": w(_D, _D), "wv": w(_D, _D), "wo": w(_D, _D),
        "heads": np.array([1, _T, _H, dh], np.int64), "tokens": np.array([1, _T, _D], np.int64),
        "inv_sqrt_d": np.array(1 / np.sqrt(dh), F32), "picked": np.array([0, 2], np.int64),
        "starts": np.array([1], np.int64), "ends": np.array([3], np.int64), "axes": np.array([1], np.int64),
    }  # fmt: skip
    return make_model(nodes, [tensor_info("x", [1, _T, _D])], [tensor_info("y", [1, 2, _D])], inits, opset=13)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """(format, activations) -> path of the attention block quantize_static wrote (int8 weights, per tensor)."""
    root = tmp_path_factory.mktemp("ort_attention")
    cache = {}

    def get(fmt: str, activations: str) -> Path:
        if (fmt, activations) not in cache:
            target = root / f"attention-{fmt}-{activations}.onnx"
            cache[fmt, activations] = quantize_with_onnxruntime(_attention_block(), target, fmt, activations, count=8)
        return cache[fmt, activations]

    return get


def _feeds(seed: int) -> dict[str, np.ndarray]:
    # seed 2 scales the input up: saturated activations and a softmax row with one dominant score
    return {"x": (np.random.default_rng(seed).standard_normal((1, _T, _D)) * (1 + seed)).astype(F32)}


_CASES = [("QDQ", "QUInt8"), ("QDQ", "QInt8"), ("QOperator", "QUInt8"), ("QOperator", "QInt8")]


@pytest.mark.parametrize(("fmt", "activations"), _CASES)
def test_run_ort_equals_onnxruntime(tmp_path, capsys, quantized, fmt, activations):
    path = quantized(fmt, activations)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in range(3):
        feeds = _feeds(seed)
        np.save(tmp_path / "x.npy", feeds["x"])
        args = ["run", str(path), "--mode", "ort", "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "not proven bit-exact" not in err, err  # every node reproduced, none left to numpy
        assert np.array_equal(np.load(tmp_path / "y.npy"), session.run(None, feeds)[0]), f"seed {seed}"


@pytest.mark.parametrize(("fmt", "activations"), _CASES)
def test_every_quantized_tensor_equals_onnxruntime(tmp_path, quantized, fmt, activations):
    """Every tensor a quantized node writes, probed as a graph output on both sides (the probed model is what both
    run, so the fusions that graph outputs prevent are prevented on both)."""
    model = onnx.load(str(quantized(fmt, activations)))
    elem = onnx.TensorProto.INT8 if activations == "QInt8" else onnx.TensorProto.UINT8
    quantized_ops = ("QuantizeLinear", "QLinearMatMul", "QLinearMul", "QLinearAdd", "QLinearSoftmax")
    probes = [n.output[0] for n in model.graph.node if n.op_type in quantized_ops and n.output[0] != "y"]
    assert len(probes) >= 8
    model.graph.output.extend(helper.make_tensor_value_info(name, elem, None) for name in probes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # onnx's checker (edgesim runs it on load) wants every graph output's shape: the shapes onnxruntime produced
    shapes = dict(zip([o.name for o in session.get_outputs()], session.run(None, _feeds(0)), strict=True))
    del model.graph.output[1:]
    model.graph.output.extend(helper.make_tensor_value_info(name, elem, shapes[name].shape) for name in probes)
    path = tmp_path / "probed.onnx"
    onnx.save(model, str(path))
    graph = load_onnx(path) if fmt == "QDQ" else load_quantized_onnx(path)
    for seed in range(3):
        feeds = _feeds(seed)
        got = run_ort(graph, feeds, keep=True)
        for name, want in zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True):
            assert got[name].dtype == want.dtype, name
            diff = int(np.count_nonzero(got[name] != want))
            assert diff == 0, f"seed {seed}: {diff} of {want.size} values of {name} differ"


def test_activation_matmuls_fuse_to_qlinear_matmul(quantized):
    """With uint8 activations onnxruntime fuses DQ, DQ -> MatMul -> Q between two activations into QLinearMatMul:
    no MatMul is left to float (the ort mode used to run Q.K^T and A.V in numpy float and say so)."""
    graph = load_onnx(quantized("QDQ", "QUInt8"))
    between = [n for n in graph.nodes if n.op_type == "MatMul" and not graph.tensors[n.inputs[1]].constant]
    assert len(between) == 2
    caveats: list[str] = []
    run_ort(graph, _feeds(0), caveats=caveats)
    assert caveats == []
