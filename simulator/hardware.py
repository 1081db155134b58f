"""Hardware profiles: load a YAML profile, validate it against hwprofiles/schema.json and its own cross-field
rules, and pick a software stack (``--hw NAME[:STACK]``).

Profiles are data; this module is the only place that reads them, and it refuses anything incomplete: a
missing number, an unknown field or a number without a source is an error naming the field path, never a
default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from simulator.errors import EdgesimError
from simulator.resources import data_dir
from simulator.yamlio import read_yaml

PRECISION_BITS = {"int4": 4, "int8": 8, "int16": 16, "int32": 32, "fp16": 16, "bf16": 16, "fp32": 32}


@dataclass(frozen=True)
class ComputeUnit:
    macs_per_cycle: float
    ops_per_cycle: float
    mac_energy_pj: float
    add_energy_pj: float


@dataclass(frozen=True)
class MemoryLevel:
    name: str
    kind: str
    capacity_bytes: int
    bandwidth_bytes_per_cycle: float
    read_energy_pj_per_byte: float
    write_energy_pj_per_byte: float


@dataclass(frozen=True)
class Stack:
    name: str
    description: str
    precisions: tuple[str, ...]
    efficiency: dict[str, float]
    layer_overhead_cycles: float | None = None
    winograd_3x3_speedup: float = 1.0


@dataclass(frozen=True)
class SparseSupport:
    skips_zeros: bool
    efficiency: float = 1.0
    index_decode_cycles: float = 0.0
    index_bits: int = 0
    n_m_patterns: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class CodebookSupport:
    supported: bool
    lookup_cycles_per_weight: float = 0.0
    lookup_energy_pj: float = 0.0


@dataclass(frozen=True)
class Hardware:
    """A profile with one software stack chosen: everything the estimator needs, and nothing mutable."""

    name: str
    description: str
    chip: str
    board: str
    clock_hz: float
    energy_only: bool
    overlap_compute_memory: bool
    static_power_mw: float
    layer_overhead_cycles: float
    compute: dict[str, ComputeUnit]
    memory: dict[str, MemoryLevel]
    weights_level: str
    activations_level: str
    sparsity: SparseSupport
    codebook: CodebookSupport
    stack: Stack
    stacks: tuple[str, ...]
    default_stack: str
    sources: dict[str, str] = field(repr=False)
    path: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}:{self.stack.name}"

    def precision_for(self, wanted: str) -> str:
        """The precision a layer wanting ``wanted`` runs at: itself if the chip and stack have it; for an
        integer width they lack, the next wider integer precision they have."""
        available = [p for p in self.stack.precisions if p in self.compute]
        if wanted in available:
            return wanted
        if wanted.startswith("int"):
            wider = sorted(
                (PRECISION_BITS[p], p)
                for p in available
                if p.startswith("int") and PRECISION_BITS[p] >= PRECISION_BITS[wanted]
            )
            if wider:
                return wider[0][1]
        raise EdgesimError(
            f"hardware {self.label} has no {wanted} kernels; it runs {', '.join(available)} "
            "(quantize the model or pick another --precision / stack)"
        )


@cache
def schema() -> dict:
    """The profile schema (hwprofiles/schema.json), parsed once."""
    return json.loads((data_dir("hwprofiles") / "schema.json").read_text())


def profile_names() -> list[str]:
    return sorted(p.stem for p in data_dir("hwprofiles").glob("*.yaml"))


def _path_text(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _schema_error(data: Any) -> str | None:
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    message = error.message
    if len(message) > 200:
        message = message[:200] + "..."
    return f"{_path_text(error.absolute_path)}: {message}"


def _numeric_paths(value: Any, path: str, named_lists: bool = True) -> list[str]:
    """Dotted paths of every number in the profile (memory levels by name; a list of numbers as one leaf)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numeric_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "name" in v for v in value):
            return [p for v in value for p in _numeric_paths(v, f"{path}.{v['name']}")]
        return [path] if any(_numeric_paths(v, path) for v in value) else []
    return []


def _all_paths(value: Any, path: str) -> set[str]:
    out = {path} if path else set()
    if isinstance(value, dict):
        for k, v in value.items():
            out |= _all_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for v in value:
            out |= _all_paths(v, f"{path}.{v['name']}")
    return out


def _covered(path: str, keys: set[str]) -> bool:
    return any(path == k or path.startswith(k + ".") for k in keys)


