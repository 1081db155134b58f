"""What a report shows, computed before anything is drawn: one estimate per variant (a precision or a plan),
the plan comparison, budget verdicts, and the numbers the figures and tables share."""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator import __version__
from simulator.budget import Breach, Budget
from simulator.deployment import FROM_MODEL, Deployment, deploy, deployment_bits
from simulator.errors import EdgesimError
from simulator.estimate import Estimate, LayerEstimate, estimate, prepare
from simulator.estimate.uncertainty import intervals
from simulator.graph import Graph, Shape
from simulator.hardware import Hardware
from simulator.importers import SUFFIXES as MODEL_SUFFIXES
from simulator.plan import Plan

Step = Callable[[str], None]


@dataclass(frozen=True)
class Variant:
    """One way of running the model: as it is, at a precision (``--precision``), or after a plan."""

    label: str
    kind: str  # "model" (as imported), "precision", "baseline" (reference row of a comparison), "plan"
    estimate: Estimate
    shapes: list[tuple[list[Shape], list[Shape]]]  # per layer: activation input shapes, output shapes
    checked: bool  # held to the budget (the reference baseline of a plan comparison is not)
    breaches: list[Breach] = field(default_factory=list)
    fidelity: str = ""  # "98.44% test accuracy", "41.4 dB SQNR", or "" (not measured)
    plan: Plan | None = None

    @property
    def totals(self) -> dict:
        """The estimate's totals with their error bars (latency_ms_low / _high, energy_uj_low / _high)."""
        return self.estimate.totals() | intervals(self.estimate)

    @property
    def precisions(self) -> str:
        return ", ".join(sorted({layer.precision for layer in self.estimate.layers}))


@dataclass(frozen=True)
class ReportData:
    model: str
    description: str
    source: str
    hardware: Hardware
    variants: list[Variant]
    rows: list  # simulator.compare.PlanRow, when plans were given
    budget: Budget | None
    date: datetime.datetime
    command: str
    version: str = __version__
    measurements: list = field(default_factory=list)  # simulator.validate.Comparison rows for this profile
    warnings: list[str] = field(default_factory=list)

    @property
    def over_budget(self) -> dict[str, list[Breach]]:
        return {v.label: v.breaches for v in self.variants if v.breaches}


def model_title(ref: str) -> str:
    """What a report calls a model: the zoo name as given, or the model file's name without its folders."""
    return Path(ref).name if ("/" in ref or Path(ref).suffix.lower() in MODEL_SUFFIXES) else ref


def report_date(environ: dict[str, str] | None = None) -> datetime.datetime:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else today at 00:00 UTC: the date a report carries,
    in its text and in the PDF's creation and modification dates."""
    environ = os.environ if environ is None else environ
    text = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if text:
        try:
            return datetime.datetime.fromtimestamp(int(text), datetime.UTC)
        except (ValueError, OverflowError, OSError):
            raise EdgesimError(f"SOURCE_DATE_EPOCH={text!r}: expected seconds since 1970 (an integer)") from None
    today = datetime.datetime.now(datetime.UTC).date()
    return datetime.datetime(today.year, today.month, today.day, tzinfo=datetime.UTC)


def memory_energy_by_level(layer: LayerEstimate, hw: Hardware) -> dict[str, float]:
    """A layer's memory energy (uJ) split by memory level, as the estimator prices it: weights read at the
    weights level, activations read and written at the activations level."""
    weights = hw.memory[hw.weights_level]
    acts = hw.memory[hw.activations_level]
    out = {name: 0.0 for name in (hw.weights_level, hw.activations_level)}
    out[hw.weights_level] += layer.weight_read_bytes * weights.read_energy_pj_per_byte * 1e-6
    out[hw.activations_level] += (
        layer.activation_read_bytes * acts.read_energy_pj_per_byte
        + layer.activation_write_bytes * acts.write_energy_pj_per_byte
    ) * 1e-6
    return out


def bytes_moved(layer: LayerEstimate) -> int:
    return layer.weight_read_bytes + layer.activation_read_bytes + layer.activation_write_bytes


def arithmetic_intensity(layer: LayerEstimate) -> float | None:
    """MACs per byte moved (weights read + activations read and written); None without MACs or bytes."""
    moved = bytes_moved(layer)
    return layer.macs / moved if layer.macs and moved else None


def achieved_macs_per_s(layer: LayerEstimate) -> float | None:
    if not layer.macs or not layer.latency_ms:
        return None
    return layer.macs / (layer.latency_ms * 1e-3)


