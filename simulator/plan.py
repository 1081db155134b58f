"""Compression plans: a YAML file naming an ordered list of passes, each with a layer selector and its
parameters (docs/plans.md). A plan is validated completely before any pass runs: a misspelled field, a layer
that does not exist or a value out of range is one error naming the file, the pass and the field.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Encoding, Graph, Node
from simulator.passes import prune, quantize, share
from simulator.passes.deploy import fuse_hard_swish
from simulator.yamlio import read_yaml

_SELECTOR = {"pass", "layers", "ops"}
#: pass -> {field: (validator, default)}; a default of REQUIRED must be given
REQUIRED = object()


def _choice(*options):
    def check(value):
        if value not in options:
            raise ValueError(f"expected one of {', '.join(map(str, options))}")
        return value

    return check


def _number(lo: float, hi: float, integer: bool = False, lo_open: bool = False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            raise ValueError(f"expected {'an integer' if integer else 'a number'}")
        if value < lo or value > hi or (lo_open and value == lo):
            raise ValueError(f"expected a value in {'(' if lo_open else '['}{lo}, {hi}]")
        return value

    return check


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _bits_or_named(value):
    if value in ("binary", "ternary"):
        return value
    return _number(2, 16, integer=True)(value)


def _pattern(value):
    try:
        n, m = (int(v) for v in str(value).split(":"))
    except ValueError:
        raise ValueError("expected N:M such as 2:4") from None
    if not 0 < n < m:
        raise ValueError("expected N:M with 0 < N < M")
    return n, m


def _mapping(fields: dict[str, tuple[Callable, Any]]):
    def check(value):
        if not isinstance(value, dict):
            raise ValueError("expected a mapping")
        return _fields(value, fields)

    return check


PASSES: dict[str, dict[str, tuple[Callable, Any]]] = {
    "prune": {
        "method": (_choice("unstructured", "channel", "n:m"), "unstructured"),
        "sparsity": (_number(0, 1), None),
        "scope": (_choice("layer", "global"), "layer"),
        "pattern": (_pattern, None),
    },
    "quantize": {
        "weights": (
            _mapping(
                {
                    "bits": (_bits_or_named, REQUIRED),
                    "symmetric": (_boolean, True),
                    "granularity": (_choice(*quantize.GRANULARITIES), "per-channel"),
                }
            ),
            None,
        ),
        "activations": (
            _mapping(
                {
                    "bits": (_number(2, 16, integer=True), REQUIRED),
                    "symmetric": (_boolean, False),
                    "calibration": (_choice(*quantize.CALIBRATIONS), "minmax"),
                    "percentile": (_number(50, 100, lo_open=True), 99.99),
                }
            ),
            None,
        ),
    },
    "share": {
        "bits": (_number(1, 16, integer=True), REQUIRED),
        "init": (_choice(*share.INITS), "linear"),
        "seed": (_number(0, 2**32 - 1, integer=True), 0),
    },
    "encode": {
        "format": (_choice("dense", "csr", "csr-relative", "bitmask"), REQUIRED),
        "index_bits": (_number(1, 32, integer=True), 8),
        "huffman": (_boolean, False),
    },
}


class _FieldError(ValueError):
    """A field's error that already names the field and the value it got (a nested mapping's field), so the
    mappings around it only add their own key to the path."""


def _fields(value: dict, fields: dict[str, tuple[Callable, Any]]) -> dict:
    out = {}
    for key in value:
        if key not in fields:
            raise _FieldError(f"unknown field {key!r}; valid fields: {', '.join(fields)}")
    for key, (check, default) in fields.items():
        if key in value:
            try:
                out[key] = check(value[key])
            except _FieldError as exc:
                raise _FieldError(f"{key}: {exc}") from None
            except ValueError as exc:
                raise _FieldError(f"{key}: {exc}, got {value[key]!r}") from None
        elif default is REQUIRED:
            raise _FieldError(f"the field {key!r} is required")
        else:
            out[key] = default
    return out


@dataclass(frozen=True)
class PassSpec:
    kind: str
    layers: tuple[str, ...] | None
    ops: tuple[str, ...] | None
    params: dict[str, Any]
    index: int


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    passes: tuple[PassSpec, ...]
    path: str = ""


def parse_plan(data: Any, default_name: str, path: str = "") -> Plan:
    if not isinstance(data, dict):
        raise EdgesimError("a plan must be a mapping with 'name' and 'passes' (see docs/plans.md)")
    for key in data:
        if key not in ("name", "description", "passes"):
            raise EdgesimError(f"unknown top-level field {key!r}; valid fields: name, description, passes")
    passes = data.get("passes")
    if not isinstance(passes, list):
        raise EdgesimError("'passes' must be a list of passes")
    specs = []
    for i, item in enumerate(passes):
        where = f"passes[{i}]"
        if not isinstance(item, dict) or "pass" not in item:
            raise EdgesimError(f"{where}: each pass is a mapping with 'pass' ({', '.join(PASSES)})")
        kind = item["pass"]
        if kind not in PASSES:
            raise EdgesimError(f"{where}.pass: unknown pass {kind!r}; valid passes: {', '.join(PASSES)}")
        where = f"{where} ({kind})"
        selectors = {}
        for key in ("layers", "ops"):
            value = item.get(key)
            if isinstance(value, str):
                value = [value]
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise EdgesimError(f"{where}.{key}: expected a name or a list of names, got {value!r}")
            selectors[key] = tuple(value) if value is not None else None
        try:
            params = _fields({k: v for k, v in item.items() if k not in _SELECTOR}, PASSES[kind])
        except ValueError as exc:
            raise EdgesimError(f"{where}: {exc}") from None
        _check_pass(kind, params, where)
        specs.append(PassSpec(kind, selectors["layers"], selectors["ops"], params, i))
    return Plan(str(data.get("name", default_name)), str(data.get("description", "")), tuple(specs), path)


def _check_pass(kind: str, params: dict, where: str) -> None:
    if kind == "prune":
        method = params["method"]
        if method in ("unstructured", "channel") and params["sparsity"] is None:
            raise EdgesimError(f"{where}: method {method} needs 'sparsity' (the fraction to remove)")
        if method == "n:m" and params["pattern"] is None:
            raise EdgesimError(f"{where}: method n:m needs 'pattern', e.g. 2:4")
    if kind == "quantize" and params["weights"] is None and params["activations"] is None:
        raise EdgesimError(f"{where}: give 'weights', 'activations' or both")


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        data = read_yaml(path, "plan")
        return parse_plan(data, path.stem, str(path))
    except EdgesimError as exc:
        raise EdgesimError(f"{path}: {exc}") from None


def select(graph: Graph, spec: PassSpec) -> list[Node]:
    """The weighted layers a pass applies to; a name or pattern that matches none is an error."""
    candidates = prune.weighted_layers(graph)
    where = f"passes[{spec.index}] ({spec.kind})"
    names = [n.name for n in candidates]
    chosen = candidates
    if spec.layers is not None:
        chosen = []
        for pattern in spec.layers:
            matched = [n for n in candidates if fnmatch.fnmatchcase(n.name, pattern)]
            if not matched:
                raise EdgesimError(
                    f"{where}.layers: {pattern!r} matches no layer with weights; layers: {', '.join(names)}"
                )
            chosen += [n for n in matched if n not in chosen]
        chosen = [n for n in candidates if n in chosen]
    if spec.ops is not None:
        kinds = sorted({n.op_type for n in candidates})
        for op in spec.ops:
            if op not in kinds:
                raise EdgesimError(f"{where}.ops: no weighted layer is a {op!r}; op types: {', '.join(kinds)}")
        chosen = [n for n in chosen if n.op_type in spec.ops]
    return chosen


def check_plan(graph: Graph, plan: Plan) -> None:
    """Refuse a plan whose selectors name no layer of ``graph`` before any pass runs (a command that shows
    progress checks its inputs first); the error names the plan file, the pass and the field."""
    for spec in plan.passes:
        try:
            select(graph, spec)
        except EdgesimError as exc:
            raise EdgesimError(f"{plan.path or plan.name}: {exc}") from None


def apply_plan(graph: Graph, plan: Plan, calibration: list[dict[str, np.ndarray]] | None = None) -> Graph:
    """Run the plan's passes in order; the input graph is not modified."""
    for spec in plan.passes:
        try:
            graph = _apply(graph, spec, calibration)
        except EdgesimError as exc:
            message = str(exc)
            prefix = f"passes[{spec.index}]"
            raise EdgesimError(
                message if message.startswith(prefix) else f"{prefix} ({spec.kind}): {message}"
            ) from None
    return graph


