"""Text renderings (table, JSON, CSV) of `inspect` counts. Field names are stable: scripts depend on them."""

from __future__ import annotations

from simulator.output import shape_text, table, to_csv, to_json
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
