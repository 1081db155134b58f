"""The user's measurements as observations: a measured time and the layers of one model it covers.

Two kinds of input (docs/calibration.md):
- a whole-model CSV with columns ``model, input, precision, latency_ms`` (optional ``id``): one observation
  per row, covering every layer; ``model`` is a zoo name or a .onnx / .tflite / .yaml path (relative paths
  are taken from the CSV's folder first). A file in the validation format (``edgesim validate --data``:
  ``metric, value, hardware, stack, ...``) gives its latency rows of the profile and stack being calibrated,
  disputed rows left out;
- ``MODEL=FILE``: a per-layer profile of MODEL in one of the formats of :mod:`simulator.calibrate.formats`;
  one observation per matched row, covering the layers the row timed.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from simulator.calibrate.formats import detect_format, parse_layer_profile
from simulator.calibrate.matching import match
from simulator.deployment import deploy
from simulator.errors import EdgesimError
from simulator.estimate import PreparedGraph, prepare
from simulator.hardware import PRECISION_BITS, Hardware
from simulator.importers import load_model
from simulator.validate import input_size

WHOLE_MODEL_COLUMNS = ("model", "input", "precision", "latency_ms")


@dataclass(frozen=True)
class Observation:
    id: str
    model: str
    precision: str | None
    layers: tuple[int, ...] | None  # indices into the deployed graph's layers; None = the whole model
    measured_ms: float


@dataclass
class Measurements:
    observations: list[Observation] = field(default_factory=list)
    graphs: dict[str, PreparedGraph] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hw: Hardware | None = None  # the profile as given: how models without a precision are deployed

    def graph(self, ref: str, base: Path | None = None, precision: str | None = None) -> tuple[str, PreparedGraph]:
        """The prepared graph of a model reference (a path relative to ``base`` when it names a file there).
        Without a precision, the model as the stack deploys it (simulator/deployment.py: a float model on an
        integer-only stack is quantized after training, as estimate does)."""
        key = ref
        if base is not None and not Path(ref).is_file() and (base / ref).is_file():
            key = str(base / ref)
        if precision is None and self.hw is not None:
            key += "#deployed"
        if key not in self.graphs:
            graph = load_model(key.removesuffix("#deployed"))
            if key.endswith("#deployed"):
                graph = deploy(graph, self.hw).graph
            self.graphs[key] = prepare(graph)
        return key, self.graphs[key]


def _precision(text: str, where: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if text not in PRECISION_BITS:
        raise EdgesimError(f"{where}: precision {text!r} is not one of {', '.join(PRECISION_BITS)}")
    return text


def _validation_rows(path: Path, rows: list[dict], target: tuple[str, str] | None, out: Measurements) -> list:
    """Rows of a file in the validation format (edgesim validate --data): its latency rows for the profile and
    stack being calibrated, disputed ones left out, each with its value as latency_ms."""
    kept, skipped = [], 0
    for line, row in enumerate(rows, start=2):
        if row.get("metric") != "latency_ms":
            continue
        if (row.get("status") or "").strip() == "disputed":
            skipped += 1
            continue
        if target is not None and (row.get("hardware"), row.get("stack") or target[1]) != target:
            continue
        kept.append((line, row | {"latency_ms": row.get("value", "")}))
    if not kept:
        named = ", ".join(sorted({f"{r.get('hardware')}:{r.get('stack')}" for r in rows}))
        wanted = ":".join(target) if target else "this profile"
        raise EdgesimError(f"{path}: no latency_ms rows for {wanted} (its rows are for {named}); pick one with --hw")
    if skipped:
        out.notes.append(f"{path.name}: {skipped} disputed rows left out")
    return kept


def _read_whole_model(path: Path, out: Measurements, target: tuple[str, str] | None = None) -> None:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgesimError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not rows:
        raise EdgesimError(f"{path}: no measurements in it")
    if "latency_ms" not in rows[0] and {"metric", "value", "hardware"} <= set(rows[0]):
        numbered = _validation_rows(path, rows, target, out)
    else:
        missing = [c for c in WHOLE_MODEL_COLUMNS if c not in rows[0]]
        if missing:
            raise EdgesimError(
                f"{path}: missing columns {', '.join(missing)}; a whole-model file has "
                f"{', '.join(WHOLE_MODEL_COLUMNS)} (or is in the validation format: metric, value, hardware, ...)"
            )
        numbered = list(enumerate(rows, start=2))
    for line, row in numbered:
        where = f"{path}: line {line}"
        try:
            latency = float(row["latency_ms"])
        except (TypeError, ValueError):
            latency = math.nan
        if not latency > 0 or math.isinf(latency):
            raise EdgesimError(f"{where}: latency_ms {row['latency_ms']!r} must be a positive number of milliseconds")
        try:
            precision = _precision(row["precision"], where)
            key, graph = out.graph(row["model"], path.parent, precision)
        except EdgesimError as exc:
            raise EdgesimError(f"{where}: {exc}") from None
        expected = input_size(row["input"]) if row["input"] else None
        actual = graph.graph.tensors[graph.graph.inputs[0]].size
        if expected is not None and expected != actual:
            raise EdgesimError(f"{where}: input {row['input']} has {expected} elements, {row['model']} takes {actual}")
        label = (row.get("id") or "").strip() or f"{path.name}:{line} {row['model']}"
        out.observations.append(Observation(label, key, precision, None, latency))


def _read_per_layer(model: str, path: Path, precision: str | None, ticks_per_second: float | None, out: Measurements):
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise EdgesimError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        profile = parse_layer_profile(text, ticks_per_second)
    except EdgesimError as exc:
        raise EdgesimError(f"{path}: {exc}") from None
    key, graph = out.graph(model, precision=precision)
    layers = [(w.node.name, w.node.op_type, w.counts.op_class) for w in graph.work]
    pairs, how = match(profile, layers)
    pairs = [(row, idx) for row, idx in pairs if row.ms > 0]
    if not pairs:
        raise EdgesimError(
            f"{path}: none of its {len(profile.rows)} rows matches a layer of {model} by name or op type; "
            "is it a profile of this model?"
        )
    out.notes.append(f"{path.name}: {len(pairs)} of {len(profile.rows)} {profile.format} rows matched by {how}")
    for k, (row, idx) in enumerate(pairs):
        label = f"{path.name}#{k} {row.name or row.op_type}"
        out.observations.append(Observation(label, key, precision, idx, row.ms))


def split_item(item: str) -> tuple[str | None, Path]:
    """``FILE`` (a whole-model CSV) or ``MODEL=FILE`` (a per-layer profile of MODEL)."""
    if Path(item).is_file() or "=" not in item:
        return None, Path(item)
    model, _, file = item.partition("=")
    return model, Path(file)


def read_measurements(
    items: list[str],
    precision: str | None = None,
    ticks_per_second: float | None = None,
    hw: Hardware | None = None,
) -> Measurements:
    """``hw`` (the profile being calibrated) picks the rows of a validation-format file and deploys models
    measured without a precision."""
    out = Measurements(hw=hw)
    target = (hw.name, hw.stack.name) if hw is not None else None
    for item in items:
        model, path = split_item(item)
        if not path.is_file():
            raise EdgesimError(f"--measurements {item}: no such file")
        out.files.append(path.name)
        if model is None:
            text = path.read_text(encoding="utf-8", errors="replace")
            kind = detect_format(text)
            if kind is not None:
                raise EdgesimError(
                    f"--measurements {item}: a {kind} profile times the layers of one model; "
                    f"name it as MODEL=FILE, e.g. resnet-8={item}"
                )
            _read_whole_model(path, out, target)
        else:
            _read_per_layer(model, path, precision, ticks_per_second, out)
    return out