def _apply(graph: Graph, spec: PassSpec, calibration) -> Graph:
    p = spec.params
    if spec.kind == "quantize" and p["activations"] is not None:
        # TFLite's converter fuses a spelled-out hard-swish before it calibrates: its output gets the
        # HARD_SWISH kernel's own parameters, whatever op ended the pattern
        graph = fuse_hard_swish(graph)
    layers = select(graph, spec)
    if spec.kind == "prune":
        if p["method"] == "unstructured":
            return prune.prune_unstructured(graph, layers, p["sparsity"], p["scope"])
        if p["method"] == "channel":
            return prune.prune_channels(graph, layers, p["sparsity"])
        return prune.prune_n_m(graph, layers, *p["pattern"])
    if spec.kind == "share":
        return share.share_weights(graph, layers, p["bits"], p["init"], p["seed"])
    if spec.kind == "encode":
        tensors = dict(graph.tensors)
        encoding = Encoding(p["format"], p["index_bits"], p["huffman"])
        for node in layers:
            name = prune.weight_name(graph, node)
            tensors[name] = graph.copy_tensor(name, encoding=encoding)
        return graph.replace(tensors=tensors)
    if p["weights"] is not None:
        w = p["weights"]
        graph = quantize.quantize_weights(graph, layers, w["bits"], w["symmetric"], w["granularity"])
    if p["activations"] is not None:
        a = p["activations"]
        feeds = calibration if calibration is not None else random_calibration(graph)
        graph = quantize.quantize_activations(
            graph, layers, a["bits"], a["symmetric"], a["calibration"], feeds, a["percentile"]
        )
    return graph


