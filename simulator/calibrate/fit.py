"""Fitting a stack's free parameters to measured latencies, and judging the fit by leaving one out.

The fit minimises the sum over observations of (ln measured - ln predicted)^2: a ratio error counts the same
on a 1 ms layer and a 1 s model, and the model is multiplicative in most parameters (latency ~ 1 / efficiency,
~ overhead cycles). Parameters are fitted as logarithms (so they stay positive) with Levenberg-Marquardt
steps on a finite-difference Jacobian, each step projected onto the schema's bounds (efficiency <= 1, a
Winograd speed-up >= 1).
Every prediction re-builds the hardware from the profile data through simulator.hardware and re-runs the
estimator, so the fit knows nothing of the estimator's internals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.calibrate.measurements import Measurements
from simulator.calibrate.params import Parameter, with_values
from simulator.errors import EdgesimError
from simulator.estimate import estimate
from simulator.hardware import hardware_from_data

#: a parameter whose 1 % change moves no observation by this much (in ln latency) is not determined
MIN_SENSITIVITY = 1e-4
#: ... and one that moves none by MIN_ELASTICITY % is not worth fitting: calibrate leaves it out of its
#: default set, and a leave-one-out fold whose other measurements do not reach it keeps its start value
MIN_ELASTICITY = 0.05
_STEP = 1e-4  # finite-difference step in ln(parameter)
#: no parameter moves more than this factor from its start (ln 1000): a fit that wants a datasheet-derived number
#: a thousand times off is fitting a model error (or an under-determined leave-one-out fold), not calibrating
MAX_LOG_MOVE = math.log(1000.0)


class Predictor:
    """Predicted latency (ms) of every observation for given parameter values."""

    def __init__(self, data: dict, stack: str, measurements: Measurements):
        self.data, self.stack, self.m = data, stack, measurements
        self.keys = sorted({(o.model, o.precision or "") for o in measurements.observations})

    def layer_latencies(self, values: dict[str, float]) -> dict[tuple[str, str], np.ndarray]:
        hw = hardware_from_data(with_values(self.data, values), self.stack)
        if hw.energy_only:
            raise EdgesimError(f"{hw.label} models energy only; there is no latency to calibrate")
        out = {}
        for model, precision in self.keys:
            est = estimate(self.m.graphs[model], hw, precision=precision or None)
            out[(model, precision)] = np.array([layer.latency_ms for layer in est.layers], dtype=float)
        return out

    def __call__(self, values: dict[str, float]) -> np.ndarray:
        per_model = self.layer_latencies(values)
        out = []
        for o in self.m.observations:
            lat = per_model[(o.model, o.precision or "")]
            out.append(lat.sum() if o.layers is None else lat[list(o.layers)].sum())
        return np.array(out)


@dataclass(frozen=True)
class FitResult:
    parameters: tuple[Parameter, ...]
    fitted: dict[str, float]
    log_errors_before: tuple[float, ...]  # ln(measured / predicted) at the starting values
    log_errors_after: tuple[float, ...]  # the same after the fit (in sample)
    loo_log_errors: tuple[float, ...]  # each observation predicted by a fit to all the others


def error_pct(log_error: float) -> float:
    """|predicted - measured| / measured in percent, from ln(measured / predicted)."""
    return 100.0 * abs(math.exp(-log_error) - 1.0)


def summary(log_errors: Sequence[float]) -> dict[str, float]:
    pct = [error_pct(e) for e in log_errors]
    return {"median": statistics.median(pct), "worst": max(pct)}


def _values(params: Sequence[Parameter], phi: np.ndarray) -> dict[str, float]:
    return {p.path: float(math.exp(x)) for p, x in zip(params, phi, strict=True)}


def _jacobian(predict, params, phi: np.ndarray, base: np.ndarray) -> np.ndarray:
    """d ln(predicted) / d ln(parameter), one column per parameter (forward differences)."""
    cols = []
    for j in range(len(params)):
        moved = phi.copy()
        moved[j] += _STEP
        cols.append((np.log(predict(_values(params, moved))) - np.log(base)) / _STEP)
    return np.stack(cols, axis=1)


def elasticities(predict: Predictor, params: Sequence[Parameter]) -> np.ndarray:
    """d ln predicted / d ln parameter at the start values: one row per observation, one column per parameter."""
    phi = np.array([math.log(p.start) for p in params])
    return _jacobian(predict, params, phi, predict(_values(params, phi)))


def independent_columns(jac: np.ndarray, tolerance: float = 1e-3) -> list[int]:
    """Columns in the order column-pivoted Gram-Schmidt picks them (the one the measurements see most, then the
    one most independent of those already picked), stopping when what is left is below ``tolerance`` of the
    largest column: parameters the measurements tell apart, most informative first."""
    rest = np.array(jac, dtype=float)
    largest = float(np.max(np.linalg.norm(rest, axis=0))) if rest.size else 0.0
    order: list[int] = []
    for _ in range(min(rest.shape)):
        norms = np.linalg.norm(rest, axis=0)
        norms[order] = -1.0
        j = int(np.argmax(norms))
        if norms[j] <= tolerance * largest:
            break
        order.append(j)
        q = rest[:, j] / norms[j]
        rest -= np.outer(q, q @ rest)
    return order


def least_squares(
    predict, params: Sequence[Parameter], log_measured: np.ndarray, rows: np.ndarray, phi0: np.ndarray
) -> np.ndarray:
    """ln(parameters) minimising sum((ln measured - ln predicted)^2) over ``rows`` (Levenberg-Marquardt)."""
    upper = np.array([min(math.log(p.high) if math.isfinite(p.high) else math.inf, x + MAX_LOG_MOVE)
                      for p, x in zip(params, phi0, strict=True)])  # fmt: skip
    lower = np.array([max(math.log(p.low) if p.low > 0 else -math.inf, x - MAX_LOG_MOVE)
                      for p, x in zip(params, phi0, strict=True)])  # fmt: skip
    phi = np.clip(phi0.astype(float), lower, upper)
    pred = predict(_values(params, phi))
    resid = (log_measured - np.log(pred))[rows]
    cost = float(resid @ resid)
    damping = 1e-3
    for _ in range(100):
        jac = _jacobian(predict, params, phi, pred)[rows]
        normal = jac.T @ jac
        gradient = jac.T @ resid
        improved = False
        while damping < 1e12:
            damped = normal + damping * (np.diag(np.diag(normal)) + 1e-12 * np.eye(len(params)))
            step = np.linalg.solve(damped, gradient)
            trial = np.clip(phi + step, lower, upper)
            trial_pred = predict(_values(params, trial))
            trial_resid = (log_measured - np.log(trial_pred))[rows]
            trial_cost = float(trial_resid @ trial_resid)
            if trial_cost < cost:
                improved = True
                moved = float(np.max(np.abs(trial - phi)))
                gain = cost - trial_cost
                phi, pred, resid, cost = trial, trial_pred, trial_resid, trial_cost
                damping = max(damping / 10, 1e-12)
                break
            damping *= 10
        if not improved or moved < 1e-10 or gain < 1e-14 * (1 + cost):
            break
    return phi


def check_supported(params: Sequence[Parameter], n_observations: int, what: str) -> None:
    needed = len(params) + 1
    if n_observations < needed:
        raise EdgesimError(
            f"{len(params)} free parameter{'s need' if len(params) != 1 else ' needs'} at least {needed} measurements "
            f"(one more than the parameters, to leave one out); got {n_observations} from {what}: "
            f"add {needed - n_observations} more, or free fewer parameters (--free)"
        )


def fit(predict: Predictor, params: Sequence[Parameter], measured: Sequence[float]) -> FitResult:
    """Fit ``params`` to all observations, then refit without each one in turn to predict it."""
    params = tuple(params)
    log_measured = np.log(np.asarray(measured, dtype=float))
    n = len(log_measured)
    phi0 = np.array([math.log(p.start) for p in params])
    base = predict(_values(params, phi0))
    jac = _jacobian(predict, params, phi0, base)
    for j, p in enumerate(params):
        if float(np.max(np.abs(jac[:, j]))) < MIN_SENSITIVITY:
            raise EdgesimError(
                f"{p.path}: no measurement depends on it (no measured layer uses it); leave it out of the free "
                "parameters (--free / the stack's calibrate list) or add a measurement that exercises it"
            )
    scaled = jac / np.linalg.norm(jac, axis=0)
    singular = np.linalg.svd(scaled, compute_uv=False)
    if singular[-1] < 1e-6 * singular[0]:
        raise EdgesimError(
            f"the measurements cannot tell {', '.join(p.path for p in params)} apart (they move every "
            "measurement in the same proportion); free fewer parameters or measure models that use them differently"
        )
    everything = np.arange(n)
    phi = least_squares(predict, params, log_measured, everything, phi0)
    after = log_measured - np.log(predict(_values(params, phi)))
    loo = []
    for i in range(n):
        rows = np.delete(everything, i)
        # refit from the start (nothing seen of i) the parameters the other measurements inform; one they do
        # not (the left-out row was the only one using it) keeps its start value
        active = [j for j in range(len(params)) if float(np.max(np.abs(jac[rows, j]))) >= MIN_ELASTICITY]
        values = {}
        if active:
            subset = [params[j] for j in active]
            values = _values(subset, least_squares(predict, subset, log_measured, rows, phi0[active]))
        loo.append(float(log_measured[i] - math.log(predict(values)[i])))
    return FitResult(
        params,
        _values(params, phi),
        tuple(float(e) for e in log_measured - np.log(base)),
        tuple(float(e) for e in after),
        tuple(loo),
    )
