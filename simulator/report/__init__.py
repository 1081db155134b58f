"""Design-review reports: ``edgesim report`` turns estimates (and a plan comparison) into a multi-page PDF.

data.py computes what the report shows, figures.py draws it with matplotlib, pdf.py lays it out with
reportlab. The code lives in the ``simulator`` package (the repository's top-level ``reports/`` folder only
documents it), so installing edgesim adds no top-level ``reports`` package to site-packages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.budget import Budget
from simulator.errors import EdgesimError
from simulator.graph import Graph
from simulator.hardware import Hardware, read_profile
from simulator.output import write_bytes
from simulator.plan import Plan
from simulator.report.data import ReportData, collect, steps_for

__all__ = ["Report", "ReportData", "build_report", "check_target", "collect", "figure_count", "render", "write_atomic"]


def check_target(path: str) -> Path:
    """Refuse an output path the report could not be written to, before any work is done."""
    target = Path(path)
    if target.suffix.lower() != ".pdf":
        raise EdgesimError(f"-o {path}: a report is a PDF; give a file name ending in .pdf")
    if not target.parent.is_dir():
        raise EdgesimError(f"-o {path}: the directory {str(target.parent)!r} does not exist; create it first")
    if target.is_dir():
        raise EdgesimError(f"-o {path}: is a directory; give a file name")
    return target


def write_atomic(data: bytes, path: str | Path) -> None:
    """Write the PDF atomically (see :func:`simulator.output.write_bytes`)."""
    write_bytes(data, path)


def figure_count(data: ReportData) -> int:
    n = len(data.variants)
    return 2 * n + 4 + (1 if data.rows else 0)


@dataclass(frozen=True)
class Report:
    data: ReportData
    pdf: bytes
    pages: int


def render(data: ReportData, step: Callable[[str], None] | None = None) -> tuple[bytes, int]:
    """Draw the figures and lay the report out: PDF bytes and the number of pages."""
    from simulator.report import figures
    from simulator.report.pdf import render_pdf

    step = step or (lambda _: None)
    pics: dict = {}
    latency = not data.hardware.energy_only
    # one latency scale for all variants, so their charts compare at a glance
    xmax = figures.latency_scale(data.variants)
    for v in data.variants:
        if latency:
            pics[("latency", v.label)] = figures.latency_per_layer(v, xmax)
        step("figures")
        pics[("energy", v.label)] = figures.energy_per_layer(v)
        step("figures")
    if latency:
        pics["roofline"] = figures.roofline(data.variants)
    step("figures")
    pics["energy_totals"] = figures.energy_totals(data.variants)
    step("figures")
    pics["arena"] = figures.arena_timeline(data.variants)
    step("figures")
    pics["flash"] = figures.flash_per_layer(data.variants)
    step("figures")
    if data.rows:
        pics["pareto"] = figures.pareto(data.rows, f"{data.model} on {data.hardware.label}")
        step("figures")
    profile = read_profile(Path(data.hardware.path))
    return render_pdf(data, pics, profile, step)


def build_report(
    graph: Graph,
    hw: Hardware,
    output: str | Path,
    *,
    precisions: Sequence[str] = (),
    plans: Sequence[Plan] = (),
    calibration=None,
    samples: int | None = None,
    budget: Budget | None = None,
    command: str = "",
    progress=None,
    deployment=None,
    model_ref: str = "",
) -> Report:
    """Estimate, draw and lay out the report, then write it to ``output`` atomically. ``progress`` is a
    tqdm-like bar (``total``, ``update``, ``set_postfix_str``) or None."""

    def step(what: str) -> None:
        if progress is not None:
            progress.set_postfix_str(what, refresh=False)
            progress.update(1)

    if progress is not None:
        # collect, then figures (known once the variants are), then one layout step
        progress.total = steps_for(precisions, plans) + 2 * max(len(precisions), 1) + 2 * len(plans) + 6
        progress.refresh()
    data = collect(
        graph,
        hw,
        deployment=deployment,
        precisions=precisions,
        plans=plans,
        calibration=calibration,
        samples=samples,
        budget=budget,
        command=command,
        step=step,
        model_ref=model_ref,
    )
    if progress is not None:
        progress.total = steps_for(precisions, plans) + figure_count(data) + 1
        progress.refresh()
    pdf, pages = render(data, step)
    write_atomic(pdf, output)
    return Report(data, pdf, pages)
