"""Deployment rewrites: hard-swish written out by exporters becomes one HardSwish (as TFLite's converter fuses
it into HARD_SWISH), only on the exact pattern, and then runs in tflm mode exactly as ONNX's HardSwish does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

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
