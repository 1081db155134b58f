"""``edgesim search``: the plan with the best fidelity that meets a budget, and the fidelity-cost front
around it (the method and its reasons: docs/search.md).

1. sensitivities: every choice of every unit evaluated with only that unit changed (all others at 8-bit
   per-channel weights), giving its real output noise and its real estimated costs;
2. a Lagrangian sweep of the multiple-choice knapsack over those per-unit numbers proposes combined plans;
3. every proposed plan is evaluated for real (noise and costs such as peak RAM do not add up exactly);
4. local refinement: single-unit moves from the best plan within budget, evaluated for real, while they help.

Evaluations go through a :class:`~simulator.search.scheduler.Runner`, in batches whose order is fixed, so the
result depends on the seed only, not on where the evaluations ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.budget import Budget
from simulator.errors import EdgesimError
from simulator.fidelity import sqnr_db
from simulator.plan import load_plan
from simulator.resources import data_dir
from simulator.search.evaluate import Context, Point, deployed_graph, evaluate
from simulator.search.front import budget_use, lagrangian_sweep, noise_ratio, pareto, weighted_cost
from simulator.search.scheduler import Runner
from simulator.search.space import Space, plan_data

#: refinement rounds, and the most promising moves evaluated per round
ROUNDS = 4
MOVES_PER_ROUND = 6


@dataclass(frozen=True)
class TflmCheck:
    """The chosen plan executed with TFLite Micro's integer arithmetic (simulator.execute.int_exec)."""

    accuracy: float | None
    sqnr_db: float
    top1_agreement: float


@dataclass(frozen=True)
class SearchResult:
    objective: str
    budget: Budget
    space: Space
    points: list[Point]  # every real evaluation, in evaluation order
    front: list[Point]  # Pareto front of budget use vs fidelity
    chosen: Point | None  # best fidelity within budget
    baselines: list[Point]
    tflm: TflmCheck | None = None
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)

    def feasible(self, point: Point) -> bool:
        return not self.budget.check(point.totals, point.name)


def _ok(budget: Budget, point: Point) -> bool:
    return not budget.check(point.totals, point.name)


def baseline_plans() -> list[dict[str, Any]]:
    """Uniform int8, uniform int4 (per-channel, int8 activations) and 50 % pruning + int8."""
    act = {"bits": 8}
    return [
        {"name": "uniform-int8", "passes": [{"pass": "quantize", "weights": {"bits": 8}, "activations": act}]},
        {"name": "uniform-int4", "passes": [{"pass": "quantize", "weights": {"bits": 4}, "activations": act}]},
        {
            "name": "prune50-int8",
            "passes": [
                {"pass": "prune", "sparsity": 0.5},
                {"pass": "quantize", "weights": {"bits": 8}, "activations": act},
            ],
        },
    ]


def shipped_plans() -> list[dict[str, Any]]:
    """The plans in plans/ as data (name, passes), for the best-shipped-plan baseline."""
    folder = data_dir("plans")
    out = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        plan = load_plan(path)
        out.append({"name": f"plans/{path.name}", "source": str(path), "plan": plan})
    return out


def _plan_dict(plan) -> dict[str, Any]:
    passes = []
    for spec in plan.passes:
        item: dict[str, Any] = {"pass": spec.kind, **_plain(spec.kind, spec.params)}
        if spec.layers is not None:
            item["layers"] = list(spec.layers)
        if spec.ops is not None:
            item["ops"] = list(spec.ops)
        passes.append(item)
    return {"name": plan.name, "passes": passes}


def _plain(kind: str, params: dict) -> dict:
    out = {k: v for k, v in params.items() if v is not None}
    if kind == "prune" and "pattern" in out:
        out["pattern"] = f"{out['pattern'][0]}:{out['pattern'][1]}"
    return out


def _try(context: Context, plan: dict[str, Any]) -> Point | None:
    """A shipped plan that does not apply to this model (names no layer of it, runs at a precision the stack
    lacks) is skipped."""
    try:
        return evaluate(context, plan)
    except EdgesimError:
        return None


