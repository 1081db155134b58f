"""edgesim compare: fidelity against hand-checkable cases, Pareto marking, the CLI and its chart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.compare import PlanRow, _pareto, compare_plans
from simulator.fidelity import measure, random_inputs, sqnr_db
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.plan import load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[1]
TINY_HW = str(ROOT / "tests" / "data" / "tiny-hw.yaml")


def test_sqnr_by_hand():
    # signal power 1 + 4 = 5, noise 0.1^2 + 0.1^2 = 0.02: 10 log10(250)
    assert sqnr_db(np.array([1.0, 2.0]), np.array([1.1, 1.9])) == pytest.approx(10 * math.log10(250))
    assert sqnr_db(np.ones(3), np.ones(3)) == math.inf


def test_identical_plan_is_identical_and_int8_is_close():
    g = load_model("digits-mlp")
    data = random_inputs(g, 4)
    same = measure(g, g, data)
    assert same.output_sqnr_db == math.inf and same.top1_agreement == 1.0
    int8 = parse_plan({"passes": [{"pass": "quantize", "weights": {"bits": 8}, "activations": {"bits": 8}}]}, "int8")
    from simulator.plan import apply_plan

    q = measure(g, apply_plan(g, int8), data, per_layer=True)
    # int8 on a small MLP: roughly 6 dB per bit minus headroom; anything near 40 dB is healthy
    assert 30 < q.output_sqnr_db < 60
    assert set(q.layer_sqnr_db) == {"fc1", "fc1.relu", "fc2", "fc2.relu", "fc3", "prob"}
    assert q.layer_sqnr_db["prob"] == q.output_sqnr_db


def test_pareto_marks_undominated_rows():
    def row(name, flash, latency, acc):
        return PlanRow(
            name, 0, 0.0, flash, flash, 1.0, latency, 1.0, 0, {"flash": True, "ram": True}, acc, 0.0, 1.0, "int8"
        )

    rows = _pareto([row("a", 100, 10, 0.9), row("b", 50, 10, 0.9), row("c", 200, 5, 0.99), row("d", 200, 20, 0.5)])
    assert [r.pareto for r in rows] == [False, True, True, False]


def test_compare_digits_reports_real_accuracy():
    g = load_model("digits-mlp")
    plans = [load_plan(ROOT / "plans" / "int8-per-channel.yaml"), load_plan(ROOT / "plans" / "prune90.yaml")]
    rows = compare_plans(g, load_hardware(TINY_HW), plans)
    by_name = {r.plan: r for r in rows}
    # the committed weights score 443 / 450 on the held-out digits (tests/importers/test_digits_models.py)
    assert by_name["baseline"].accuracy == pytest.approx(443 / 450)
    assert by_name["int8-per-channel"].accuracy > 0.95
    assert by_name["prune90"].sparsity == pytest.approx(0.9, abs=1e-3)
    assert by_name["int8-per-channel"].flash_bytes < by_name["baseline"].flash_bytes / 3.5


def test_compare_cli_json_and_plot(tmp_path, capsys):
    plot = tmp_path / "pareto.png"
    args = ["compare", "lenet-5", "--hw", TINY_HW, "--plan", str(ROOT / "plans" / "prune90.yaml"),
            "--samples", "2", "--format", "json", "--plot", str(plot)]  # fmt: skip
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "lenet-5" and [p["plan"] for p in data["plans"]] == ["baseline", "prune90"]
    fields = {"plan", "params", "sparsity", "weight_bytes", "flash_bytes", "compression_ratio", "latency_ms",
              "energy_uj", "peak_ram_bytes", "fits", "accuracy", "sqnr_db", "pareto"}  # fmt: skip
    assert fields <= set(data["plans"][0])
    assert data["plans"][0]["accuracy"] is None and data["plans"][0]["sqnr_db"] is None  # identical to itself
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_bad_plan_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("passes: [{pass: share, bits: 40}]\n")
    assert main(["compare", "lenet-5", "--hw", TINY_HW, "--plan", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml" in err and "bits" in err
