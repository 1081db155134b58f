"""Error bars: the interval a measured latency or energy is expected in, around an estimate.

Method (docs/calibration.md, "Error bars"): errors are ``e = ln(measured / predicted)``. For a profile and
stack, the evidence is its own errors: the leave-one-out errors of its calibration (the stack's ``fit``
record), else the rows of the validation file for that profile and stack when the profile is the shipped one
unchanged. Few rows say little, so they are pooled with a prior: the errors of every (non-disputed) row of the
validation file for the metric, itself pooled with :data:`PRIOR_LOG_SIGMA`. With ``n`` own errors,

    centre  mu      = sum(e) / (n + k)                      (k = PRIOR_ROWS pseudo-rows of zero error)
    spread  sigma^2 = (sum((e - mu)^2) + k * s0^2) / (n + k)
    prior   s0^2    = (sum(E^2) + k0 * PRIOR_LOG_SIGMA^2) / (N + k0)  over the N pooled errors E
    interval        = predicted * exp(mu -/+ z * sigma * sqrt(1 + 1 / (n + k)))

with z the normal quantile of :data:`LEVEL` (two-sided). A stack with no rows gets the prior only, widened
by sqrt(1 + 1/k); a calibrated stack with small leave-one-out errors gets a narrower band. The validation file's
errors are computed once (the estimator re-runs each row) and cached in memory and on disk (:func:`cache_dir`),
keyed by the file's contents and the code, profiles and zoo they depend on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from functools import lru_cache
from pathlib import Path

from simulator.errors import EdgesimError
from simulator.hardware import Hardware, read_profile
from simulator.output import write_bytes
from simulator.resources import data_dir

LEVEL = 0.8
#: the spread of ln(measured / predicted) on networks a profile was not checked against: issue 11 measured a
#: median |error| near 30 % there, and a normal error with median |e| = ln 1.3 has sigma = ln 1.3 / 0.674
PRIOR_LOG_SIGMA = math.log(1.3) / 0.6745
PRIOR_ROWS = 2  # pseudo-rows the pooled spread counts for in a stack's spread
POOL_PRIOR_ROWS = 1  # pseudo-rows PRIOR_LOG_SIGMA counts for in the pooled spread
METRICS = ("latency_ms", "energy_uj")


@dataclass(frozen=True)
class Band:
    """ln(measured / predicted) is in [log_low, log_high] with probability LEVEL."""

    log_low: float
    log_high: float
    rows: int  # own errors it rests on
    basis: str  # where they come from

    def around(self, value: float | None) -> tuple[float | None, float | None]:
        if value is None:
            return None, None
        return value * math.exp(self.log_low), value * math.exp(self.log_high)


def band(own: Sequence[float], pooled: Sequence[float], basis: str = "") -> Band:
    """The LEVEL interval from a stack's own errors and the pooled errors of the metric (see module doc)."""
    z = statistics.NormalDist().inv_cdf(0.5 + LEVEL / 2)
    s0_sq = (sum(e * e for e in pooled) + POOL_PRIOR_ROWS * PRIOR_LOG_SIGMA**2) / (len(pooled) + POOL_PRIOR_ROWS)
    weight = len(own) + PRIOR_ROWS
    mu = sum(own) / weight
    sigma = math.sqrt((sum((e - mu) ** 2 for e in own) + PRIOR_ROWS * s0_sq) / weight)
    half = z * sigma * math.sqrt(1 + 1 / weight)
    return Band(mu - half, mu + half, len(own), basis)


@dataclass(frozen=True)
class RowError:
    id: str
    label: str  # profile:stack
    metric: str
    log_error: float


def validation_errors(path: Path | None = None) -> tuple[RowError, ...]:
    """ln(measured / predicted) of every row of the validation file not marked disputed."""
    from simulator.validate import default_measurements

    path = path or default_measurements()
    stat = path.stat()
    return _validation_errors(str(path), stat.st_mtime_ns, stat.st_size)


