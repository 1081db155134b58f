"""Error bars: the interval arithmetic by hand, the method's coverage on data drawn with a known spread, the
leave-one-out coverage on the shipped validation file, and which evidence a profile's band rests on."""

from __future__ import annotations

import json
import math
import random

import pytest

from simulator.calibrate.params import with_values
from simulator.cli import main
from simulator.estimate.uncertainty import (
    LEVEL,
    POOL_PRIOR_ROWS,
    PRIOR_LOG_SIGMA,
    PRIOR_ROWS,
    RowError,
    band,
    bands,
    interval_text,
    loo_coverage,
    validation_errors,
)
from simulator.hardware import load_hardware, read_profile
from simulator.resources import data_dir
from simulator.yamlio import dump_yaml

Z80 = 1.2815515655446004  # the 90th percentile of the standard normal: a two-sided 80 % interval


def test_band_by_hand():
    assert LEVEL == 0.8 and PRIOR_ROWS == 2 and POOL_PRIOR_ROWS == 1
    own, pooled = [0.1, 0.3], [0.2, -0.2, 0.1]
    s0_sq = (0.04 + 0.04 + 0.01 + PRIOR_LOG_SIGMA**2) / 4
    mu = 0.4 / 4
    sigma = math.sqrt(((0.1 - mu) ** 2 + (0.3 - mu) ** 2 + 2 * s0_sq) / 4)
    half = Z80 * sigma * math.sqrt(1 + 1 / 4)
    b = band(own, pooled)
    assert (b.log_low, b.log_high) == pytest.approx((mu - half, mu + half))
    assert b.around(10.0) == pytest.approx((10 * math.exp(mu - half), 10 * math.exp(mu + half)))


def test_no_rows_fall_back_to_a_wider_prior():
    pooled = [0.1, -0.1, 0.05, -0.05] * 5
    alone = band([], pooled)
    well_measured = band([0.05, -0.05] * 10, pooled)
    assert alone.log_low == -alone.log_high  # no own evidence of a bias
    assert alone.log_high - alone.log_low > well_measured.log_high - well_measured.log_low
    assert band([], []).log_high == pytest.approx(Z80 * PRIOR_LOG_SIGMA * math.sqrt(1.5))


def test_method_covers_about_the_level_when_errors_have_a_known_spread():
    """Groups (profile:stack) of rows with their own bias and spread: leave-one-out, the 80 % band holds
    close to 80 % of them (2400 rows: the binomial standard error is 0.8 %)."""
    rng = random.Random(7)
    rows = []
    for g in range(60):
        bias, spread = rng.gauss(0, 0.1), rng.uniform(0.1, 0.3)
        rows += [RowError(f"{g}-{i}", f"p{g}:s", "latency_ms", rng.gauss(bias, spread)) for i in range(40)]
    inside, total = loo_coverage(rows)
    assert total == 2400 and abs(inside / total - LEVEL) < 0.03


def test_coverage_on_the_shipped_validation_file():
    inside, total = loo_coverage()
    assert total >= 10
    tolerance = 2 * math.sqrt(LEVEL * (1 - LEVEL) / total) + 1 / total  # two binomial standard errors
    assert abs(inside / total - LEVEL) <= tolerance, (inside, total)


def test_disputed_rows_carry_no_weight(tmp_path):
    header = "id,model,input,hardware,stack,board,clock_mhz,precision,batch,metric,value,tolerance_pct,source,status"
    rows = [
        "kept,lenet-5,1x1x28x28,cortex-m7,cmsis-nn,b,480,int8,1,latency_ms,5.0,25,s,",
        "dropped,lenet-5,1x1x28x28,cortex-m7,cmsis-nn,b,480,int8,1,latency_ms,9.0,25,s,disputed",
    ]
    path = tmp_path / "m.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    errors = validation_errors(path)
    assert [e.id for e in errors] == ["kept"] and errors[0].label == "cortex-m7:cmsis-nn"


def test_shipped_profile_uses_its_rows_and_a_changed_copy_does_not(tmp_path):
    errors = validation_errors()
    labels = {e.label for e in errors}
    label = sorted(labels)[0]
    name, stack = label.split(":")
    shipped = bands(load_hardware(label))
    own = [e.log_error for e in errors if e.label == label and e.metric == "latency_ms"]
    if own:
        assert shipped["latency_ms"].rows == len(own)
    data = read_profile(data_dir("hwprofiles") / f"{name}.yaml")
    copy = tmp_path / "same.yaml"
    copy.write_text(dump_yaml(data))
    assert bands(load_hardware(f"{copy}:{stack}")) == shipped
    changed = tmp_path / "faster.yaml"
    changed.write_text(dump_yaml(with_values(data, {"clock_hz": data["clock_hz"] * 2})))
    assert bands(load_hardware(f"{changed}:{stack}"))["latency_ms"].rows == 0


def test_a_calibrated_profile_has_a_narrower_band(tmp_path):
    data = read_profile(data_dir("hwprofiles") / "cortex-m7.yaml")
    board = tmp_path / "board.yaml"
    board.write_text(dump_yaml(with_values(data, {"clock_hz": 400e6})))
    before = bands(load_hardware(f"{board}:cmsis-nn"))["latency_ms"]
    fitted = with_values(data, {"clock_hz": 400e6})
    fitted["stacks"]["cmsis-nn"]["fit"] = {
        "date": "2026-01-01",
        "parameters": {"clock_hz": {"start": 480e6, "fitted": 400e6}},
        "measurements": ["a", "b", "c", "d", "e"],
        "loo_log_errors": [0.02, -0.03, 0.01, 0.04, -0.02],
    }
    fitted["sources"]["stacks.cmsis-nn.fit"] = "edgesim calibrate 2026-01-01"
    calibrated = tmp_path / "calibrated.yaml"
    calibrated.write_text(dump_yaml(fitted))
    after = bands(load_hardware(f"{calibrated}:cmsis-nn"))["latency_ms"]
    assert after.rows == 5 and "calibration" in after.basis
    assert after.log_high - after.log_low < before.log_high - before.log_low


def test_estimate_json_and_table_carry_the_interval(capsys):
    assert main(["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    t = data["totals"]
    b = bands(load_hardware("cortex-m7"))
    assert t["latency_ms_low"] == pytest.approx(t["latency_ms"] * math.exp(b["latency_ms"].log_low))
    assert t["latency_ms_low"] < t["latency_ms_high"] and t["energy_uj_low"] < t["energy_uj_high"]
    assert data["interval"]["level"] == LEVEL
    assert main(["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8"]) == 0
    out = capsys.readouterr().out
    assert f"latency_ms: {t['latency_ms']:.3f} {interval_text(t['latency_ms_low'], t['latency_ms_high'])}" in out


def test_interval_text():
    assert interval_text(28.04, 41.2) == "(28-41.2)"
    assert interval_text(3395.3, 8329.2) == "(3,395-8,329)"
    assert interval_text(None, None) == ""


def test_compare_rows_carry_the_interval():
    from simulator.compare import compare_plans
    from simulator.importers import load_model

    hw = load_hardware("cortex-m4")
    row = compare_plans(load_model("digits-mlp"), hw, [], samples=2)[0]
    b = bands(hw)
    assert row.latency_ms_low == pytest.approx(row.latency_ms * math.exp(b["latency_ms"].log_low))
    assert row.energy_uj_high == pytest.approx(row.energy_uj * math.exp(b["energy_uj"].log_high))
    assert {"latency_ms_low", "energy_uj_high"} <= set(row.as_dict())
