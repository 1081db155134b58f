"""One real evaluation of a plan: apply it, deploy it as the stack runs it, estimate it, measure its fidelity.

The :class:`Context` holds everything an evaluation reads (the parsed model, the profile, the inputs and the
original model's results on them), is built once, and is shipped to Dask workers once; :func:`evaluate` is a
pure function of the context and a plan, so an evaluation gives the same numbers on any worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.compare import MAC_BUDGET
from simulator.deployment import deploy
from simulator.errors import EdgesimError
from simulator.estimate import estimate, prepare
from simulator.fidelity import DataSet, ReferenceRun, load_dataset, measure, random_inputs, reference_run
from simulator.graph import Graph
from simulator.hardware import Hardware
from simulator.plan import apply_plan, parse_plan
from simulator.summary import count

METRICS = ("latency_ms", "energy_uj", "flash_bytes", "peak_ram_bytes")


@dataclass(frozen=True)
class Context:
    graph: Graph
    hw: Hardware
    data: DataSet
    reference: ReferenceRun
    calibration: list[dict[str, np.ndarray]] | None = None


@dataclass(frozen=True)
class Point:
    """A plan with its real estimate and measured fidelity."""

    name: str
    plan: dict[str, Any]  # as parse_plan reads it (written out as the plan YAML)
    totals: dict[str, float]  # METRICS (latency_ms None on an energy-only profile)
    accuracy: float | None
    sqnr_db: float
    top1_agreement: float

    def objective(self, kind: str) -> float:
        """Higher is better: accuracy, or output SQNR (identical output = +inf)."""
        if kind == "accuracy":
            if self.accuracy is None:
                raise EdgesimError("--objective accuracy needs a model with a data set; use --objective sqnr")
            return self.accuracy
        return self.sqnr_db

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.plan.get("description", ""),
            **self.totals,
            "accuracy": self.accuracy,
            "sqnr_db": None if math.isinf(self.sqnr_db) else self.sqnr_db,
            "top1_agreement": self.top1_agreement,
        }


def make_context(
    graph: Graph,
    hw: Hardware,
    samples: int | None = None,
    seed: int = 0,
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> Context:
    """The inputs fidelity is measured on (the model's held-out set, or ``seed``-ed random inputs as compare
    picks them) and the original model's results on them."""
    data = load_dataset(graph)
    if data is None:
        macs = max(count(graph).macs, 1)
        n = samples if samples is not None else int(max(1, min(16, MAC_BUDGET // macs)))
        data = random_inputs(graph, n, seed)
    elif samples is not None:
        data = DataSet(data.feeds[:samples], None if data.labels is None else data.labels[:samples])
    return Context(graph, hw, data, reference_run(graph, data), calibration)


def deployed_graph(context: Context, plan: dict[str, Any]) -> Graph:
    """The plan applied and deployed as the profile's stack runs it (simulator.deployment's rule)."""
    parsed = parse_plan(plan, plan.get("name", "plan"))
    applied = apply_plan(context.graph, parsed, context.calibration)
    return deploy(applied, context.hw, from_plan=True, calibration=context.calibration).graph


def evaluate(context: Context, plan: dict[str, Any]) -> Point:
    """Apply, deploy, estimate and measure ``plan`` for real."""
    graph = deployed_graph(context, plan)
    totals = estimate(prepare(graph), context.hw).totals()
    fidelity = measure(context.graph, graph, context.data, ref=context.reference)
    return Point(
        name=str(plan.get("name", "plan")),
        plan=plan,
        totals={m: totals[m] for m in METRICS},
        accuracy=fidelity.accuracy,
        sqnr_db=fidelity.output_sqnr_db,
        top1_agreement=fidelity.top1_agreement,
    )