def run_search(
    context: Context,
    space: Space,
    budget: Budget,
    runner: Runner,
    objective: str = "accuracy",
    seed: int = 0,
) -> SearchResult:
    """The search of the module docstring; ``seed`` orders equal candidates (everything else is exact)."""
    limits = dict(budget.limits)
    counter = iter(range(10**9))
    evaluated: dict[tuple[int, ...], Point] = {}

    def run(assignments: list[tuple[int, ...]]) -> list[Point]:
        todo = [a for a in dict.fromkeys(assignments) if a not in evaluated]
        plans = [plan_data(space, a, f"search-{seed}-{next(counter):03d}") for a in todo]
        for a, p in zip(todo, runner.map(evaluate, context, plans), strict=True):
            evaluated[a] = p
        return [evaluated[a] for a in assignments]

    base = tuple(0 for _ in space.units)
    singles = [base] + [
        tuple(k if j == u else 0 for j in range(len(space.units)))
        for u, options in enumerate(space.choices)
        for k in range(1, len(options))
    ]
    run(singles)
    ref = evaluated[base]
    noise = [[0.0] * len(o) for o in space.choices]
    cost = [[0.0] * len(o) for o in space.choices]
    base_cost = weighted_cost(ref.totals, limits)
    for u, options in enumerate(space.choices):
        for k in range(1, len(options)):
            p = evaluated[tuple(k if j == u else 0 for j in range(len(space.units)))]
            noise[u][k] = max(noise_ratio(p) - noise_ratio(ref), 0.0)
            cost[u][k] = weighted_cost(p.totals, limits) - base_cost
    run(lagrangian_sweep(noise, cost))

    def score(p: Point) -> tuple:
        return (_ok(budget, p), p.objective(objective), -noise_ratio(p), -budget_use(p, limits), p.name)

    rng = np.random.default_rng(seed)
    for _ in range(ROUNDS):
        best_a = max(evaluated, key=lambda a: score(evaluated[a]))
        best = evaluated[best_a]
        moves = []
        for u, options in enumerate(space.choices):
            for k in range(len(options)):
                if k == best_a[u]:
                    continue
                a = best_a[:u] + (k,) + best_a[u + 1 :]
                if a in evaluated:
                    continue
                d_noise = noise[u][k] - noise[u][best_a[u]]
                d_cost = cost[u][k] - cost[u][best_a[u]]
                feasible = _ok(budget, best)
                predicted_ok = budget_use(best, limits) + max(d_cost, 0) <= 1.0 + 1e-9 if feasible else d_cost < 0
                if predicted_ok and (d_noise < 0 or not feasible):
                    # equal predictions are ordered by the seeded tie-break, never by dict or set order
                    moves.append((d_noise if feasible else d_cost, rng.random(), a))
        if not moves:
            break
        moves.sort()
        before = score(best)
        run([m[2] for m in moves[:MOVES_PER_ROUND]])
        if score(max(evaluated.values(), key=score)) <= before:
            break
    points = list(evaluated.values())
    inside = [p for p in points if _ok(budget, p)]
    chosen = max(inside, key=score) if inside else None
    # the front over every budgeted metric (a latency limit that every plan nearly meets must not hide the
    # flash trade-off), fidelity the objective
    front = pareto(points, lambda p: tuple(p.totals[m] or 0.0 for m in limits), lambda p: p.objective(objective))
    return SearchResult(objective, budget, space, points, front, chosen, [], evaluations=len(points))


def evaluate_baselines(context: Context, runner: Runner, budget: Budget, objective: str) -> list[Point]:
    """The uniform baselines and the best shipped plan that applies to the model (within budget if any is)."""
    fixed = runner.map(evaluate, context, baseline_plans())
    shipped = [{**_plan_dict(s["plan"]), "name": s["name"]} for s in shipped_plans()]
    applicable = [p for p in runner.map(_try, context, shipped) if p is not None]
    if applicable:
        pool = [p for p in applicable if _ok(budget, p)] or applicable
        fixed.append(max(pool, key=lambda p: (p.objective(objective), p.name)))
    return fixed


def tflm_check(context: Context, point: Point) -> TflmCheck:
    """Run ``point``'s plan with TFLite Micro's integer arithmetic on the fidelity inputs and measure it."""
    from simulator.execute.int_exec import dequantize, prepare_tflm

    graph = deployed_graph(context, point.plan)
    session = prepare_tflm(graph)
    name = graph.outputs[0]
    outputs = []
    for feed in context.data.feeds:
        values, quant = session.run(feed)
        outputs.append(np.asarray(dequantize(values[name], quant[name]), np.float64))
    got = np.concatenate(outputs)
    ref = context.reference.values[context.graph.outputs[0]]
    top1 = got.reshape(len(got), -1).argmax(axis=1)
    ref_top1 = np.asarray(ref).reshape(len(ref), -1).argmax(axis=1)
    labels = context.data.labels
    accuracy = None if labels is None else float(np.mean(top1 == labels))
    return TflmCheck(accuracy, sqnr_db(ref, got.reshape(np.shape(ref))), float(np.mean(top1 == ref_top1)))


def as_dict(result: SearchResult) -> dict[str, Any]:
    limits = dict(result.budget.limits)

    def row(p: Point) -> dict[str, Any]:
        return {**p.as_dict(), "budget_use": budget_use(p, limits), "within_budget": result.feasible(p)}

    return {
        "objective": result.objective,
        "budget": limits,
        "evaluations": result.evaluations,
        "space": {
            "units": [list(u) for u in result.space.units],
            "choices": [[c.label for c in o] for o in result.space.choices],
        },
        "chosen": None if result.chosen is None else row(result.chosen),
        "tflm": None
        if result.tflm is None
        else {
            "accuracy": result.tflm.accuracy,
            "sqnr_db": None if math.isinf(result.tflm.sqnr_db) else result.tflm.sqnr_db,
            "top1_agreement": result.tflm.top1_agreement,
        },
        "front": [row(p) for p in result.front],
        "baselines": [row(p) for p in result.baselines],
        "points": [row(p) for p in result.points],
    }