def random_calibration(graph: Graph, samples: int = 8, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Seeded standard-normal inputs: the default when the user gives no calibration data."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(samples):
        feeds.append({name: rng.standard_normal(graph.tensors[name].shape).astype(np.float32) for name in graph.inputs})
    return feeds


def load_calibration(path: str | Path, graph: Graph) -> list[dict[str, np.ndarray]]:
    """Calibration feeds from a .npy (samples of the single input, stacked on axis 0) or an .npz (one array
    per input name, samples stacked on axis 0)."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EdgesimError(f"{path}: cannot read calibration data ({exc}); give a .npy or .npz file") from None
    arrays = {graph.inputs[0]: loaded} if isinstance(loaded, np.ndarray) else {k: loaded[k] for k in loaded.files}
    missing = [name for name in graph.inputs if name not in arrays]
    if missing:
        raise EdgesimError(f"{path}: no array for input(s) {', '.join(missing)}; the .npz keys must be the input names")
    counts = set()
    for name in graph.inputs:
        shape = graph.tensors[name].shape
        data = np.asarray(arrays[name], dtype=np.float32)
        if data.shape[1:] != shape[1:]:
            raise EdgesimError(
                f"{path}: calibration data for {name!r} has samples of shape {data.shape[1:]}, "
                f"the model takes {shape[1:]} (stack samples on axis 0)"
            )
        arrays[name] = data
        counts.add(data.shape[0])
    n = min(counts)
    batch = graph.tensors[graph.inputs[0]].shape[0]
    return [{name: arrays[name][i : i + batch] for name in graph.inputs} for i in range(0, n - batch + 1, batch)]