def _check_semantics(data: dict) -> None:
    memory_names = [m["name"] for m in data["memory"]]
    if len(set(memory_names)) != len(memory_names):
        raise EdgesimError(f"memory: level names repeat ({', '.join(memory_names)}); each level needs its own name")
    for role in ("weights", "activations"):
        if data["placement"][role] not in memory_names:
            raise EdgesimError(
                f"placement.{role}: {data['placement'][role]!r} is not a memory level; "
                f"expected one of {', '.join(memory_names)}"
            )
    if data["default_stack"] not in data["stacks"]:
        raise EdgesimError(
            f"default_stack: {data['default_stack']!r} is not a stack; expected one of {', '.join(data['stacks'])}"
        )
    for name, stack in data["stacks"].items():
        missing = [p for p in stack["precisions"] if p not in data["compute"]]
        if missing:
            raise EdgesimError(
                f"stacks.{name}.precisions: {', '.join(missing)} not in compute; "
                f"expected a subset of {', '.join(data['compute'])}"
            )
    _check_calibration(data)
    for i, pattern in enumerate(data["sparsity"]["n_m_patterns"]):
        if pattern[0] >= pattern[1]:
            raise EdgesimError(f"sparsity.n_m_patterns[{i}]: {pattern} needs N < M, e.g. [2, 4]")
    keys = set(data["sources"])
    known = _all_paths({k: v for k, v in data.items() if k != "sources"}, "")
    for key in sorted(keys):
        if key not in known:
            raise EdgesimError(f"sources.{key}: names no field of the profile; use a field path such as clock_hz")
    for path in _numeric_paths({k: v for k, v in data.items() if k != "sources"}, ""):
        if not _covered(path, keys):
            raise EdgesimError(f"{path}: this number has no entry in sources; cite a datasheet, paper or measurement")


def _check_calibration(data: dict) -> None:
    """A stack's ``calibrate`` list names numbers of this profile that calibration may move."""
    from simulator.calibrate.params import parameter

    for name, stack in data["stacks"].items():
        for i, path in enumerate(stack.get("calibrate", [])):
            try:
                parameter(data, path)
            except EdgesimError as exc:
                raise EdgesimError(f"stacks.{name}.calibrate[{i}]: {exc}") from None


def parse_profile(data: Any) -> dict:
    """Validate a parsed profile; returns it unchanged. Errors name the field path."""
    if not isinstance(data, dict):
        raise EdgesimError("a hardware profile must be a YAML mapping (see docs/hardware-profiles.md)")
    problem = _schema_error(data)
    if problem is not None:
        raise EdgesimError(problem)
    _check_semantics(data)
    return data


def read_profile(path: Path) -> dict:
    try:
        return parse_profile(read_yaml(path, "hardware profile"))
    except EdgesimError as exc:
        raise EdgesimError(f"{path}: {exc}") from None


def _build(data: dict, stack_name: str, path: str) -> Hardware:
    stack_data = data["stacks"][stack_name]
    stack = Stack(
        stack_name,
        stack_data["description"],
        tuple(stack_data["precisions"]),
        dict(stack_data["efficiency"]),
        stack_data.get("layer_overhead_cycles"),
        float(stack_data.get("winograd_3x3_speedup", 1.0)),
    )
    unstructured = data["sparsity"]["unstructured"]
    codebook = data["codebook"]
    return Hardware(
        name=data["name"],
        description=data["description"],
        chip=data["chip"],
        board=data.get("board", ""),
        clock_hz=float(data["clock_hz"]),
        energy_only=bool(data.get("energy_only", False)),
        overlap_compute_memory=data["overlap_compute_memory"],
        static_power_mw=float(data["static_power_mw"]),
        layer_overhead_cycles=float(
            stack.layer_overhead_cycles if stack.layer_overhead_cycles is not None else data["layer_overhead_cycles"]
        ),
        compute={p: ComputeUnit(**unit) for p, unit in data["compute"].items()},
        memory={m["name"]: MemoryLevel(**m) for m in data["memory"]},
        weights_level=data["placement"]["weights"],
        activations_level=data["placement"]["activations"],
        sparsity=SparseSupport(
            skips_zeros=unstructured["skips_zeros"],
            efficiency=unstructured.get("efficiency", 1.0),
            index_decode_cycles=unstructured.get("index_decode_cycles", 0.0),
            index_bits=unstructured.get("index_bits", 0),
            n_m_patterns=tuple(tuple(p) for p in data["sparsity"]["n_m_patterns"]),
        ),
        codebook=CodebookSupport(
            codebook["supported"], codebook.get("lookup_cycles_per_weight", 0.0), codebook.get("lookup_energy_pj", 0.0)
        ),
        stack=stack,
        stacks=tuple(data["stacks"]),
        default_stack=data["default_stack"],
        sources=dict(data["sources"]),
        path=path,
    )


def hardware_from_data(data: dict, stack: str, path: str = "") -> Hardware:
    """A validated profile (as :func:`read_profile` returns it) with one stack chosen."""
    if stack not in data["stacks"]:
        raise EdgesimError(f"{data['name']} has no stack {stack!r}; its stacks: {', '.join(data['stacks'])}")
    return _build(data, stack, path)


def load_hardware(spec: str) -> Hardware:
    """``NAME``, ``NAME:STACK``, ``path/to/profile.yaml`` or ``path.yaml:STACK``."""
    base, _, stack = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
    path = Path(base)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        candidate = data_dir("hwprofiles") / f"{base}.yaml"
        if not candidate.is_file():
            raise EdgesimError(f"--hw {spec}: unknown hardware profile; known: {', '.join(profile_names())}")
        path = candidate
    elif not path.is_file():
        raise EdgesimError(f"--hw {spec}: no such profile file")
    data = read_profile(path)
    stack = stack or data["default_stack"]
    if stack not in data["stacks"]:
        raise EdgesimError(
            f"--hw {spec}: {data['name']} has no stack {stack!r}; its stacks: {', '.join(data['stacks'])}"
        )
    return _build(data, stack, str(path))
