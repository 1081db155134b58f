"""The ``edgesim search`` and ``edgesim sweep`` commands: argument checking, running, and writing results."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import yaml

from simulator.errors import EdgesimError


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "identical"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def search_table(result) -> str:
    from simulator.output import table
    from simulator.search.front import budget_use

    limits = dict(result.budget.limits)
    headers = ["plan", "role", "latency ms", "energy uJ", "flash B", "peak RAM B", "budget use", "fits",
               "accuracy", "SQNR dB", "layers"]  # fmt: skip
    rows = []

    def add(p, role):
        rows.append([
            p.name, role, _fmt(p.totals["latency_ms"]), _fmt(p.totals["energy_uj"], 2), p.totals["flash_bytes"],
            p.totals["peak_ram_bytes"], f"{budget_use(p, limits):.3f}", "yes" if result.feasible(p) else "NO",
            "n/a" if p.accuracy is None else f"{100 * p.accuracy:.2f}%", _fmt(p.sqnr_db, 1),
            p.plan.get("description", ""),
        ])  # fmt: skip

    for p in result.front:
        add(p, "chosen" if p is result.chosen else "front")
    if result.chosen is not None and result.chosen not in result.front:
        add(result.chosen, "chosen")
    for b in result.baselines:
        add(b, "baseline")
    numeric = [False, False, True, True, True, True, True, False, True, True, False]
    return table(headers, rows, numeric)


def cmd_search(args: argparse.Namespace, model_options: dict) -> int:
    from simulator.budget import parse_budget
    from simulator.hardware import load_hardware
    from simulator.importers import load_model
    from simulator.output import to_json, write_text
    from simulator.search.evaluate import make_context
    from simulator.search.figures import save, search_figure
    from simulator.search.scheduler import open_runner
    from simulator.search.search import as_dict, evaluate_baselines, run_search, tflm_check
    from simulator.search.space import load_space

    budget = parse_budget(args.budget)
    if budget is None:
        raise EdgesimError("--budget is required, e.g. --budget flash_bytes=16K,latency_ms=50")
    out = _checked_options(args)
    hw = load_hardware(args.hw)
    graph = load_model(args.model, **model_options)
    space = load_space(args.space, graph, hw)
    context = make_context(graph, hw, args.samples, args.seed)
    objective = args.objective or ("accuracy" if context.data.labels is not None else "sqnr")
    if objective == "accuracy" and context.data.labels is None:
        raise EdgesimError(f"--objective accuracy: {graph.name} ships no data set; use --objective sqnr")
    with open_runner(args.scheduler) as runner:
        result = run_search(context, space, budget, runner, objective, args.seed)
        baselines = evaluate_baselines(context, runner, budget, objective)
    result = type(result)(**{**result.__dict__, "baselines": baselines})
    if result.chosen is not None:
        result = type(result)(**{**result.__dict__, "tflm": tflm_check(context, result.chosen)})
    text = f"model: {graph.name}\nhardware: {hw.label}\nobjective: {objective} on "
    text += f"{len(context.data.feeds)} {'held-out samples' if context.data.labels is not None else 'seeded inputs'}\n"
    text += f"budget: {', '.join(f'{m} <= {budget.given[m]}' for m in budget.limits)}\n"
    text += f"evaluations: {result.evaluations} (scheduler: {runner.name}); space: {space.size:.3g} plans\n\n"
    text += search_table(result)
    if result.chosen is None:
        text += "no evaluated plan meets the budget\n"
    else:
        t = result.tflm
        acc = "" if t.accuracy is None else f"accuracy {100 * t.accuracy:.2f}%, "
        text += (f"chosen: {result.chosen.name}, executed with TFLite Micro's integer arithmetic (tflm mode): "
                 f"{acc}output SQNR {_fmt(t.sqnr_db, 1)} dB vs the float model, top-1 agreement "
                 f"{100 * t.top1_agreement:.1f}%\n")  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "front").mkdir(exist_ok=True)
        for p in result.front + ([result.chosen] if result.chosen is not None else []):
            write_text(yaml.safe_dump(p.plan, sort_keys=False, width=110), str(out / "front" / f"{p.name}.yaml"))
        write_text(to_json({"model": graph.name, "hardware": hw.label, **as_dict(result)}), str(out / "search.json"))
        write_text(text, str(out / "search.txt"))
        save(search_figure(result, f"search: {graph.name} on {hw.label}"), out / "front.png")
        text += f"written: {out}/front/*.yaml (plans), {out}/search.json, {out}/search.txt, {out}/front.png\n"
    write_text(text, None)
    return 0 if result.chosen is not None else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    from simulator.importers import load_model
    from simulator.output import to_csv, write_text
    from simulator.search.figures import save, sweep_fit_figure, sweep_latency_figure
    from simulator.search.scheduler import open_runner
    from simulator.search.sweep import COLUMNS, load_grid, run_sweep

    out = _checked_options(args)
    grid = load_grid(args.grid)
    with open_runner(args.scheduler) as runner:
        rows = run_sweep(grid, runner, load_model, args.samples)
    text = to_csv(COLUMNS, [[_csv(r[c]) for c in COLUMNS] for r in rows])
    if out is None:
        write_text(text, None)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    write_text(text, str(out / "sweep.csv"))
    save(sweep_latency_figure(rows), out / "latency-vs-fidelity.png")
    save(sweep_fit_figure(rows), out / "fits.png")
    print(f"{len(rows)} rows: {out}/sweep.csv, {out}/latency-vs-fidelity.png, {out}/fits.png")
    return 0


def _csv(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _checked_options(args) -> Path | None:
    """The options search and sweep share, checked before any work: scheduler, --samples, -o (a directory)."""
    from simulator.search.scheduler import check_scheduler

    check_scheduler(args.scheduler)
    if args.samples is not None and args.samples < 1:
        raise EdgesimError(f"--samples {args.samples}: give a positive number of samples")
    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and not out.is_dir():
        raise EdgesimError(f"-o {out}: exists and is not a directory")
    return out
