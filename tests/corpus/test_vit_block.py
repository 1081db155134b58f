"""A small ViT-like encoder block built with onnx.helper, seeded: LayerNormalization and Gelu (opset 17's and
20's ops, and the same block with both spelled out as exporters before those opsets write them), multi-head
self-attention (Q.K^T and A.V between activations, Softmax on the last axis). Float execution equals
onnxruntime, MACs and op classes equal the hand count, and the spelled-out forms are fused into one
LayerNormalization / Gelu for deployment without changing the result."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import helper

from simulator.execute.float_exec import run_graph
from simulator.importers.onnx_import import load_onnx
from simulator.passes.deploy import for_deployment
from simulator.summary import count
from tests.helpers import make_model, tensor_info

TOKENS, DIM, HEADS, HIDDEN = 17, 32, 4, 64
HEAD = DIM // HEADS
F = np.float32


def _weights(rng):
    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(F)

    return {
        "ln1_s": (1 + 0.1 * rng.standard_normal(DIM)).astype(F), "ln1_b": (0.1 * rng.standard_normal(DIM)).astype(F),
        "ln2_s": (1 + 0.1 * rng.standard_normal(DIM)).astype(F), "ln2_b": (0.1 * rng.standard_normal(DIM)).astype(F),
        "wq": w(DIM, DIM), "wk": w(DIM, DIM), "wv": w(DIM, DIM), "wo": w(DIM, DIM),
        "w1": w(DIM, HIDDEN), "b1": (0.1 * rng.standard_normal(HIDDEN)).astype(F), "w2": w(HIDDEN, DIM),
        "heads": np.array([1, TOKENS, HEADS, HEAD], np.int64), "merged": np.array([1, TOKENS, DIM], np.int64),
        "inv_sqrt_d": np.array(1 / np.sqrt(HEAD), F),
        "two": np.array(2.0, F), "eps": np.array(1e-5, F), "last_axis": np.array([-1], np.int64),
        "sqrt2": np.array(np.sqrt(2), F), "one": np.array(1.0, F), "half": np.array(0.5, F),
    }  # fmt: skip


def _layer_norm(x, scale, bias, out, spelled, tag):
    if not spelled:
        return [helper.make_node("LayerNormalization", [x, scale, bias], [out], axis=-1, epsilon=1e-5)]
    t = f"{tag}_"
    return [
        helper.make_node("ReduceMean", [x, "last_axis"], [t + "mean"]),  # opset 18+: axes as an input
        helper.make_node("Sub", [x, t + "mean"], [t + "d"]),
        helper.make_node("Pow", [t + "d", "two"], [t + "sq"]),
        helper.make_node("ReduceMean", [t + "sq", "last_axis"], [t + "var"]),
        helper.make_node("Add", [t + "var", "eps"], [t + "ve"]),
        helper.make_node("Sqrt", [t + "ve"], [t + "std"]),
        helper.make_node("Div", [t + "d", t + "std"], [t + "n"]),
        helper.make_node("Mul", [t + "n", scale], [t + "ns"]),
        helper.make_node("Add", [t + "ns", bias], [out]),
    ]


def _gelu(x, out, spelled):
    if not spelled:
        return [helper.make_node("Gelu", [x], [out])]
    # as torch.onnx writes it before opset 20
    return [
        helper.make_node("Div", [x, "sqrt2"], ["gelu_t"]),
        helper.make_node("Erf", ["gelu_t"], ["gelu_e"]),
        helper.make_node("Add", ["gelu_e", "one"], ["gelu_a"]),
        helper.make_node("Mul", [x, "gelu_a"], ["gelu_m"]),
        helper.make_node("Mul", ["gelu_m", "half"], [out]),
    ]


def _heads(src, dst, perm):
    return [
        helper.make_node("Reshape", [src, "heads"], [dst + "_r"]),
        helper.make_node("Transpose", [dst + "_r"], [dst], perm=perm),
    ]


def vit_block(spelled: bool):
    """x (1, TOKENS, DIM) -> x + Attention(LN(x)) -> + MLP(LN(.))."""
    nodes = [
        *_layer_norm("x", "ln1_s", "ln1_b", "h", spelled, "ln1"),
        helper.make_node("MatMul", ["h", "wq"], ["q0"]),
        helper.make_node("MatMul", ["h", "wk"], ["k0"]),
        helper.make_node("MatMul", ["h", "wv"], ["v0"]),
        *_heads("q0", "q", [0, 2, 1, 3]),
        *_heads("k0", "kt", [0, 2, 3, 1]),
        *_heads("v0", "v", [0, 2, 1, 3]),
        helper.make_node("MatMul", ["q", "kt"], ["scores0"]),
        helper.make_node("Mul", ["scores0", "inv_sqrt_d"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merged"], ["ctx_m"]),
        helper.make_node("MatMul", ["ctx_m", "wo"], ["o"]),
        helper.make_node("Add", ["x", "o"], ["x1"]),
        *_layer_norm("x1", "ln2_s", "ln2_b", "h2", spelled, "ln2"),
        helper.make_node("MatMul", ["h2", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["m1b"]),
        *_gelu("m1b", "g", spelled),
        helper.make_node("MatMul", ["g", "w2"], ["m2"]),
        helper.make_node("Add", ["x1", "m2"], ["y"]),
    ]
    inputs = [tensor_info("x", [1, TOKENS, DIM])]
    return make_model(nodes, inputs, [tensor_info("y", None)], _weights(np.random.default_rng(5)), opset=20)


@pytest.mark.parametrize("spelled", [False, True], ids=["LayerNormalization", "spelled-out"])
def test_block_equals_onnxruntime(spelled, save):
    model = vit_block(spelled)
    x = np.random.default_rng(9).standard_normal((1, TOKENS, DIM)).astype(F)
    expected = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    graph = load_onnx(save(model))
    for g in (graph, for_deployment(graph)):
        got = run_graph(g, {"x": x})["y"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


@pytest.mark.parametrize("spelled", [False, True], ids=["LayerNormalization", "spelled-out"])
def test_block_counts_by_hand(spelled, save):
    graph = for_deployment(load_onnx(save(vit_block(spelled))))
    layers = count(graph).layers
    by_class = {}
    for layer in layers:
        by_class[layer.op_class] = by_class.get(layer.op_class, 0) + layer.macs
    projections = 4 * TOKENS * DIM * DIM
    mlp = 2 * TOKENS * DIM * HIDDEN
    attention = 2 * HEADS * TOKENS * TOKENS * HEAD  # Q.K^T and A.V
    assert by_class["matmul"] == projections + mlp
    assert by_class["attention"] == attention
    assert sum(layer.macs for layer in layers) == projections + mlp + attention
    assert [layer.op for layer in layers if layer.op_class == "attention"] == ["MatMul", "MatMul"]
    assert all(not layer.weights for layer in layers if layer.op_class == "attention")
    norms = [layer for layer in layers if layer.op == "LayerNormalization"]
    assert len(norms) == 2 and all(layer.params == 2 * DIM for layer in norms)
    # per element: mean, subtract, square, variance, normalise, scale, shift; per token one 1/sqrt
    assert all(layer.ops == TOKENS * DIM * 7 + TOKENS for layer in norms)
    [gelu] = [layer for layer in layers if layer.op == "Gelu"]
    assert gelu.op_class == "transcendental" and gelu.ops == TOKENS * HIDDEN


def test_spelled_layer_norm_is_not_fused_when_an_intermediate_escapes(save):
    """The variance read by a second consumer (here a graph output) must stay: nothing is fused."""
    model = vit_block(spelled=True)
    model.graph.output.append(tensor_info("ln1_var", None))
    graph = for_deployment(load_onnx(save(model)))
    ops = [n.op_type for n in graph.order]
    assert ops.count("LayerNormalization") == 1 and "Sqrt" in ops
