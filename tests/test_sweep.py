"""edgesim sweep: each cell equals what compare / estimate give for the same model, profile and plan; cells a
stack cannot run say why; the table is the same serially and on a 2-worker Dask cluster; bad grids are one
line with exit status 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from dask.distributed import Client, LocalCluster

from simulator.cli import main
from simulator.compare import compare_plans
from simulator.estimate import estimate
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.plan import load_plan
from simulator.search.scheduler import DaskRunner, SerialRunner
from simulator.search.sweep import load_grid, run_sweep

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "plans"


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


GRID = f"""models: [digits-cnn, lenet-5]
hardware: [cortex-m4, cortex-m7:tflm-portable]
plans: [{PLANS / "int8-per-channel.yaml"}, {PLANS / "w4a8-per-channel.yaml"}]
precisions: [fp32]
samples: 64
"""


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory):
    grid = load_grid(_grid(tmp_path_factory.mktemp("grid"), GRID))
    return grid, run_sweep(grid, SerialRunner(), load_model)


def test_cells_match_compare_and_estimate(serial_rows):
    grid, rows = serial_rows
    assert len(rows) == 2 * 2 * 3
    graph = load_model("digits-cnn")
    plans = [load_plan(PLANS / "int8-per-channel.yaml"), load_plan(PLANS / "w4a8-per-channel.yaml")]
    for spec in grid.hardware:
        hw = load_hardware(spec)
        reference = compare_plans(graph, hw, plans, samples=64)[1:]
        for ref in reference:
            row = next(
                r for r in rows if (r["model"], r["hardware"], r["variant"]) == ("digits-cnn", hw.label, ref.plan)
            )
            assert row["flash_bytes"] == ref.flash_bytes and row["peak_ram_bytes"] == ref.peak_ram_bytes
            assert row["latency_ms"] == pytest.approx(ref.latency_ms, rel=1e-12)
            assert row["accuracy"] == pytest.approx(ref.accuracy)
    # fp32 on an int8-only stack does not run and says which stack would; on tflm-portable it is the model itself
    m4 = next(
        r for r in rows if r["model"] == "lenet-5" and r["hardware"] == "cortex-m4:cmsis-nn" and r["variant"] == "fp32"
    )
    assert m4["latency_ms"] is None and "does not run" in m4["note"] and "tflm-portable" in m4["note"]
    m7 = next(r for r in rows if r["model"] == "lenet-5" and r["variant"] == "fp32" and "portable" in r["hardware"])
    est = estimate(load_model("lenet-5"), load_hardware("cortex-m7:tflm-portable"), precision="fp32")
    assert m7["latency_ms"] == pytest.approx(est.latency_ms) and m7["flash_bytes"] == est.flash_bytes
    assert m7["sqnr_db"] == float("inf")


def test_same_table_on_a_two_worker_dask_cluster(serial_rows):
    grid, rows = serial_rows
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:
        distributed = run_sweep(grid, DaskRunner(client, "test"), load_model)
    assert distributed == rows


def test_cli_writes_csv_and_plots(tmp_path):
    grid = _grid(tmp_path, f"models: [digits-cnn]\nhardware: [cortex-m4]\nplans: [{PLANS / 'int8-per-channel.yaml'}]\n")
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--scheduler", "serial", "-o", str(out), "--samples", "16"]) == 0
    with open(out / "sweep.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["model"], r["hardware"], r["variant"]) for r in table] == [
        ("digits-cnn", "cortex-m4:cmsis-nn", "int8-per-channel")
    ]
    assert (out / "latency-vs-fidelity.png").stat().st_size > 0 and (out / "fits.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("models: [digits-cnn]\nhardware: [cortex-m4]\n", "give 'plans', 'precisions' or both"),
        ("models: [digits-cnn]\nhardware: [cortex-m4]\nprecisions: [int3]\n", "precisions: 'int3' is not one of"),
        ("models: [digits-cnn]\nhardware: [cortex-m99]\nprecisions: [int8]\n", "hardware:"),
        ("model: [digits-cnn]\n", "unknown field 'model'"),
        ("models: digits-cnn\nhardware: [cortex-m4]\nplans: [missing.yaml]\n", "missing.yaml"),
        ("models: []\nhardware: [cortex-m4]\nprecisions: [int8]\n", "models: expected a non-empty list"),
    ],
)
def test_bad_grid_is_one_line_exit_2(tmp_path, capsys, text, needle):
    path = _grid(tmp_path, text)
    assert main(["sweep", str(path), "--scheduler", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and ("grid.yaml" in err or "missing.yaml" in err)
