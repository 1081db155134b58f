"""The optimisation steps of the search that need no model: per-layer costs and sensitivities from
single-layer evaluations, the Lagrangian sweep of the multiple-choice knapsack, and Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from simulator.search.evaluate import Point


def noise_ratio(point: Point) -> float:
    """Output noise-to-signal power ratio (linear): what independent per-layer errors add up in."""
    return 0.0 if math.isinf(point.sqnr_db) and point.sqnr_db > 0 else 10.0 ** (-point.sqnr_db / 10.0)


def budget_use(point: Point, limits: dict[str, float]) -> float:
    """The largest fraction of a limit the point uses (at most 1: within budget)."""
    return max((point.totals[m] or 0.0) / limit for m, limit in limits.items())


def weighted_cost(totals: dict[str, float], limits: dict[str, float]) -> float:
    """Costs of several budgeted metrics on one scale: each as a fraction of its limit, summed."""
    return sum((totals[m] or 0.0) / limit for m, limit in limits.items())


def lagrangian_sweep(noise: Sequence[Sequence[float]], cost: Sequence[Sequence[float]]) -> list[tuple[int, ...]]:
    """Every assignment that minimises sum(noise) + lambda * sum(cost) for some lambda >= 0: the lower convex
    hull of the multiple-choice knapsack's fidelity-cost front. Per unit the minimiser changes only where
    lambda crosses a ratio of two of its choices' differences, so those ratios (and points between them) are
    the only lambdas worth trying. Ties go to the lower choice index, so the result is deterministic."""
    breaks = {0.0}
    for ns, cs in zip(noise, cost, strict=True):
        for i in range(len(ns)):
            for j in range(len(ns)):
                dc = cs[i] - cs[j]
                if dc > 0:
                    ratio = (ns[j] - ns[i]) / dc
                    if ratio > 0:
                        breaks.add(ratio)
    ordered = sorted(breaks)
    lambdas = ordered + [(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)] + [ordered[-1] * 2 + 1]
    seen: dict[tuple[int, ...], None] = {}
    for lam in sorted(lambdas):
        pick = tuple(
            min(range(len(ns)), key=lambda k, ns=ns, cs=cs: (ns[k] + lam * cs[k], k))
            for ns, cs in zip(noise, cost, strict=True)
        )
        seen.setdefault(pick, None)
    return list(seen)


def pareto(
    points: Sequence[Point], costs: Callable[[Point], tuple[float, ...]], y: Callable[[Point], float]
) -> list[Point]:
    """The points no other point beats: at most every cost (lower is better) and at least the fidelity ``y``
    (higher is better), strictly better in one. Sorted by the first cost, then name."""

    def beats(a: Point, b: Point) -> bool:
        ca, cb = costs(a), costs(b)
        no_worse = all(x <= z for x, z in zip(ca, cb, strict=True)) and y(a) >= y(b)
        return no_worse and (ca != cb or y(a) != y(b))

    front = [p for p in points if not any(beats(q, p) for q in points)]
    return sorted(front, key=lambda p: (costs(p), -y(p), p.name))
