"""`edgesim calibrate` end to end: refusal when under-determined, the written profile (valid, re-estimates to
the fitted latencies, sources recording the fit, deterministic), and real published measurements split into
a fit set and a check set."""

from __future__ import annotations

import math

import pytest

from simulator.calibrate.run import calibrate
from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.estimate import estimate, prepare
from simulator.hardware import load_hardware, read_profile
from simulator.importers import load_model
from simulator.validate import default_measurements, read_measurements
from simulator.yamlio import dump_yaml

from .conftest import shipped, truth_latencies, write_csv


def _csv(tmp_path, models, name="m.csv", factor=1.2):
    start = truth_latencies(shipped("cortex-m7"), "cmsis-nn", {}, models, "int8")
    return write_csv(tmp_path / name, {m: v * factor for m, v in start.items()}, "int8")


def test_refuses_more_parameters_than_measurements_support(tmp_path, capsys):
    csv = _csv(tmp_path, ["resnet-8", "ds-cnn"])
    free = "stacks.cmsis-nn.efficiency.conv,stacks.cmsis-nn.efficiency.depthwise"
    code = main(["calibrate", "--hw", "cortex-m7:cmsis-nn", "--measurements", str(csv), "--free", free,
                 "-o", str(tmp_path / "out.yaml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "2 free parameters need at least 3 measurements" in err and "add 1 more" in err
    assert not (tmp_path / "out.yaml").exists()


def test_refuses_a_parameter_no_measurement_depends_on(tmp_path):
    csv = _csv(tmp_path, ["resnet-8", "lenet-5", "fc-autoencoder"])  # no depthwise layer anywhere
    with pytest.raises(EdgesimError, match="stacks.cmsis-nn.efficiency.depthwise: no measurement depends on it"):
        calibrate("cortex-m7:cmsis-nn", [str(csv)], free=["stacks.cmsis-nn.efficiency.depthwise"])


def test_the_stack_calibrate_list_is_the_default_and_is_validated(tmp_path):
    data = shipped("cortex-m7")
    data["stacks"]["cmsis-nn"]["calibrate"] = ["stacks.cmsis-nn.efficiency.conv", "layer_overhead_cycles", "clock_hz"]
    profile = tmp_path / "board.yaml"
    profile.write_text(dump_yaml(data))
    csv = _csv(tmp_path, ["resnet-8", "ds-cnn", "lenet-5"])
    with pytest.raises(EdgesimError, match="3 free parameters need at least 4 measurements"):
        calibrate(f"{profile}:cmsis-nn", [str(csv)])
    data["stacks"]["cmsis-nn"]["calibrate"] = ["stacks.cmsis-nn.efficiency.nothing"]
    profile.write_text(dump_yaml(data))
    with pytest.raises(EdgesimError, match=r"stacks.cmsis-nn.calibrate\[0\]"):
        load_hardware(str(profile))


def test_written_profile_validates_and_re_estimates_to_the_fit(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    models = ["resnet-8", "ds-cnn", "mobilenet-v1-0.25-vww", "lenet-5"]
    csv = _csv(tmp_path, models, factor=1.3)
    out = tmp_path / "my-board.yaml"
    free = "stacks.cmsis-nn.efficiency.conv,stacks.cmsis-nn.efficiency.depthwise"
    args = ["calibrate", "--hw", "cortex-m7:cmsis-nn", "--measurements", str(csv), "--free", free, "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "leave-one-out |error|: before" in text and "stacks.cmsis-nn.efficiency.depthwise" in text
    assert main(["hw", "validate", str(out)]) == 0
    data = read_profile(out)
    fit = data["stacks"]["cmsis-nn"]["fit"]
    assert fit["date"] == "2026-01-01" and set(fit["parameters"]) == set(free.split(","))
    assert len(fit["measurements"]) == len(fit["loo_log_errors"]) == len(models)
    assert "edgesim calibrate 2026-01-01" in data["sources"]["stacks.cmsis-nn.efficiency.conv"]
    assert "m.csv" in data["sources"]["stacks.cmsis-nn.efficiency.conv"]
    # 30 % slower measurements: every one reproduced, so conv and depthwise both scaled by ~1/1.3
    hw = load_hardware(f"{out}:cmsis-nn")
    measured = {r.split(",")[0]: float(r.split(",")[3]) for r in csv.read_text().splitlines()[1:]}
    for model, log_error in zip(models, fit["log_errors"], strict=True):
        latency = estimate(prepare(load_model(model)), hw, precision="int8").latency_ms
        assert latency == pytest.approx(measured[model] * math.exp(-log_error), rel=1e-5)
    # the same inputs write the same file
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first


def test_per_layer_file_needs_its_model(tmp_path):
    log = tmp_path / "p.log"
    log.write_text("CONV_2D took 100 ticks (0 ms).\n")
    with pytest.raises(EdgesimError, match="MODEL=FILE"):
        calibrate("cortex-m7:cmsis-nn", [str(log)])


def _published_latency_rows():
    """Rows the issue allows for calibration: not disputed and not MLPerf Tiny v1.x (reserved for judging)."""
    rows = read_measurements(default_measurements())
    return [
        r
        for r in rows
        if r["metric"] == "latency_ms"
        and r.get("status", "") != "disputed"
        and "tiny_results_v1" not in r["source"]
        and not r["id"].startswith("mlpt")
    ]


def test_real_published_measurements_fit_and_check_split(tmp_path):
    """Jetson Nano TensorRT fp16 (torch2trt's published table): fit the conv efficiency on two networks,
    predict the third. Each split's check error after the fit stays within the rows' 25 % tolerance, the fit
    set's error shrinks, and the mean error on the held-out networks falls."""
    rows = [r for r in _published_latency_rows() if r["hardware"] == "jetson-nano" and "torch2trt" in r["source"]]
    assert len(rows) >= 3
    before, after = [], []
    for check in rows:
        fit_rows = [r for r in rows if r is not check]
        lines = ["model,input,precision,latency_ms"]
        lines += [f"{r['model']},{r['input']},{r['precision']},{r['value']}" for r in fit_rows]
        csv = tmp_path / f"fit-without-{check['id']}.csv"
        csv.write_text("\n".join(lines) + "\n")
        out = tmp_path / "nano.yaml"
        cal = calibrate("jetson-nano:tensorrt", [str(csv)], free=["stacks.tensorrt.efficiency.conv"])
        out.write_text(dump_yaml(cal.written))
        assert max(map(abs, cal.result.log_errors_after)) < max(map(abs, cal.result.log_errors_before))
        hw = load_hardware(f"{out}:tensorrt")
        predicted = estimate(prepare(load_model(check["model"])), hw, precision=check["precision"]).latency_ms
        start = estimate(prepare(load_model(check["model"])), load_hardware("jetson-nano:tensorrt"),
                         precision=check["precision"]).latency_ms  # fmt: skip
        before.append(abs(start - float(check["value"])) / float(check["value"]))
        after.append(abs(predicted - float(check["value"])) / float(check["value"]))
        assert 100 * after[-1] <= float(check["tolerance_pct"]), (check["id"], after[-1])
    # on networks it did not see, the calibrated profile is closer on average (15.7 % -> 12.6 % today)
    assert sum(after) < sum(before)


def test_reads_the_validation_format_for_the_calibrated_profile_only(tmp_path):
    """The shipped published-measurements.csv as is: only its Jetson Nano TensorRT latency rows are used."""
    expected = [r["id"] for r in read_measurements(default_measurements())
                if (r["hardware"], r["stack"], r["metric"]) == ("jetson-nano", "tensorrt", "latency_ms")
                and r.get("status", "") != "disputed"]  # fmt: skip
    cal = calibrate("jetson-nano:tensorrt", [str(default_measurements())], free=["stacks.tensorrt.efficiency.conv"])
    assert [o.id for o in cal.measurements.observations] == expected
    with pytest.raises(EdgesimError, match="no latency_ms rows for mobile-gpu"):
        calibrate("mobile-gpu", [str(default_measurements())], free=["clock_hz"])


def test_a_float_model_without_precision_is_deployed_as_the_stack_runs_it(tmp_path):
    """cmsis-nn has int8 kernels only: a float zoo model measured without a precision is estimated after
    post-training int8 quantization, the rule estimate follows (simulator/deployment.py)."""
    from simulator.deployment import deploy

    hw = load_hardware("cortex-m7:cmsis-nn")
    models = ["resnet-8", "ds-cnn", "lenet-5"]
    expected = {m: estimate(prepare(deploy(load_model(m), hw).graph), hw).latency_ms for m in models}
    csv = tmp_path / "m.csv"
    csv.write_text("model,input,precision,latency_ms\n" + "".join(f"{m},,,{v * 1.1}\n" for m, v in expected.items()))
    cal = calibrate("cortex-m7:cmsis-nn", [str(csv)], free=["clock_hz"])
    assert cal.result.log_errors_before == pytest.approx([math.log(1.1)] * 3, abs=1e-9)


def test_three_models_calibrate_with_the_default_parameters(tmp_path, capsys):
    """The documented way to add a board: three whole-model latencies, no --free."""
    csv = _csv(tmp_path, ["resnet-8", "mobilenet-v1-0.25-vww", "fc-autoencoder"], factor=1.25)
    out = tmp_path / "board.yaml"
    assert main(["calibrate", "--hw", "cortex-m7:cmsis-nn", "--measurements", str(csv), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    fit = read_profile(out)["stacks"]["cmsis-nn"]["fit"]
    assert len(fit["parameters"]) == 2 and "left fixed for want of measurements" in text


def test_one_measurement_is_refused_with_the_default_parameters(tmp_path, capsys):
    csv = _csv(tmp_path, ["resnet-8"])
    code = main(["calibrate", "--hw", "cortex-m7", "--measurements", str(csv), "-o", str(tmp_path / "o.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "1 free parameter needs at least 2 measurements" in err and err.count("\n") == 1