def cache_dir() -> Path:
    """Where computed validation errors are kept between runs: $EDGESIM_CACHE_DIR, else the user cache."""
    explicit = os.environ.get("EDGESIM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesim"


def _fingerprint(path: Path) -> str:
    """Changes whenever the errors could: the measurement file's bytes, and every file of the code, the
    profiles and the zoo (by name, size and modification time)."""
    digest = hashlib.sha256(path.read_bytes())
    for root in (Path(__file__).resolve().parents[1], data_dir("hwprofiles"), data_dir("models")):
        for f in sorted(root.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                stat = f.stat()
                digest.update(f"{f.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _computed(path: Path) -> tuple[RowError, ...]:
    from simulator.validate import compare, read_measurements

    disputed = {r["id"] for r in read_measurements(path) if r.get("status", "").strip() == "disputed"}
    return tuple(
        RowError(c.id, c.hardware, c.metric, math.log(c.measured / c.predicted))
        for c in compare(path)
        if c.id not in disputed and c.predicted > 0
    )


@lru_cache(maxsize=4)
def _validation_errors(path: str, mtime_ns: int, size: int) -> tuple[RowError, ...]:
    """Computed once per process, and kept on disk keyed by :func:`_fingerprint` (a cache: when it cannot be
    read or written the errors are simply computed)."""
    cached = cache_dir() / f"validation-errors-{_fingerprint(Path(path))}.json"
    try:
        return tuple(RowError(*row) for row in json.loads(cached.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    errors = _computed(Path(path))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(json.dumps([list(astuple(e)) for e in errors]).encode(), cached)
    except (OSError, EdgesimError):
        pass
    return errors


@lru_cache(maxsize=64)
def _shipped_unchanged(path: str, name: str) -> bool:
    shipped = data_dir("hwprofiles") / f"{name}.yaml"
    if not shipped.is_file():
        return False
    if Path(path).resolve() == shipped.resolve():
        return True
    try:
        return read_profile(Path(path)) == read_profile(shipped)
    except EdgesimError:  # an unreadable or invalid file is simply not the shipped profile
        return False


@lru_cache(maxsize=64)
def _fit_record(path: str, stack: str, mtime_ns: int) -> tuple[float, ...] | None:
    fit = read_profile(Path(path))["stacks"][stack].get("fit")
    return tuple(fit["loo_log_errors"]) if fit else None


def _fit_errors(hw: Hardware) -> list[float] | None:
    if not hw.path or not Path(hw.path).is_file():
        return None
    errors = _fit_record(hw.path, hw.stack.name, Path(hw.path).stat().st_mtime_ns)
    return list(errors) if errors else None


def bands(hw: Hardware, errors: Sequence[RowError] | None = None) -> dict[str, Band]:
    """The latency and energy bands of ``hw`` (its profile and stack)."""
    errors = validation_errors() if errors is None else errors
    shipped = bool(hw.path) and _shipped_unchanged(hw.path, hw.name)
    fitted = _fit_errors(hw)
    out = {}
    for metric in METRICS:
        pooled = [e.log_error for e in errors if e.metric == metric]
        if metric == "latency_ms" and fitted:
            out[metric] = band(fitted, pooled, f"leave-one-out errors of its calibration ({len(fitted)})")
            continue
        own = [e.log_error for e in errors if e.metric == metric and e.label == hw.label] if shipped else []
        basis = f"validation rows of {hw.label} ({len(own)})" if own else "the pooled validation errors (no own rows)"
        out[metric] = band(own, pooled, basis)
    return out


def intervals(est, hw_bands: dict[str, Band] | None = None) -> dict[str, float | None]:
    """``latency_ms_low/high`` and ``energy_uj_low/high`` of an Estimate at LEVEL."""
    b = hw_bands or bands(est.hardware)
    totals = est.totals()
    out = {}
    for metric in METRICS:
        low, high = b[metric].around(totals[metric])
        out[f"{metric}_low"], out[f"{metric}_high"] = low, high
    return out


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def interval_text(low: float | None, high: float | None) -> str:
    """``(28-41)``: the bounds to about three significant figures."""
    return "" if low is None or high is None else f"({_figure(low)}-{_figure(high)})"


def loo_coverage(errors: Sequence[RowError] | Path | None = None) -> tuple[int, int]:
    """(rows inside their LEVEL interval, rows) when each row's interval is built without that row; ``errors``
    are a validation file's (the shipped one by default) or given directly."""
    if errors is None or isinstance(errors, Path):
        errors = validation_errors(errors)
    errors = tuple(errors)
    inside = 0
    for i, row in enumerate(errors):
        rest = errors[:i] + errors[i + 1 :]
        pooled = [e.log_error for e in rest if e.metric == row.metric]
        own = [e.log_error for e in rest if e.metric == row.metric and e.label == row.label]
        b = band(own, pooled)
        inside += b.log_low <= row.log_error <= b.log_high
    return inside, len(errors)
