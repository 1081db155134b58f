"""`edgesim calibrate`: pick the free parameters, fit them, and write the calibrated profile.

The free parameters are ``--free``, else the stack's ``calibrate`` list when it has one (refused when the
measurements cannot support that many), else the numbers of the stack's block (efficiencies, kernel-model
parameters) and its per-layer overhead that the measurements are sensitive to (a 1 % change moving some
prediction by at least :data:`MIN_ELASTICITY` %; for an efficiency, the compute share of its op class), the
most informative independent ones first, as many as the measurements support; the others stay as they are and
the output says so. Never one parameter per layer.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.calibrate.fit import (
    MIN_ELASTICITY,
    FitResult,
    Predictor,
    check_supported,
    elasticities,
    error_pct,
    fit,
    independent_columns,
    summary,
)
from simulator.calibrate.measurements import Measurements, read_measurements
from simulator.calibrate.params import parameter, with_values
from simulator.errors import EdgesimError
from simulator.hardware import load_hardware, parse_profile, read_profile
from simulator.output import table


@dataclass(frozen=True)
class Calibration:
    data: dict  # the profile as read
    stack: str
    measurements: Measurements
    result: FitResult
    written: dict  # the calibrated profile
    date: str


def _stack_numbers(data: dict, stack: str) -> list[str]:
    """Dotted paths of the stack's own numbers (not its fit record), plus the per-layer overhead it inherits."""
    out = []

    def walk(value, path: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float) and value > 0:
            out.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")

    block = data["stacks"][stack]
    for key, value in block.items():
        if key not in ("fit", "calibrate"):
            walk(value, f"stacks.{stack}.{key}")
    overhead = f"stacks.{stack}.layer_overhead_cycles"
    if overhead not in out and "layer_overhead_cycles" not in block and data.get("layer_overhead_cycles", 0) > 0:
        out.append(overhead)
    return out


def default_free(data: dict, stack: str, m: Measurements) -> tuple[list[str], list[str]]:
    """(parameters to fit, sensitive parameters left fixed): the stack's numbers that move some measurement's
    prediction by at least MIN_ELASTICITY per unit of relative change (for an efficiency, the compute share of
    its op class; for the overhead, its share), the most informative independent ones first, as many as the
    measurements support (one fewer than there are, to leave one out)."""
    candidates = [parameter(data, path) for path in _stack_numbers(data, stack)]
    if not candidates:
        return [], []
    jac = elasticities(Predictor(data, stack, m), candidates)
    sensitive = [j for j in range(len(candidates)) if float(np.max(np.abs(jac[:, j]))) >= MIN_ELASTICITY]
    ranked = [sensitive[k] for k in independent_columns(jac[:, sensitive])]
    supported = max(len(m.observations) - 1, 1)
    chosen = ranked[:supported]

    def names(indices) -> list[str]:
        return sorted(candidates[j].path for j in indices)

    if len(ranked) > supported:
        m.notes.append(
            f"left fixed for want of measurements: {', '.join(names(ranked[supported:]))}; "
            f"{len(ranked) + 1} measurements would let all {len(ranked)} be fitted"
        )
    tied = [j for j in sensitive if j not in ranked]
    if tied:
        m.notes.append(f"left fixed, as these measurements move them like the others: {', '.join(names(tied))}")
    return names(chosen), names(j for j in sensitive if j not in chosen)


def _date(files: list[Path]) -> str:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else the newest measurement file's date (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            stamp = int(epoch)
        except ValueError:
            raise EdgesimError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    else:
        stamp = max(int(f.stat().st_mtime) for f in files)
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d")


def _round(value: float, integer: bool) -> float | int:
    return int(round(value)) if integer else float(f"{value:.6g}")


def _written(data: dict, stack: str, m: Measurements, result: FitResult, date: str) -> dict:
    values = {p.path: _round(result.fitted[p.path], p.integer) for p in result.parameters}
    out = with_values(data, values)
    files = ", ".join(m.files)
    ids = [o.id for o in m.observations]
    out["stacks"][stack]["fit"] = {
        "date": date,
        "parameters": {p.path: {"start": p.start, "fitted": values[p.path]} for p in result.parameters},
        "measurements": ids,
        "log_errors": [round(e, 6) for e in result.log_errors_after],
        "loo_log_errors": [round(e, 6) for e in result.loo_log_errors],
        "loo_error_pct_before": {k: round(v, 3) for k, v in summary(result.log_errors_before).items()},
        "loo_error_pct_after": {k: round(v, 3) for k, v in summary(result.loo_log_errors).items()},
    }
    sources = out["sources"]
    for p in result.parameters:
        sources[p.path] = (
            f"edgesim calibrate {date}: least squares on ln latency over {len(ids)} measurements ({files}); "
            f"started from {p.start:g}"
        )
    sources[f"stacks.{stack}.fit"] = f"edgesim calibrate {date}: the fit's record and leave-one-out errors ({files})"
    return parse_profile(out)


def calibrate(
    spec: str,
    items: list[str],
    *,
    free: list[str] | None = None,
    precision: str | None = None,
    ticks_per_second: float | None = None,
) -> Calibration:
    hw = load_hardware(spec)
    data = read_profile(Path(hw.path))
    stack = hw.stack.name
    m = read_measurements(items, precision, ticks_per_second or hw.clock_hz, hw)
    paths = free or data["stacks"][stack].get("calibrate")
    if not paths:
        paths, _ = default_free(data, stack, m)
    if not paths:
        raise EdgesimError(
            f"{hw.label}: no parameter to fit (no number of the stack moves these measurements' predictions); "
            "name some with --free"
        )
    params = [parameter(data, path) for path in paths]
    check_supported(params, len(m.observations), f"{', '.join(m.files)}")
    result = fit(Predictor(data, stack, m), params, [o.measured_ms for o in m.observations])
    files = [Path(item.partition("=")[2]) if "=" in item and not Path(item).is_file() else Path(item) for item in items]
    date = _date(files)
    return Calibration(data, stack, m, result, _written(data, stack, m, result, date), date)


def render(cal: Calibration) -> str:
    """What was fitted and how well, for the terminal."""
    r = cal.result
    rows = [[p.path, f"{p.start:.4g}", f"{r.fitted[p.path]:.4g}"] for p in r.parameters]
    text = f"calibrated {cal.data['name']}:{cal.stack} on {len(r.loo_log_errors)} measurements\n\n"
    text += table(["parameter", "start", "fitted"], rows)
    before, after = summary(r.log_errors_before), summary(r.loo_log_errors)
    text += (
        f"\nleave-one-out |error|: before median {before['median']:.1f}% worst {before['worst']:.1f}%; "
        f"after median {after['median']:.1f}% worst {after['worst']:.1f}%\n\n"
    )
    obs = cal.measurements.observations
    rows = [
        [o.id, f"{o.measured_ms:.4g}", f"{error_pct(b):.1f}", f"{error_pct(a):.1f}", f"{error_pct(loo):.1f}"]
        for o, b, a, loo in zip(obs, r.log_errors_before, r.log_errors_after, r.loo_log_errors, strict=True)
    ]
    text += table(["measurement", "measured ms", "|err| before %", "|err| fitted %", "|err| left out %"], rows)
    text += "".join(f"{note}\n" for note in cal.measurements.notes)
    return text
