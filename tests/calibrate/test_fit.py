"""The fit on synthetic truth: a profile with known numbers generates the measurements (with the estimator),
calibration starts from other numbers and must recover the known ones; and the leave-one-out errors checked
against the closed form of a one-parameter fit."""

from __future__ import annotations

import math
import statistics

import pytest

from simulator.calibrate.measurements import read_measurements
from simulator.calibrate.run import calibrate, default_free
from simulator.estimate import estimate

from .conftest import MCU_MODELS, shipped, truth_latencies, write_csv


def _placeholder(tmp_path, models, precision):
    return write_csv(tmp_path / "placeholder.csv", dict.fromkeys(models, 1.0), precision)


def test_recovers_known_parameters_from_whole_model_latencies(tmp_path):
    data = shipped("cortex-m7")
    stack = "cmsis-nn"
    # whichever numbers the stack exposes (efficiencies today, kernel parameters later), as chosen by default
    placeholder = read_measurements([str(_placeholder(tmp_path, MCU_MODELS, "int8"))])
    free, fixed = default_free(data, stack, placeholder)
    assert 2 <= len(free) < len(MCU_MODELS) and not fixed  # seven measurements support every sensitive one
    from simulator.calibrate.params import get_value, parameter

    truth = {}
    for k, path in enumerate(free):
        p = parameter(data, path)
        truth[path] = min(get_value(data, path) * (1.35 if k % 2 else 0.7), p.high)
    latencies = truth_latencies(data, stack, truth, MCU_MODELS, "int8")
    csv = write_csv(tmp_path / "m.csv", latencies, "int8")
    cal = calibrate(f"cortex-m7:{stack}", [str(csv)], free=free)
    for path, value in truth.items():
        assert cal.result.fitted[path] == pytest.approx(value, rel=0.02), path
    # the fitted profile reproduces every measurement; the start did not
    assert max(abs(e) for e in cal.result.log_errors_after) < 1e-3
    assert max(abs(e) for e in cal.result.log_errors_before) > 0.05
    assert max(abs(e) for e in cal.result.loo_log_errors) < 0.02


def test_recovers_from_per_layer_microprofiler_logs(tmp_path):
    data = shipped("cortex-m7")
    clock = data["clock_hz"]
    truth = {"stacks.cmsis-nn.efficiency.conv": 0.3, "stacks.cmsis-nn.efficiency.depthwise": 0.09}
    from simulator.calibrate.params import with_values
    from simulator.estimate import prepare
    from simulator.hardware import hardware_from_data
    from simulator.importers import load_model

    hw = hardware_from_data(with_values(data, truth), "cmsis-nn")
    items = []
    tflite_name = {"conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D", "pooling": "AVERAGE_POOL_2D",
                   "matmul": "FULLY_CONNECTED", "activation": "SOFTMAX", "data_movement": "RESHAPE"}  # fmt: skip
    for model in ("ds-cnn", "mobilenet-v1-0.25-vww"):
        est = estimate(prepare(load_model(model)), hw, precision="int8")
        lines = [f"{tflite_name[layer.op_class]} took {round(layer.latency_ms * 1e-3 * clock)} ticks (0 ms)."
                 for layer in est.layers]  # fmt: skip
        log = tmp_path / f"{model}.log"
        log.write_text("\n".join(lines) + "\n")
        items.append(f"{model}={log}")
    cal = calibrate("cortex-m7:cmsis-nn", items, free=list(truth), precision="int8")
    for path, value in truth.items():
        assert cal.result.fitted[path] == pytest.approx(value, rel=0.01)
    assert len(cal.result.loo_log_errors) == len(cal.measurements.observations) > 30


