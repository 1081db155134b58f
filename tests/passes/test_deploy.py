"""Deployment rewrites: hard-swish written out by exporters becomes one HardSwish (as TFLite's converter fuses
it into HARD_SWISH), only on the exact pattern, and then runs in tflm mode exactly as ONNX's HardSwish does;
layer normalisation written out becomes one LayerNormalization computing the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from simulator.execute.float_exec import run_graph
from simulator.execute.int_exec import run_tflm
from simulator.importers.onnx_import import load_onnx
from simulator.passes.deploy import for_deployment, fuse_hard_swish
from simulator.plan import apply_plan, load_plan
from tests.helpers import make_model, tensor_info

INT8 = load_plan(Path(__file__).resolve().parents[2] / "plans" / "int8-per-channel.yaml")
SIXTH = np.float32(1) / np.float32(6)


def _hard_swish_nodes(spelling: str, three=3.0, six=6.0, sixth=SIXTH, alpha=SIXTH, beta=0.5):
    """The nodes computing h = hard-swish(c) in one spelling, and their constants."""
    consts = {"three": np.float32(three), "zero": np.float32(0), "six": np.float32(six), "sixth": np.float32(sixth)}
    relu6 = [helper.make_node("Add", ["c", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["r"])]
    spellings = {
        "onnx": [helper.make_node("HardSwish", ["c"], ["h"])],
        # PyTorch before opset 14
        "hardsigmoid": [
            helper.make_node("HardSigmoid", ["c"], ["g"], alpha=float(alpha), beta=float(beta)),
            helper.make_node("Mul", ["c", "g"], ["h"]),
        ],
        # Keras: x * relu6(x + 3) / 6
        "div": [*relu6, helper.make_node("Mul", ["c", "r"], ["m"]), helper.make_node("Div", ["m", "six"], ["h"])],
        "mul_sixth": [
            *relu6,
            helper.make_node("Mul", ["r", "c"], ["m"]),
            helper.make_node("Mul", ["sixth", "m"], ["h"]),
        ],
        # the gate relu6(x + 3) / 6 first, then times x (gate on the left)
        "gate_first": [
            *relu6,
            helper.make_node("Div", ["r", "six"], ["g"]),
            helper.make_node("Mul", ["g", "c"], ["h"]),
        ],
    }
    return spellings[spelling], consts


def _model(tmp_path, spelling: str, extra_output: str | None = None, last: str = "y", **constants):
    """x -> Conv -> c -> hard-swish (in ``spelling``) -> h -> Conv -> y (ending at h when ``last`` is "h")."""
    rng = np.random.default_rng(11)
    hs, consts = _hard_swish_nodes(spelling, **constants)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]), *hs]
    if last == "y":
        nodes.append(helper.make_node("Conv", ["h", "w2"], ["y"]))
    inits = {
        "w1": rng.uniform(-1, 1, (4, 2, 3, 3)).astype(np.float32),
        **({"w2": rng.uniform(-1, 1, (3, 4, 1, 1)).astype(np.float32)} if last == "y" else {}),
        **{k: v for k, v in consts.items() if any(k in n.input for n in nodes)},
    }
    outputs = [tensor_info(last, None)] + ([tensor_info(extra_output, None)] if extra_output else [])
    path = tmp_path / f"{spelling}.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 2, 6, 6])], outputs, inits), path)
    return load_onnx(path)


SPELLINGS = ["hardsigmoid", "div", "mul_sixth", "gate_first"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_spelled_out_hard_swish_becomes_one_node(tmp_path, spelling):
    graph = _model(tmp_path, spelling)
    before = [(n.name, n.op_type) for n in graph.nodes]
    fused = fuse_hard_swish(graph)
    assert [n.op_type for n in fused.order] == ["Conv", "HardSwish", "Conv"]
    (hs,) = [n for n in fused.order if n.op_type == "HardSwish"]
    assert (hs.inputs, hs.outputs) == (["c"], ["h"])
    assert [(n.name, n.op_type) for n in graph.nodes] == before  # the input graph is left as it was
    assert [n.op_type for n in for_deployment(graph).order] == ["Conv", "HardSwish", "Conv"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_fused_pattern_runs_as_onnx_hard_swish_bit_for_bit(tmp_path, spelling):
    """Quantized by the int8 plan on the same calibration feeds, the spelled-out graph and the one written with
    ONNX's HardSwish give identical int8 tensors in tflm mode (TFLM's HARD_SWISH kernel for both)."""
    rng = np.random.default_rng(5)
    feeds = [{"x": (3 * rng.standard_normal((1, 2, 6, 6))).astype(np.float32)} for _ in range(6)]
    reference = apply_plan(_model(tmp_path, "onnx"), INT8, feeds)
    spelled = apply_plan(_model(tmp_path, spelling), INT8, feeds)
    for name in ("c", "h", "y"):
        ref_q, q = reference.tensors[name].quant, spelled.tensors[name].quant
        assert (float(q.scale), int(q.zero_point)) == (float(ref_q.scale), int(ref_q.zero_point)), name
    for f in feeds:
        ref_values, _ = run_tflm(reference, f, keep=True)
        values, _ = run_tflm(spelled, f, keep=True)
        for name in ("h", "y"):
            assert values[name].dtype == np.int8
            assert np.array_equal(values[name], ref_values[name]), name
        # the x range spans both bends of hard-swish (-3 and 3), so the kernel's three pieces all run
        c = (ref_values["c"].astype(np.float64) - int(reference.tensors["c"].quant.zero_point)) * float(
            reference.tensors["c"].quant.scale
        )
        assert c.min() < -3 and c.max() > 3


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_hard_swish_ending_the_graph_is_calibrated_as_hard_swish(tmp_path, spelling):
    """No conv reads h: its parameters come from the plan, which fuses the pattern before calibrating (as
    TFLite's converter does), so h is HARD_SWISH's calibrated output whatever op ended the spelling (a Div
    would otherwise leave h unquantized)."""
    rng = np.random.default_rng(6)
    feeds = [{"x": (3 * rng.standard_normal((1, 2, 6, 6))).astype(np.float32)} for _ in range(6)]
    reference = apply_plan(_model(tmp_path, "onnx", last="h"), INT8, feeds)
    spelled = apply_plan(_model(tmp_path, spelling, last="h"), INT8, feeds)
    assert [n.op_type for n in spelled.order] == ["Conv", "HardSwish"]
    ref_q, q = reference.tensors["h"].quant, spelled.tensors["h"].quant
    assert (float(q.scale), int(q.zero_point)) == (float(ref_q.scale), int(ref_q.zero_point))
    for f in feeds:
        assert np.array_equal(run_tflm(spelled, f)[0]["h"], run_tflm(reference, f)[0]["h"])


@pytest.mark.parametrize(
    "spelling, constants",
    [
        ("div", {"six": 5.9}),  # Relu6 with max 5.9 (the Clip and the Div share the constant here)
        ("div", {"three": 3.1}),
        ("mul_sixth", {"sixth": 0.1667}),
        ("hardsigmoid", {"alpha": 0.2}),  # ONNX's default alpha: a HardSigmoid, but not hard-swish's
        ("hardsigmoid", {"beta": 0.45}),
    ],
)
def test_near_misses_are_not_fused(tmp_path, spelling, constants):
    graph = _model(tmp_path, spelling, **constants)
    assert "HardSwish" not in [n.op_type for n in fuse_hard_swish(graph).order]
    assert "HardSwish" not in [n.op_type for n in for_deployment(graph).order]


def test_clip_max_other_than_the_divisor_is_not_fused(tmp_path):
    """Clip(x + 3, 0, 5.9) / 6: the divisor is right, the Relu6 bound is not."""
    graph = _model(tmp_path, "div")
    tensors = dict(graph.tensors)
    tensors["clip_max"] = graph.tensors["six"].__class__.from_array("clip_max", np.asarray(5.9, np.float32))
    nodes = [
        n.__class__(n.name, n.op_type, ["a", "zero", "clip_max"], n.outputs, dict(n.attrs))
        if n.op_type == "Clip"
        else n
        for n in graph.nodes
    ]
    graph = graph.replace(nodes=nodes, tensors=tensors)
    assert "HardSwish" not in [n.op_type for n in fuse_hard_swish(graph).order]


def test_an_intermediate_read_elsewhere_is_not_fused(tmp_path):
    """The Relu6 result is also a graph output: fusing would lose it."""
    graph = _model(tmp_path, "div", extra_output="r")
    assert "HardSwish" not in [n.op_type for n in fuse_hard_swish(graph).order]


# -- layer normalisation written out ----------------------------------------------------------------------


def _spelled_layer_norm(square: str, root: str, axes: list[int], affine: bool, eps_first: bool = False):
    """x (2, 3, 4, 6) -> layer norm over ``axes`` in elementary ops; square: "pow" or "mul"; root: "div" or
    "reciprocal" (Mul by Reciprocal(Sqrt), as tf2onnx writes it)."""
    rng = np.random.default_rng(3)
    tail = (2, 3, 4, 6)[axes[0] :]
    consts = {"two": np.float32(2.0), "eps": np.float32(1e-3), "axes": np.array(axes, np.int64)}
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"])
        if square == "pow"
        else helper.make_node("Mul", ["d", "d"], ["sq"]),
        helper.make_node("ReduceMean", ["sq", "axes"], ["var"]),
        helper.make_node("Add", ["eps", "var"] if eps_first else ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["std"]),
    ]
    if root == "div":
        nodes.append(helper.make_node("Div", ["d", "std"], ["n"]))
    else:
        nodes += [helper.make_node("Reciprocal", ["std"], ["inv"]), helper.make_node("Mul", ["inv", "d"], ["n"])]
    last = "n"
    if affine:
        consts["scale"] = (1 + 0.1 * rng.standard_normal(tail)).astype(np.float32)
        consts["bias"] = rng.standard_normal(tail[-1]).astype(np.float32)
        nodes += [helper.make_node("Mul", ["scale", "n"], ["ns"]), helper.make_node("Add", ["ns", "bias"], ["ln"])]
        last = "ln"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    return make_model(nodes, [tensor_info("x", [2, 3, 4, 6])], [tensor_info("y", None)], consts, opset=18)


@pytest.mark.parametrize(
    "square, root, axes, affine, eps_first",
    [
        ("pow", "div", [-1], True, False),  # paddle2onnx, PyTorch before opset 17
        ("mul", "reciprocal", [-1], True, True),  # tf2onnx's spelling, epsilon on the left
        ("pow", "div", [2, 3], False, False),  # over the last two axes, no scale or shift
    ],
)
def test_spelled_out_layer_norm_becomes_one_op(square, root, axes, affine, eps_first, tmp_path):
    path = tmp_path / "ln.onnx"
    onnx.save(_spelled_layer_norm(square, root, axes, affine, eps_first), path)
    graph = load_onnx(path)
    fused = for_deployment(graph)
    assert [n.op_type for n in fused.order] == ["LayerNormalization", "Relu"]
    [ln] = [n for n in fused.order if n.op_type == "LayerNormalization"]
    assert ln.attrs["axis"] == min(a % 4 for a in axes) and ln.attrs["epsilon"] == pytest.approx(1e-3)
    x = {"x": np.random.default_rng(4).standard_normal((2, 3, 4, 6)).astype(np.float32)}
    np.testing.assert_allclose(run_graph(fused, x)["y"], run_graph(graph, x)["y"], rtol=1e-5, atol=1e-6)


def test_layer_norm_over_a_leading_axis_is_not_fused(tmp_path):
    path = tmp_path / "ln.onnx"
    onnx.save(_spelled_layer_norm("pow", "div", [1], True), path)
    assert "LayerNormalization" not in [n.op_type for n in for_deployment(load_onnx(path)).order]


# -- Gelu written out -------------------------------------------------------------------------------------


def _spelled_gelu(order: str, scale: str, half: float = 0.5):
    """c = Conv(x); gelu(c) spelled out; the products in ``order`` ("gate-last": (c * gate) * 0.5,
    "half-first": (c * 0.5) * gate, "gate-half": c * (gate * 0.5)); the scaling as Div by sqrt 2 or Mul by
    1 / sqrt 2."""
    consts = {
        "w": np.random.default_rng(5).uniform(-1, 1, (4, 2, 3, 3)).astype(np.float32),
        "s": np.float32(np.sqrt(2.0)) if scale == "div" else np.float32(1 / np.sqrt(2.0)),
        "one": np.float32(1.0),
        "half": np.float32(half),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Div" if scale == "div" else "Mul", ["c", "s"], ["t"]),
        helper.make_node("Erf", ["t"], ["e"]),
        helper.make_node("Add", ["one", "e"], ["gate"]),
    ]
    nodes += {
        "gate-last": [helper.make_node("Mul", ["c", "gate"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])],
        "half-first": [helper.make_node("Mul", ["half", "c"], ["m"]), helper.make_node("Mul", ["m", "gate"], ["y"])],
        "gate-half": [helper.make_node("Mul", ["gate", "half"], ["m"]), helper.make_node("Mul", ["c", "m"], ["y"])],
    }[order]
    return make_model(nodes, [tensor_info("x", [1, 2, 5, 5])], [tensor_info("y", None)], consts)


@pytest.mark.parametrize("order", ["gate-last", "half-first", "gate-half"])
@pytest.mark.parametrize("scale", ["div", "mul"])
def test_spelled_out_gelu_becomes_one_op(order, scale, tmp_path):
    path = tmp_path / "gelu.onnx"
    onnx.save(_spelled_gelu(order, scale), path)
    graph = load_onnx(path)
    fused = for_deployment(graph)
    assert [n.op_type for n in fused.order] == ["Conv", "Gelu"]
    x = {"x": np.random.default_rng(6).standard_normal((1, 2, 5, 5)).astype(np.float32)}
    np.testing.assert_allclose(run_graph(fused, x)["y"], run_graph(graph, x)["y"], rtol=1e-6, atol=1e-6)


def test_gelu_with_another_constant_is_left_alone(tmp_path):
    path = tmp_path / "gelu.onnx"
    onnx.save(_spelled_gelu("gate-last", "div", half=0.6), path)
    assert "Gelu" not in [n.op_type for n in for_deployment(load_onnx(path)).order]
