"""Compare compression plans on one model and one hardware profile: cost (size, latency, energy, RAM) next to
fidelity (accuracy or SQNR), with the Pareto-optimal plans marked.

The model is parsed once; each plan is applied to the same graph (passes never mutate it), so comparing many
plans costs their passes, estimates and executions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.deployment import FROM_PTQ, deploy, deployment_bits
from simulator.errors import EdgesimError
from simulator.estimate import Estimate, estimate
from simulator.estimate.uncertainty import intervals
from simulator.fidelity import DataSet, load_dataset, measure, random_inputs, reference_run, self_fidelity
from simulator.graph import Graph
from simulator.hardware import Hardware
from simulator.ops import get_op
from simulator.passes.prune import weight_name, weighted_layers
from simulator.plan import Plan, apply_plan
from simulator.summary import count

#: float MACs edgesim executes per random-input comparison at most (keeps VGG-16 comparisons to seconds)
MAC_BUDGET = 4e9


@dataclass(frozen=True)
class PlanRow:
    plan: str
    params: int  # non-zero parameters
    sparsity: float  # of the weights of weighted layers
    weight_bytes: int
    flash_bytes: int
    compression_ratio: float  # weights of the model as given / this row's weights (Deep Compression's ratio)
    latency_ms: float | None
    energy_uj: float
    peak_ram_bytes: int
    fits: dict[str, bool]
    accuracy: float | None
    sqnr_db: float
    top1_agreement: float
    precision: str
    compression_ratio_vs_baseline: float = 1.0  # the baseline row's weights (as the stack deploys it) / this row's
    precision_source: str = "model"
    layer_sqnr_db: dict[str, float | None] = field(default_factory=dict)
    pareto: bool = False
    #: the graph the row estimates (as the stack deploys it) and its full estimate, for the report
    graph: Graph | None = field(default=None, repr=False, compare=False)
    estimate: Estimate | None = field(default=None, repr=False, compare=False)
    # the 80 % error bars of latency and energy (simulator/estimate/uncertainty.py)
    latency_ms_low: float | None = None
    latency_ms_high: float | None = None
    energy_uj_low: float | None = None
    energy_uj_high: float | None = None

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("graph", "estimate")}
        if math.isinf(out["sqnr_db"]):
            out["sqnr_db"] = None  # JSON has no infinity: identical outputs
        return out


def _nonzero_params(graph: Graph) -> tuple[int, float]:
    """(parameters left after pruning, fraction of the weighted layers' weights pruned)."""
    zeros = weights = 0
    for node in weighted_layers(graph):
        t = graph.tensors[weight_name(graph, node)]
        weights += t.size
        zeros += 0 if t.mask is None else t.size - int(np.count_nonzero(t.mask))
    return count(graph).params - zeros, (zeros / weights if weights else 0.0)


def given_weight_bytes(graph: Graph) -> int:
    """Bytes of the weights of the model as given (float32 values for a float model, the stored width of a
    quantized one), dense: the size Deep Compression's tables count compression ratios against."""
    total = 0
    for node in graph.order:
        op = get_op(node.op_type)
        if op is None:
            continue
        inputs = graph.input_tensors(node)
        for i in op.weight_slots(node, inputs):
            total += math.ceil(inputs[i].size * inputs[i].stored_bits / 8)
    return total


def _pareto(rows: list[PlanRow]) -> list[PlanRow]:
    def objectives(r: PlanRow) -> tuple[float, ...]:
        quality = r.accuracy if r.accuracy is not None else r.sqnr_db
        latency = r.latency_ms if r.latency_ms is not None else r.energy_uj
        return (r.flash_bytes, latency, -quality)

    out = []
    for r in rows:
        mine = objectives(r)
        dominated = any(
            all(o <= m for o, m in zip(objectives(s), mine, strict=True)) and objectives(s) != mine for s in rows
        )
        out.append(PlanRow(**{**r.__dict__, "pareto": not dominated}))
    return out


def compare_plans(
    graph: Graph,
    hw: Hardware,
    plans: list[Plan],
    calibration: list[dict[str, np.ndarray]] | None = None,
    samples: int | None = None,
    progress=None,
) -> list[PlanRow]:
    """One row for the uncompressed baseline and one per plan, Pareto-optimal rows marked."""
    data: DataSet | None = load_dataset(graph)
    if data is None:
        macs = max(count(graph).macs, 1)
        n = samples if samples is not None else int(max(1, min(16, MAC_BUDGET // macs)))
        data = random_inputs(graph, n)
    elif samples is not None:
        data = DataSet(data.feeds[:samples], data.labels[:samples])
    reference = reference_run(graph, data, per_layer=True)
    given_bytes = given_weight_bytes(graph)
    candidates = [("baseline", graph, False)]
    for plan in plans:
        try:
            candidates.append((plan.name, apply_plan(graph, plan, calibration), True))
        except EdgesimError as exc:
            raise EdgesimError(f"{plan.path or plan.name}: {exc}") from None
    baseline_bytes = None
    rows = []
    for name, g, from_plan in candidates:
        # one rule for every command (simulator.deployment): a float model, or float layers a plan left, on
        # an integer-only stack is estimated as that stack deploys it, and the row's name says so
        deployed = deploy(g, hw, from_plan=from_plan, calibration=calibration)
        if deployed.precision_source == FROM_PTQ:
            name = f"{name} (post-training int{deployment_bits(hw)})"
        est = estimate(deployed.graph, hw, precision_source=deployed.precision_source, notes=[deployed.note])
        totals = est.totals()
        if deployed.graph is graph:
            fidelity = self_fidelity(graph, reference)
        else:
            fidelity = measure(graph, deployed.graph, data, per_layer=True, ref=reference)
        params, sparsity = _nonzero_params(deployed.graph)
        weight_bytes = totals["weight_bytes"]
        baseline_bytes = baseline_bytes or weight_bytes
        rows.append(
            PlanRow(
                plan=name,
                params=params,
                sparsity=sparsity,
                weight_bytes=weight_bytes,
                flash_bytes=totals["flash_bytes"],
                compression_ratio=given_bytes / weight_bytes if weight_bytes else math.inf,
                compression_ratio_vs_baseline=baseline_bytes / weight_bytes if weight_bytes else math.inf,
                latency_ms=totals["latency_ms"],
                energy_uj=totals["energy_uj"],
                peak_ram_bytes=totals["peak_ram_bytes"],
                fits=est.fits,
                accuracy=fidelity.accuracy,
                sqnr_db=fidelity.output_sqnr_db,
                top1_agreement=fidelity.top1_agreement,
                precision=",".join(sorted({layer.precision for layer in est.layers})),
                precision_source=deployed.precision_source,
                layer_sqnr_db={k: (None if math.isinf(v) else v) for k, v in fidelity.layer_sqnr_db.items()},
                graph=deployed.graph,
                estimate=est,
                **intervals(est),
            )
        )
        if progress is not None:
            progress()
    return _pareto(rows)


def pareto_figure(rows: list[PlanRow], title: str, dpi: int = 150):
    """Flash size vs accuracy (or SQNR) as a matplotlib Figure (object API, no pyplot state): Pareto-optimal
    plans marked, the size-quality front drawn, each plan labelled where its label overprints nothing (plans
    at the same point share one label)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
    from matplotlib.transforms import Bbox

    from simulator.report.labels import PointLabel, freeze_layout, marker_boxes, place_labels, text_boxes

    use_accuracy = all(r.accuracy is not None for r in rows)
    fig = Figure(figsize=(7, 4.5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    def quality(r: PlanRow) -> float:
        if use_accuracy:
            return 100 * r.accuracy
        return 0.0 if math.isnan(r.sqnr_db) else min(max(r.sqnr_db, -100.0), 100.0)  # identical output: 100

    for r in rows:
        ax.scatter(r.flash_bytes / 1024, quality(r), s=60 if r.pareto else 30, marker="o" if r.pareto else "x",
                   color="tab:green" if r.pareto else "tab:gray", zorder=3)  # fmt: skip

    # the line is the two-dimensional front of this chart (size vs quality); markers show the full
    # three-objective Pareto flag, latency included
    front, best = [], -math.inf
    for r in sorted(rows, key=lambda r: (r.flash_bytes, -quality(r))):
        if quality(r) > best:
            front.append(r)
            best = quality(r)
    if len(front) > 1:
        xs = [r.flash_bytes / 1024 for r in front]
        ax.step(xs, [quality(r) for r in front], where="post", color="tab:green", lw=1, zorder=2,
                label="size-quality front")  # fmt: skip
        fig.legend(fontsize=8, loc="outside lower right", frameon=False)
    log = all(r.flash_bytes > 0 for r in rows)  # a plan that stores nothing has no place on a log axis
    ax.set_xscale("log" if log else "linear")
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("flash (KiB, log scale)" if log else "flash (KiB)")
    if log:  # plain numbers (20, 50), not 2 x 10^1; minor ticks labelled at 2 and 5 of each decade
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos=None: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    ax.set_ylabel("test accuracy (%)" if use_accuracy else "output SQNR (dB; identical = 100)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    freeze_layout(fig)
    labels = [PointLabel(r.flash_bytes / 1024, quality(r), r.plan) for r in rows]
    taken = text_boxes(fig) + marker_boxes(ax, [(label.x, label.y) for label in labels], 8)
    # the front's steps are horizontal and vertical segments: their extents keep labels off the line
    corners = [(r.flash_bytes / 1024, quality(r)) for r in front] if len(front) > 1 else []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))):
            (px0, py0), (px1, py1) = ax.transData.transform([a, b])
            taken.append(Bbox([[min(px0, px1) - 1, min(py0, py1) - 1], [max(px0, px1) + 1, max(py0, py1) + 1]]))
    # above first: the front's steps run horizontally through the points
    for label in place_labels(ax, labels, taken, above_first=True, fontsize=7):
        # no free place near the point: the label goes on the point itself rather than nowhere
        ax.annotate(label.text, (label.x, label.y), xytext=(0, -9), textcoords="offset points", ha="center",
                    fontsize=6, color="#555555", annotation_clip=True)  # fmt: skip
    return fig


def plot_pareto(rows: list[PlanRow], path: str, title: str) -> None:
    """Flash size vs accuracy (or SQNR), Pareto-optimal plans marked; written atomically."""
    import io
    from pathlib import Path

    from simulator.output import write_bytes

    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise EdgesimError(f"--plot {path}: give a .png, .svg or .pdf file name")
    if not target.parent.is_dir():
        raise EdgesimError(f"--plot {path}: the directory {str(target.parent)!r} does not exist")
    fig = pareto_figure(rows, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=target.suffix[1:].lower(), metadata={"Date": None} if target.suffix == ".pdf" else None)
    write_bytes(buffer.getvalue(), target)
