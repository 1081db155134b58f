"""Text renderings (table, JSON, CSV) of `inspect` counts. Field names are stable: scripts depend on them."""

from __future__ import annotations

from simulator.estimate import Estimate
from simulator.estimate.uncertainty import LEVEL, bands, interval_text, intervals
from simulator.output import format_bytes, shape_text, table, to_csv, to_json
from simulator.summary import ModelCounts

LAYER_FIELDS = (
    "name",
    "op",
    "op_class",
    "inputs",
    "outputs",
    "weights",
    "params",
    "macs",
    "ops",
    "weight_bytes",
    "activation_bytes",
    "warning",
)


def counts_dict(counts: ModelCounts) -> dict:
    layers = []
    for layer in counts.layers:
        row = {key: getattr(layer, key) for key in LAYER_FIELDS}
        for key in ("inputs", "outputs", "weights"):
            row[key] = [list(s) for s in row[key]]
        layers.append(row)
    return {"model": counts.model, "totals": counts.totals(), "layers": layers, "warnings": counts.warnings}


def render_counts(counts: ModelCounts, fmt: str) -> str:
    if fmt == "json":
        return to_json(counts_dict(counts))
    if fmt == "csv":
        rows = []
        for layer in counts.layers:
            row = [getattr(layer, key) for key in LAYER_FIELDS]
            for i in (3, 4, 5):
                row[i] = ";".join(shape_text(s) for s in row[i])
            rows.append(row)
        return to_csv(LAYER_FIELDS, rows)
    headers = ["layer", "op", "input", "output", "params", "MACs", "ops"]
    rows = [
        [
            layer.name,
            layer.op + (" (!)" if layer.warning else ""),
            ", ".join(shape_text(s) for s in layer.inputs),
            ", ".join(shape_text(s) for s in layer.outputs),
            layer.params,
            layer.macs,
            layer.ops,
        ]
        for layer in counts.layers
    ]
    totals = counts.totals()
    rows.append(["total", "", "", "", totals["params"], totals["macs"], totals["ops"]])
    text = f"model: {counts.model}\n\n" + table(headers, rows, [False] * 4 + [True] * 3)
    text += (
        f"\nweight_bytes: {totals['weight_bytes']:,} (as stored)"
        f"\nactivation_bytes_max: {totals['activation_bytes_max']:,} (largest layer's activation inputs + outputs)\n"
    )
    for warning in counts.warnings:
        text += f"warning: {warning}\n"
    return text


# -- estimate ----------------------------------------------------------------------------------------------

ESTIMATE_LAYER_FIELDS = (
    "name",
    "op",
    "op_class",
    "precision",
    "macs",
    "ops",
    "params",
    "weight_bytes",
    "weight_read_bytes",
    "sparse_mode",
    "sparsity",
    "activation_read_bytes",
    "activation_write_bytes",
    "compute_cycles",
    "memory_cycles",
    "overhead_cycles",
    "latency_ms",
    "energy_uj",
    "energy_datapath_uj",
    "energy_memory_uj",
    "energy_baseline_uj",
    "bound",
)


def estimate_dict(est: Estimate) -> dict:
    hw = est.hardware
    hw_bands = bands(hw)
    return {
        "model": est.model,
        "hardware": {"name": hw.name, "stack": hw.stack.name, "chip": hw.chip, "clock_hz": hw.clock_hz},
        "plan": est.plan,
        "precision": est.precision,
        "precision_source": est.precision_source,
        "notes": est.notes,
        "totals": est.totals() | intervals(est, hw_bands),
        "interval": {"level": LEVEL} | {f"{metric}_basis": b.basis for metric, b in hw_bands.items()},
        "fits": est.fits,
        "capacity": {"flash_bytes": est.capacity("flash"), "ram_bytes": est.capacity("ram")},
        "layers": [{key: getattr(layer, key) for key in ESTIMATE_LAYER_FIELDS} for layer in est.layers],
        "warnings": est.warnings,
    }