def test_one_scale_parameter_matches_the_closed_form(tmp_path):
    """Latency is exactly proportional to 1 / clock_hz, so the least-squares clock is the start clock times
    exp(mean ln(predicted / measured)), and leaving row i out predicts it with error e_i - mean of the others."""
    data = shipped("cortex-m7")
    models = ("resnet-8", "ds-cnn", "fc-autoencoder", "lenet-5")
    start = truth_latencies(data, "cmsis-nn", {}, models, "int8")
    factors = {"resnet-8": 1.3, "ds-cnn": 0.9, "fc-autoencoder": 1.1, "lenet-5": 1.25}  # measured / predicted
    csv = write_csv(tmp_path / "m.csv", {m: start[m] * factors[m] for m in models}, "int8")
    cal = calibrate("cortex-m7:cmsis-nn", [str(csv)], free=["clock_hz"])
    e = [math.log(factors[m]) for m in models]
    assert cal.result.fitted["clock_hz"] == pytest.approx(data["clock_hz"] * math.exp(-statistics.mean(e)), rel=1e-6)
    expected_loo = [e[i] - statistics.mean(e[:i] + e[i + 1 :]) for i in range(len(e))]
    assert cal.result.loo_log_errors == pytest.approx(expected_loo, abs=1e-6)
    assert cal.result.log_errors_before == pytest.approx(e, abs=1e-9)


def test_efficiency_stays_within_its_schema_bound(tmp_path):
    """Measurements faster than a perfect kernel could run push the efficiency to its bound of 1, not past."""
    data = shipped("cortex-m7")
    models = ("resnet-8", "cmsis-cifar10", "lenet-5")
    fast = truth_latencies(data, "cmsis-nn", {"stacks.cmsis-nn.efficiency.conv": 1.0}, models, "int8")
    csv = write_csv(tmp_path / "m.csv", {m: v * 0.5 for m, v in fast.items()}, "int8")
    cal = calibrate("cortex-m7:cmsis-nn", [str(csv)], free=["stacks.cmsis-nn.efficiency.conv"])
    assert cal.result.fitted["stacks.cmsis-nn.efficiency.conv"] == pytest.approx(1.0)


def test_a_lower_schema_bound_holds_too(tmp_path):
    """Measurements twice as slow as predicted would push a Winograd speed-up below 1; the schema's minimum
    of 1 holds, and the written profile is valid."""
    data = shipped("jetson-nano")
    models = ("resnet-18", "vgg-16")
    start = truth_latencies(data, "tensorrt", {}, models, "fp16")
    csv = write_csv(tmp_path / "m.csv", {m: v * 2 for m, v in start.items()}, "fp16")
    cal = calibrate("jetson-nano:tensorrt", [str(csv)], free=["stacks.tensorrt.winograd_3x3_speedup"])
    assert cal.result.fitted["stacks.tensorrt.winograd_3x3_speedup"] == pytest.approx(1.0)
    assert cal.written["stacks"]["tensorrt"]["winograd_3x3_speedup"] == pytest.approx(1.0)


def test_default_parameters_are_the_ones_measurements_are_sensitive_to(tmp_path):
    """A dense-only model exercises the matmul efficiency, not the conv or depthwise ones."""
    data = shipped("cortex-m7")
    dense = read_measurements([str(_placeholder(tmp_path, ("fc-autoencoder", "lenet-300-100"), "int8"))])
    free, fixed = default_free(data, "cmsis-nn", dense)
    assert "stacks.cmsis-nn.efficiency.matmul" in free
    assert not {"stacks.cmsis-nn.efficiency.conv", "stacks.cmsis-nn.efficiency.depthwise"} & set(free + fixed)


def test_default_takes_as_many_parameters_as_the_measurements_support(tmp_path):
    """Three models support two parameters: the two the measurements inform most (conv carries ResNet-8,
    depthwise the MobileNet), the third sensitive one (matmul, the autoencoder) stays and is named."""
    data = shipped("cortex-m7")
    three = read_measurements(
        [str(_placeholder(tmp_path, ("resnet-8", "mobilenet-v1-0.25-vww", "fc-autoencoder"), "int8"))]
    )
    free, fixed = default_free(data, "cmsis-nn", three)
    assert len(free) == 2 and len(free) + len(fixed) >= 3
    one = read_measurements([str(_placeholder(tmp_path, ("resnet-8",), "int8"))])
    free, _ = default_free(data, "cmsis-nn", one)
    assert len(free) == 1  # and calibrate refuses: one parameter needs two measurements
