"""Estimates against published measurements of real models on real boards.

The measurement file (CSV: id, model, input, hardware, stack, ..., precision, batch, metric, value,
tolerance_pct, source) ships in hwprofiles/measurements/; ``--data`` points at another set, so estimates
can be judged on measurements the profiles were not built from.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import EdgesimError
from simulator.estimate import estimate, prepare
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.resources import data_dir

METRICS = ("latency_ms", "energy_uj")
COLUMNS = (
    "id",
    "model",
    "input",
    "hardware",
    "stack",
    "precision",
    "batch",
    "metric",
    "value",
    "tolerance_pct",
    "source",
)


def default_measurements() -> Path:
    return data_dir("hwprofiles") / "measurements" / "published-measurements.csv"


@dataclass(frozen=True)
class Comparison:
    id: str
    model: str
    hardware: str
    precision: str
    metric: str
    measured: float
    predicted: float
    tolerance_pct: float
    source: str

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted - self.measured) / self.measured

    @property
    def within(self) -> bool:
        return abs(self.error_pct) <= self.tolerance_pct


def input_size(text: str) -> int:
    """Elements of an input written as 1x32x32x3."""
    try:
        dims = [int(d) for d in text.lower().split("x")]
    except ValueError:
        dims = []
    if not dims or min(dims) < 1:
        raise EdgesimError(f"input {text!r}: expected dimensions such as 1x32x32x3")
    return math.prod(dims)


def read_measurements(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise EdgesimError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not rows:
        raise EdgesimError(f"{path}: no measurements in it")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise EdgesimError(f"{path}: missing columns {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    for i, row in enumerate(rows, start=2):
        if row["metric"] not in METRICS:
            raise EdgesimError(f"{path}: line {i}: metric {row['metric']!r} is not one of {', '.join(METRICS)}")
        try:
            float(row["value"]), float(row["tolerance_pct"])
        except ValueError:
            raise EdgesimError(f"{path}: line {i}: value and tolerance_pct must be numbers") from None
        if row["batch"] != "1":
            raise EdgesimError(f"{path}: line {i}: only batch 1 is modelled")
    return rows


def compare(path: Path | None = None, hardware: str | None = None) -> list[Comparison]:
    """Predicted vs measured for every row (of one hardware profile when ``hardware`` is given)."""
    path = path or default_measurements()
    rows = read_measurements(path)
    if hardware is not None:
        rows = [r for r in rows if r["hardware"] == hardware or f"{r['hardware']}:{r['stack']}" == hardware]
        if not rows:
            raise EdgesimError(f"{path}: no measurements for hardware {hardware!r}")
    prepared: dict[str, object] = {}
    out = []
    for row in rows:
        if row["model"] not in prepared:
            prepared[row["model"]] = prepare(load_model(row["model"]))
        graph = prepared[row["model"]]
        expected = input_size(row["input"])
        actual = graph.graph.tensors[graph.graph.inputs[0]].size
        if expected != actual:
            raise EdgesimError(
                f"{path}: {row['id']}: input {row['input']} has {expected} elements, {row['model']} takes {actual}"
            )
        hw = load_hardware(f"{row['hardware']}:{row['stack']}")
        totals = estimate(graph, hw, precision=row["precision"]).totals()
        predicted = totals[row["metric"]]
        if predicted is None:
            raise EdgesimError(f"{path}: {row['id']}: {hw.label} models energy only, not {row['metric']}")
        out.append(
            Comparison(
                row["id"], row["model"], hw.label, row["precision"], row["metric"], float(row["value"]),
                float(predicted), float(row["tolerance_pct"]), row["source"],
            )
        )  # fmt: skip
    return out