def peak_step(est: Estimate) -> tuple[int, int]:
    """(step, bytes) where the live activation bytes peak (the first such step)."""
    live = est.arena.live_bytes()
    if not live:
        return 0, 0
    step = int(np.argmax(live))
    return step, live[step]


def live_tensors(est: Estimate, step: int) -> list[tuple[str, int]]:
    """The activation buffers live at ``step``, largest first."""
    live = [(b.name, b.size_bytes) for b in est.arena.buffers if b.first_step <= step <= b.last_step]
    return sorted(live, key=lambda x: (-x[1], x[0]))


def fidelity_text(row) -> str:
    if row.accuracy is not None:
        return f"{100 * row.accuracy:.2f}% test accuracy"
    if math.isinf(row.sqnr_db) and row.sqnr_db > 0:
        return "identical output"
    return f"{row.sqnr_db:.1f} dB output SQNR"


def _variant(label, kind, graph, hw, precision, checked, budget, plan=None, fidelity="", est=None) -> Variant:
    prepared = prepare(graph)
    if est is None:
        est = estimate(prepared, hw, precision=precision, plan=plan.name if plan else None)
    shapes = [(list(w.counts.inputs), list(w.counts.outputs)) for w in prepared.work]
    breaches = budget.check(est.totals(), label) if (budget is not None and checked) else []
    return Variant(label, kind, est, shapes, checked, breaches, fidelity, plan)


def collect(
    graph: Graph,
    hw: Hardware,
    *,
    precisions: Sequence[str] = (),
    plans: Sequence[Plan] = (),
    calibration=None,
    samples: int | None = None,
    budget: Budget | None = None,
    command: str = "",
    step: Step | None = None,
    deployment: Deployment | None = None,
    model_ref: str = "",
) -> ReportData:
    """Estimate every variant the report shows.

    Variants: the model at each ``precisions`` entry, or as imported when none is given (with plans and no
    precision, that is the comparison's "baseline", shown for reference and not held to the budget); then
    each plan, estimated as ``edgesim compare`` estimates it (a float layer left on an integer-only stack
    runs at the stack's integer precision, and the label says so). ``model_ref`` is what the user named (a
    zoo name or a file): the report calls the model by it, not by the name stored inside an ONNX file."""
    step = step or (lambda _: None)
    variants: list[Variant] = []
    rows = []
    if plans:
        from simulator.compare import compare_plans

        rows = compare_plans(graph, hw, list(plans), calibration, samples, progress=lambda: step("compare"))
    for p in precisions:
        variants.append(_variant(p, "precision", graph, hw, p, True, budget))
        step(f"estimate {p}")
    if not precisions:
        if plans:
            base = rows[0]
            variants.append(
                _variant(
                    base.plan, "baseline", base.graph, hw, None, False, budget, None, fidelity_text(base), base.estimate
                )
            )
        else:
            deployed = deployment or deploy(graph, hw, calibration=calibration)
            est = estimate(
                deployed.graph,
                hw,
                precision_source=deployed.precision_source,
                notes=[deployed.note] if deployed.note else [],
            )
            label = (
                "as imported" if deployed.precision_source == FROM_MODEL else f"post-training int{deployment_bits(hw)}"
            )
            variants.append(_variant(label, "model", deployed.graph, hw, None, True, budget, est=est))
        step("estimate")
    for plan, row in zip(plans, rows[1:], strict=True):
        variants.append(
            _variant(row.plan, "plan", row.graph, hw, None, True, budget, plan, fidelity_text(row), row.estimate)
        )
        step(f"estimate {plan.name}")
    measurements = []
    try:
        from simulator.validate import compare as validate

        measurements = validate(None, hw.label)
    except EdgesimError:
        pass  # no published measurements for this profile and stack
    warnings = sorted({w for v in variants for w in v.estimate.warnings})
    return ReportData(
        model=model_title(model_ref) if model_ref else graph.name,
        description=str(graph.metadata.get("description", "")),
        source=str(graph.metadata.get("source", "")),
        hardware=hw,
        variants=variants,
        rows=rows,
        budget=budget,
        date=report_date(),
        command=command,
        measurements=measurements,
        warnings=warnings,
    )


def steps_for(precisions: Sequence[str], plans: Sequence[Plan]) -> int:
    """How many ``step`` calls :func:`collect` makes (for a progress bar's total)."""
    n_plans = len(plans)
    return (n_plans + 1 if n_plans else 0) + max(len(precisions), 1) + n_plans