def fit_lines(est: Estimate) -> list[str]:
    """Plain-words verdicts on flash and RAM."""
    hw = est.hardware
    lines = []
    for role, used, level in (
        ("flash", est.flash_bytes, hw.weights_level),
        ("ram", est.peak_ram_bytes, hw.activations_level),
    ):
        capacity = est.capacity(role)
        what = "weights" if role == "flash" else "activation arena (peak)"
        share = f"{100 * used / capacity:.1f}%"
        if est.fits[role]:
            lines.append(f"{what}: {format_bytes(used)} of {format_bytes(capacity)} {level} ({share}) - fits")
        else:
            lines.append(
                f"{what}: {format_bytes(used)} of {format_bytes(capacity)} {level} ({share}) - DOES NOT FIT "
                f"(over by {format_bytes(used - capacity) if used > capacity else 'the shared level'})"
            )
    return lines


def precision_line(est: Estimate) -> str:
    """What the layers run at and why, in a few words (the JSON's ``precision`` and ``precision_source``)."""
    if est.precision is not None:
        return f"{est.precision} (--precision)"
    used = ", ".join(sorted({layer.precision for layer in est.layers})) or "none"
    if est.precision_source == "post-training quantization" and est.notes:
        return f"{used} - {est.notes[0]}"
    return f"{used} ({'as the plan left it' if est.precision_source == 'plan' else 'as the model gives it'})"


def energy_line(est: Estimate, span: dict | None = None) -> str:
    """Energy per inference in the parts a board measurement is made of: the chip's active baseline power over
    the inference time (what dominates on a microcontroller), plus the incremental datapath and memory energy
    that precision and compression change; with ``span`` (uncertainty.intervals), its error bar."""
    t, hw = est.totals(), est.hardware
    parts = [f"incremental datapath {t['energy_datapath_uj']:,.2f}", f"memory {t['energy_memory_uj']:,.2f}"]
    if not hw.energy_only:
        parts.insert(
            0,
            f"active baseline {t['energy_baseline_uj']:,.2f} ({hw.static_power_mw:g} mW x {t['latency_ms']:,.3f} ms)",
        )
    bar = f" {interval_text(span['energy_uj_low'], span['energy_uj_high'])}" if span else ""
    return f"energy_uj: {t['energy_uj']:,.2f}{bar} = " + " + ".join(parts)


def render_estimate(est: Estimate, fmt: str) -> str:
    if fmt == "json":
        return to_json(estimate_dict(est))
    if fmt == "csv":
        rows = [[getattr(layer, key) for key in ESTIMATE_LAYER_FIELDS] for layer in est.layers]
        return to_csv(ESTIMATE_LAYER_FIELDS, rows)
    energy_only = est.hardware.energy_only
    headers = ["layer", "op", "prec", "sparsity", "MACs", "weight B", "latency ms", "energy uJ", "bound"]
    rows = [
        [
            layer.name,
            layer.op,
            layer.precision,
            f"{layer.sparsity:.3f}" if layer.sparsity else "",
            layer.macs,
            layer.weight_bytes,
            "n/a" if energy_only else f"{layer.latency_ms:.3f}",
            f"{layer.energy_uj:.2f}",
            layer.bound,
        ]
        for layer in est.layers
    ]
    t = est.totals()
    latency = "n/a" if energy_only else f"{t['latency_ms']:.3f}"
    rows.append(["total", "", "", "", t["macs"], t["flash_bytes"], latency, f"{t['energy_uj']:.2f}", ""])
    hw = est.hardware
    head = (
        f"model: {est.model}\nhardware: {hw.label} ({hw.chip}, {hw.clock_hz / 1e6:g} MHz)\n"
        f"precision: {precision_line(est)}"
        + (f"\nplan: {est.plan}" if est.plan else "")
        + "\n"
        + "".join(f"note: {note}\n" for note in est.notes if note not in precision_line(est))
        + "\n"
    )
    text = head + table(headers, rows, [False, False, False, True, True, True, True, True, False])
    hw_bands = bands(hw)
    span = intervals(est, hw_bands)
    lat_span = "" if energy_only else " " + interval_text(span["latency_ms_low"], span["latency_ms_high"])
    text += f"\nlatency_ms: {latency}{lat_span}\n" + energy_line(est, span) + "\n"
    text += (
        f"intervals: {LEVEL:.0%} of measurements expected inside; "
        + ("" if energy_only else f"latency from {hw_bands['latency_ms'].basis}, ")
        + f"energy from {hw_bands['energy_uj'].basis} (docs/calibration.md)\n"
    )
    text += "".join(line + "\n" for line in fit_lines(est))
    for warning in est.warnings:
        text += f"warning: {warning}\n"
    return text
