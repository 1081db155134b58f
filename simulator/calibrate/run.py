"""`edgesim calibrate`: pick the free parameters, fit them, and write the calibrated profile.

The free parameters are the stack's ``calibrate`` list when it has one (or ``--free``), else the stack's
efficiencies of the op classes that carry at least :data:`MIN_SHARE` of some measurement's predicted time,
plus its per-layer overhead under the same rule: a parameter behind less than that is below what a
measurement can tell from noise. Never one parameter per layer.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from simulator.calibrate.fit import FitResult, Predictor, check_supported, error_pct, fit, summary
from simulator.calibrate.measurements import Measurements, read_measurements
from simulator.calibrate.params import parameter, with_values
from simulator.errors import EdgesimError
from simulator.estimate import estimate
from simulator.hardware import hardware_from_data, load_hardware, parse_profile, read_profile
from simulator.output import table

MIN_SHARE = 0.05


@dataclass(frozen=True)
class Calibration:
    data: dict  # the profile as read
    stack: str
    measurements: Measurements
    result: FitResult
    written: dict  # the calibrated profile
    date: str


def default_free(data: dict, stack: str, m: Measurements) -> list[str]:
    hw = hardware_from_data(data, stack)
    efficiency = data["stacks"][stack].get("efficiency", {})
    overhead = f"stacks.{stack}.layer_overhead_cycles"
    largest: dict[str, float] = {}  # parameter path -> its largest share of one measurement's predicted time
    estimates = {}
    for o in m.observations:
        key = (o.model, o.precision)
        if key not in estimates:
            estimates[key] = estimate(m.graphs[o.model], hw, precision=o.precision).layers
        layers = estimates[key]
        picked = [layers[i] for i in (o.layers if o.layers is not None else range(len(layers)))]
        total = sum(layer.latency_ms for layer in picked) or 1.0
        shares: dict[str, float] = {}
        for layer in picked:
            if layer.op_class in efficiency:
                path = f"stacks.{stack}.efficiency.{layer.op_class}"
                shares[path] = shares.get(path, 0.0) + layer.latency_ms / total
            shares[overhead] = shares.get(overhead, 0.0) + layer.overhead_cycles / hw.clock_hz * 1e3 / total
        for path, share in shares.items():
            largest[path] = max(largest.get(path, 0.0), share)
    return sorted(path for path, share in largest.items() if share >= MIN_SHARE)


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
    m = read_measurements(items, precision, ticks_per_second or hw.clock_hz, (data["name"], stack))
    paths = free or data["stacks"][stack].get("calibrate") or default_free(data, stack, m)
    if not paths:
        raise EdgesimError(
            f"{hw.label}: no parameter to fit (the stack has no efficiency the measurements exercise); "
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
