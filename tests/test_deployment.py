"""The one rule for a float model on an integer-only stack, the same in estimate, compare and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.compare import compare_plans, given_weight_bytes
from simulator.deployment import FROM_MODEL, FROM_PTQ, deploy, missing_precisions
from simulator.estimate import estimate
from simulator.hardware import load_hardware, profile_names
from simulator.importers import load_model
from simulator.plan import apply_plan, load_plan, random_calibration
from tests.test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]

PLANS = ROOT / "plans"


def _default_stacks() -> list[str]:
    return [load_hardware(name).label for name in profile_names()]


def test_float_model_on_int8_stack_is_the_int8_per_channel_plan():
    """The deployment equals what a user gets by writing TFLite's default scheme as a plan (the shipped
    int8-per-channel plan) and calibrating on the same seeded inputs: same graph, same estimate."""
    graph = load_model("lenet-5", {})
    hw = load_hardware("cortex-m7")  # default stack cmsis-nn: int8 only
    assert missing_precisions(graph, hw) == ["fp32"]
    deployed = deploy(graph, hw)
    assert deployed.precision_source == FROM_PTQ
    assert "post-training int8" in deployed.note and "cortex-m7:cmsis-nn" in deployed.note
    by_hand = apply_plan(graph, load_plan(PLANS / "int8-per-channel.yaml"), random_calibration(graph))
    for name, t in by_hand.tensors.items():
        mine = deployed.graph.tensors[name]
        assert (mine.quant is None) == (t.quant is None), name
        if t.quant is not None:
            assert mine.quant.bits == t.quant.bits in (8, 32)  # int32 biases beside int8 weights
            assert (mine.quant.scale == t.quant.scale).all() and (mine.quant.zero_point == t.quant.zero_point).all()
    a, b = estimate(deployed.graph, hw).totals(), estimate(by_hand, hw).totals()
    assert a == b
    assert {layer.precision for layer in estimate(deployed.graph, hw).layers} == {"int8"}


def test_model_that_runs_as_given_is_not_touched():
    graph = load_model("lenet-5", {})
    deployed = deploy(graph, load_hardware("cortex-m7:tflm-portable"))
    assert deployed.graph is graph and deployed.precision_source == FROM_MODEL and deployed.note == ""


@pytest.mark.parametrize("hw", _default_stacks())
def test_float_zoo_model_estimates_compares_and_reports_on_every_default_stack(hw, tmp_path, capsys):
    code, out, err = run(["estimate", "lenet-300-100", "--hw", hw, "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    integer_only = all(not p.startswith("fp") for p in load_hardware(hw).stack.precisions)
    assert data["precision_source"] == (FROM_PTQ if integer_only else FROM_MODEL)
    assert (len(data["notes"]) == 1) == integer_only
    assert data["totals"]["latency_ms"] is None or data["totals"]["latency_ms"] > 0

    code, out, err = run(["compare", "lenet-300-100", "--hw", hw, "--format", "json", "--samples", "2"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)["plans"]
    assert row["precision_source"] == data["precision_source"]
    # the same rule gives the same numbers in both commands
    assert row["latency_ms"] == data["totals"]["latency_ms"] and row["energy_uj"] == data["totals"]["energy_uj"]
    assert row["flash_bytes"] == data["totals"]["flash_bytes"]

    pdf = tmp_path / "r.pdf"
    code, out, err = run(["report", "lenet-300-100", "--hw", hw, "-o", str(pdf)], capsys)
    assert code == 0, err
    assert pdf.stat().st_size > 0
    if integer_only:
        assert "post-training int8" in out


def test_precision_the_stack_lacks_names_the_stacks_that_run_it(capsys):
    code, _, err = run(["estimate", "lenet-5", "--hw", "cortex-m7", "--precision", "fp32"], capsys)
    assert_one_line_error(code, err, "cortex-m7:cmsis-nn runs int8 only", "tflm-portable")
    code, _, err = run(["report", "lenet-5", "--hw", "cortex-m7", "--precision", "fp32", "-o", "x.pdf"], capsys)
    assert_one_line_error(code, err, "tflm-portable")


def test_report_refuses_before_its_progress_bar(tmp_path, capsys):
    """A plan naming no layer of the model is refused before any progress is shown, and nothing is written."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\npasses:\n  - pass: prune\n    layers: [no_such_layer]\n    sparsity: 0.5\n")
    pdf = tmp_path / "r.pdf"
    code, _, err = run(["report", "lenet-5", "--hw", "cortex-m7", "--plan", str(plan), "-o", str(pdf)], capsys)
    assert_one_line_error(code, err, "no_such_layer", str(plan))
    assert not pdf.exists()


def test_compression_ratio_is_against_the_model_as_given():
    """Deep Compression's ratio counts the float32 model: LeNet-300-100 has 266,610 parameters (784*300+300 +
    300*100+100 + 100*10+10), 1,066,440 bytes as float32, whatever stack the plan is estimated on."""
    graph = load_model("lenet-300-100", {})
    assert given_weight_bytes(graph) == 4 * (784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10)
    plan = load_plan(PLANS / "deep-compression-lenet-300-100.yaml")
    ratios = {}
    for hw in ("cortex-m7", "cortex-m7:tflm-portable", "jetson-nano"):
        base, row = compare_plans(graph, load_hardware(hw), [plan], samples=2)
        assert row.compression_ratio == pytest.approx(given_weight_bytes(graph) / row.weight_bytes)
        assert row.compression_ratio_vs_baseline == pytest.approx(base.weight_bytes / row.weight_bytes)
        ratios[hw] = row.compression_ratio
    assert len(set(ratios.values())) == 1
    assert ratios["cortex-m7"] > 30  # the paper's 40x before its Huffman-free index savings; edgesim: 36.5x


def test_main_entry_point_headline(capsys):
    """README's first command: a float zoo model, --hw cortex-m7, no other flag."""
    assert main(["estimate", "resnet-8", "--hw", "cortex-m7"]) == 0
    out = capsys.readouterr().out
    assert "post-training int8 quantization of this fp32 model" in out
