"""Estimates against published measurements of real boards (hwprofiles/measurements/), each within the
tolerance the file gives. The profiles' numbers come from datasheets and papers, not from these rows."""

from __future__ import annotations

import pytest

from simulator.errors import EdgesimError
from simulator.validate import compare, default_measurements, read_measurements

ROWS = read_measurements(default_measurements())


@pytest.fixture(scope="module")
def comparisons():
    return {c.id: c for c in compare()}


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_row_within_tolerance(row, comparisons):
    c = comparisons[row["id"]]
    assert c.measured == float(row["value"])
    assert abs(c.error_pct) <= float(row["tolerance_pct"]), (
        f"{c.id}: predicted {c.predicted:.4g} vs measured {c.measured:g} {c.metric} ({c.error_pct:+.1f}%)"
    )


def test_shipped_file_matches_the_shared_reference():
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "published-measurements.csv"
    if not shared.is_file():
        pytest.skip("shared/ reference not beside this checkout")
    assert shared.read_text() == default_measurements().read_text()


def test_bad_measurement_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,model\nx,resnet-8\n")
    with pytest.raises(EdgesimError, match="missing columns"):
        read_measurements(path)
