"""Plans: the format's errors (one line: file, pass, field, valid choices) and the shipped plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.importers import load_model
from simulator.passes.prune import sparsity_of
from simulator.plan import apply_plan, load_calibration, load_plan, parse_plan

PLANS = sorted((Path(__file__).resolve().parents[1] / "plans").glob("*.yaml"))
TINY_HW = str(Path(__file__).resolve().parent / "data" / "tiny-hw.yaml")


def _plan(passes):
    return parse_plan({"name": "p", "passes": passes}, "p")


@pytest.mark.parametrize(
    "passes, message",
    [
        ([{"pass": "prunes"}], "passes[0].pass: unknown pass 'prunes'; valid passes: prune, quantize, share, encode"),
        (
            [{"pass": "prune", "sparsty": 0.5}],
            "passes[0] (prune): unknown field 'sparsty'; valid fields: method, sparsity",
        ),
        ([{"pass": "prune", "sparsity": 1.5}], "passes[0] (prune): sparsity: expected a value in [0, 1], got 1.5"),
        ([{"pass": "prune"}], "passes[0] (prune): method unstructured needs 'sparsity'"),
        ([{"pass": "prune", "method": "n:m", "pattern": "4:2"}], "pattern: expected N:M with 0 < N < M"),
        ([{"pass": "share"}], "passes[0] (share): the field 'bits' is required"),
        ([{"pass": "quantize", "weights": {"bits": 1}}], "weights: bits: expected a value in [2, 16], got 1"),
        (
            [{"pass": "quantize", "weights": {"bits": 8, "granularity": "per-row"}}],
            "expected one of per-tensor, per-channel",
        ),
        ([{"pass": "quantize"}], "give 'weights', 'activations' or both"),
        ([{"pass": "encode", "format": "zip"}], "format: expected one of dense, csr, csr-relative, bitmask"),
    ],
)
def test_malformed_plans(passes, message):
    with pytest.raises(EdgesimError) as exc:
        _plan(passes)
    assert message in str(exc.value)


def test_a_layer_that_does_not_exist_lists_the_layers():
    plan = _plan([{"pass": "prune", "sparsity": 0.5}, {"pass": "share", "bits": 4, "layers": ["fc9"]}])
    with pytest.raises(
        EdgesimError, match=r"passes\[1\] \(share\).layers: 'fc9' matches no layer with weights; layers: fc1, fc2, fc3"
    ):
        apply_plan(load_model("lenet-300-100"), plan)


def test_op_selector():
    plan = _plan([{"pass": "prune", "sparsity": 0.5, "ops": ["Conv"]}])
    g = apply_plan(load_model("lenet-5"), plan)
    assert sparsity_of(g.tensors["conv1.weight"]) == 0.5 and sparsity_of(g.tensors["ip1.weight"]) == 0.0
    with pytest.raises(EdgesimError, match="no weighted layer is a 'LSTM'; op types: Conv, Gemm"):
        apply_plan(load_model("lenet-5"), _plan([{"pass": "prune", "sparsity": 0.5, "ops": "LSTM"}]))


def test_globs_select_layers():
    plan = _plan([{"pass": "prune", "sparsity": 0.25, "layers": "conv*"}])
    g = apply_plan(load_model("lenet-5"), plan)
    assert [round(sparsity_of(g.tensors[f"{n}.weight"]), 3) for n in ("conv1", "conv2", "ip1")] == [0.25, 0.25, 0.0]


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("passes: [{pass: prune, sparsity: 0.5}\n")
    with pytest.raises(EdgesimError, match=r"bad.yaml: invalid YAML at line"):
        load_plan(path)


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_shipped_plans_parse(path):
    plan = load_plan(path)
    assert plan.passes and plan.description
    assert yaml.safe_load(path.read_text())["name"] == plan.name


def test_estimate_with_a_plan_on_the_cli(capsys):
    plan = str(Path(__file__).resolve().parents[1] / "plans" / "deep-compression-lenet-300-100.yaml")
    assert main(["estimate", "lenet-300-100", "--hw", TINY_HW, "--plan", plan, "--format", "json"]) == 0
    out = capsys.readouterr().out
    import json

    data = json.loads(out)
    assert data["plan"] == "deep-compression-lenet-300-100"
    assert data["totals"]["flash_bytes"] < 266_610 * 4 / 20


def test_plan_errors_on_the_cli_are_one_line(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("passes:\n  - {pass: prune, layers: nope, sparsity: 0.5}\n")
    assert main(["estimate", "lenet-5", "--hw", TINY_HW, "--plan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "p.yaml" in err and "'nope' matches no layer" in err


def test_calibration_file(tmp_path):
    g = load_model("lenet-300-100")
    np.save(tmp_path / "c.npy", np.zeros((5, 784), np.float32))
    feeds = load_calibration(tmp_path / "c.npy", g)
    assert len(feeds) == 5 and feeds[0]["input"].shape == (1, 784)
    np.save(tmp_path / "bad.npy", np.zeros((5, 10), np.float32))
    with pytest.raises(EdgesimError, match="samples of shape \\(10,\\), the model takes \\(784,\\)"):
        load_calibration(tmp_path / "bad.npy", g)


# plans with int16 activations (TFLite's 16x8) need int16 kernels, which no shipped hardware profile lists yet
GENERIC = [p for p in PLANS if not p.stem.startswith(("deep-compression-", "a16"))]


def test_a16w8_plan_estimate_names_the_missing_int16_kernels(capsys):
    path = Path(__file__).resolve().parents[1] / "plans" / "a16w8-per-channel.yaml"
    assert main(["estimate", "lenet-5", "--hw", "cortex-m4:tflm-portable", "--plan", str(path)]) == 2
    assert "cortex-m4:tflm-portable has no int16 kernels" in capsys.readouterr().err


@pytest.mark.parametrize("path", GENERIC, ids=[p.stem for p in GENERIC])
def test_generic_plans_run_through_estimate(path, capsys):
    import json

    # tflm-portable runs int8 and fp32, so plans that leave float layers run too
    assert (
        main(["estimate", "lenet-5", "--hw", "cortex-m4:tflm-portable", "--plan", str(path), "--format", "json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["plan"] == load_plan(path).name and data["totals"]["latency_ms"] > 0


@pytest.mark.parametrize("model", ["lenet-300-100", "lenet-5"])
def test_model_specific_plans_run_through_estimate_and_compare(model, capsys):
    import json

    plan = str(Path(__file__).resolve().parents[1] / "plans" / f"deep-compression-{model}.yaml")
    assert main(["estimate", model, "--hw", "cortex-m7:tflm-portable", "--plan", plan, "--format", "json"]) == 0
    flash = json.loads(capsys.readouterr().out)["totals"]["flash_bytes"]
    assert (
        main(
            ["compare", model, "--hw", "cortex-m7:tflm-portable", "--plan", plan, "--samples", "2", "--format", "json"]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)["plans"]
    assert rows[1]["flash_bytes"] == flash and rows[1]["compression_ratio"] > 30
