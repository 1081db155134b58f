"""``edgesim sweep``: every model on every profile/stack under every plan or precision of a grid, one row each.

A grid is YAML (read through simulator.yamlio, every field checked before anything runs):

    models: [digits-cnn, resnet-8]            # zoo names or model files
    hardware: [cortex-m4, cortex-m7:tflm-reference]
    plans: [plans/int8-per-channel.yaml]      # paths relative to the grid file
    precisions: [int8, fp32]                  # every layer at one precision (optional)
    samples: 16                               # inputs fidelity is measured on (optional)

Each model is parsed once and its fidelity inputs and reference results computed once; the cells of a model
run as tasks through a :mod:`~simulator.search.scheduler` runner, in grid order, so the table does not depend
on the scheduler. A cell the stack cannot run (a plan left float layers on a float-less stack, a precision the
stack lacks) is a row that says why rather than an abort.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.deployment import check_precision, deploy, ptq_plan
from simulator.errors import EdgesimError
from simulator.estimate import estimate, prepare
from simulator.fidelity import measure, self_fidelity
from simulator.hardware import PRECISION_BITS, load_hardware
from simulator.plan import Plan, apply_plan, load_plan
from simulator.search.evaluate import Context, make_context
from simulator.search.scheduler import Runner
from simulator.yamlio import read_yaml

FIELDS = ("models", "hardware", "plans", "precisions", "samples")
PRECISIONS = ("int8", "int16", "fp16", "fp32")
COLUMNS = ["model", "hardware", "variant", "latency_ms", "energy_uj", "flash_bytes", "peak_ram_bytes",
           "fits_flash", "fits_ram", "accuracy", "sqnr_db", "precision_source", "note"]  # fmt: skip


@dataclass(frozen=True)
class Grid:
    models: tuple[str, ...]
    hardware: tuple[str, ...]
    plans: tuple[Plan, ...]
    precisions: tuple[str, ...]
    samples: int | None
    path: str = ""


def _names(data: dict, key: str, where: str, required: bool) -> tuple[str, ...]:
    value = data.get(key)
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise EdgesimError(f"{where}: {key}: expected a non-empty list of names, got {value!r}")
    return tuple(value)


def load_grid(path: str | Path) -> Grid:
    """The grid in ``path``; a missing or misspelled field, a plan or profile that does not load, is one error
    naming the file and the field."""
    path = Path(path)
    where = str(path)
    try:
        data = read_yaml(path, "sweep grid")
    except EdgesimError as exc:
        raise EdgesimError(f"{where}: {exc}") from None
    if not isinstance(data, dict):
        raise EdgesimError(f"{where}: a grid is a mapping with fields {', '.join(FIELDS)}")
    for key in data:
        if key not in FIELDS:
            raise EdgesimError(f"{where}: unknown field {key!r}; valid fields: {', '.join(FIELDS)}")
    models = _names(data, "models", where, True)
    hardware = _names(data, "hardware", where, True)
    for spec in hardware:
        try:
            load_hardware(spec)
        except EdgesimError as exc:
            raise EdgesimError(f"{where}: hardware: {exc}") from None
    plans = []
    for name in _names(data, "plans", where, False):
        plan_path = Path(name) if Path(name).is_absolute() else path.parent / name
        if not plan_path.is_file() and Path(name).is_file():
            plan_path = Path(name)
        plans.append(load_plan(plan_path))
    precisions = _names(data, "precisions", where, False)
    for p in precisions:
        if p not in PRECISIONS:
            raise EdgesimError(f"{where}: precisions: {p!r} is not one of {', '.join(PRECISIONS)}")
    if not plans and not precisions:
        raise EdgesimError(f"{where}: give 'plans', 'precisions' or both (what to run each model at)")
    samples = data.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise EdgesimError(f"{where}: samples: expected a positive integer, got {samples!r}")
    return Grid(models, hardware, tuple(plans), precisions, samples, where)


def sweep_cell(context: Context, item: tuple[str, str, Any]) -> dict[str, Any]:
    """One row: ``item`` is (hardware spec, "plan" or "precision", the plan or precision name)."""
    spec, kind, value = item
    hw = load_hardware(spec)
    graph = context.graph
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(model=graph.name, hardware=hw.label, variant=value.name if kind == "plan" else value, note="")
    try:
        if kind == "plan":
            deployed = deploy(apply_plan(graph, value), hw, from_plan=True)
            est = estimate(prepare(deployed.graph), hw, precision_source=deployed.precision_source)
            measured = deployed.graph
        else:
            check_precision(hw, value)
            est = estimate(prepare(graph), hw, precision=value, precision_source="--precision")
            # an integer precision is what post-training quantization at that width computes; a float one runs
            # the model as it is (fp16's rounding is not modelled: its fidelity is left empty)
            bits = PRECISION_BITS[value] if value.startswith("int") else None
            measured = apply_plan(graph, ptq_plan(bits)) if bits else (graph if value == "fp32" else None)
    except EdgesimError as exc:
        row["note"] = f"does not run: {exc}"
        return row
    totals = est.totals()
    row.update({m: totals[m] for m in ("latency_ms", "energy_uj", "flash_bytes", "peak_ram_bytes")})
    row.update(fits_flash=est.fits["flash"], fits_ram=est.fits["ram"], precision_source=est.precision_source)
    if measured is not None:
        fidelity = (
            self_fidelity(graph, context.reference)
            if measured is graph
            else measure(graph, measured, context.data, ref=context.reference)
        )
        row["accuracy"] = fidelity.accuracy
        row["sqnr_db"] = fidelity.output_sqnr_db  # inf: identical to the model
    return row


def run_sweep(grid: Grid, runner: Runner, load_model, samples: int | None = None) -> list[dict[str, Any]]:
    """Every cell of ``grid`` in grid order (model, hardware, plans then precisions)."""
    rows: list[dict[str, Any]] = []
    n = samples if samples is not None else grid.samples
    for model in grid.models:
        graph = load_model(model)
        # fidelity is measured against the model on inputs chosen once per model; the profile does not matter
        context = make_context(graph, load_hardware(grid.hardware[0]), n)
        items = [(hw, "plan", p) for hw in grid.hardware for p in grid.plans]
        items += [(hw, "precision", p) for hw in grid.hardware for p in grid.precisions]
        rows += runner.map(sweep_cell, context, items)
    return rows
