"""The search space: which compression each weighted layer may take (docs/search.md).

A space is YAML read through simulator.yamlio and validated as plans are: an unknown field or a value out of
range is one error naming the file and the field. Without a file the default space is built from the profile:
weight bits 2/4/8 (16 when the stack runs int16), per-channel or per-tensor scales, unstructured pruning only
where the profile skips zeros (elsewhere it saves nothing and costs accuracy), N:M pruning for the patterns the
profile lists, weight sharing where it has codebook support; activations at 8 bits; the first and last layer
pinned at 8-bit per-channel weights unless they hold much of the model (:func:`default_pinned`).
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import EdgesimError
from simulator.graph import Graph
from simulator.hardware import Hardware
from simulator.passes.prune import weight_name, weighted_layers
from simulator.yamlio import read_yaml

FIELDS = ("bits", "granularity", "prune", "share", "activation_bits", "pinned", "groups")
GRANULARITIES = ("per-channel", "per-tensor")


@dataclass(frozen=True, order=True)
class Choice:
    """One layer's compression: weight bits and scale granularity, pruning ("" none, "0.5" unstructured
    fraction, "2:4" N:M) and k-means sharing bits (0 none)."""

    bits: int
    granularity: str
    prune: str = ""
    share: int = 0

    @property
    def label(self) -> str:
        text = f"w{self.bits}{'c' if self.granularity == 'per-channel' else 't'}"
        if self.prune:
            text += f"-p{self.prune}"
        if self.share:
            text += f"-s{self.share}"
        return text


BASE = Choice(8, "per-channel")


@dataclass(frozen=True)
class Space:
    """Per unit (a layer, or a group of layers that take one choice together) the choices it may take."""

    units: tuple[tuple[str, ...], ...]  # layer names of each unit, in graph order
    choices: tuple[tuple[Choice, ...], ...]  # per unit; BASE first
    activation_bits: int

    @property
    def size(self) -> int:
        n = 1
        for c in self.choices:
            n *= len(c)
        return n


def _fail(where: str, field: str, message: str) -> EdgesimError:
    return EdgesimError(f"{where}: {field}: {message}")


def _list(value: Any, where: str, field: str) -> list:
    if not isinstance(value, list) or not value:
        raise _fail(where, field, f"expected a non-empty list, got {value!r}")
    return value


def _prune_option(value: Any, where: str) -> str:
    if value in (None, "none", 0, 0.0):
        return ""
    if isinstance(value, str) and ":" in value:
        try:
            n, m = (int(v) for v in value.split(":"))
        except ValueError:
            n = m = 0
        if not 0 < n < m:
            raise _fail(where, "prune", f"expected N:M with 0 < N < M such as 2:4, got {value!r}")
        return f"{n}:{m}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise _fail(where, "prune", f"expected none, a fraction in (0, 1) or N:M, got {value!r}")
    return f"{float(value):g}"


def default_options(hw: Hardware) -> dict[str, Any]:
    """The default space's options for ``hw`` (see the module docstring for the reasons)."""
    bits = [2, 4, 8] + ([16] if "int16" in hw.stack.precisions else [])
    prune = ["none"] + ([0.5, 0.75] if hw.sparsity.skips_zeros else [])
    prune += [f"{n}:{m}" for n, m in hw.sparsity.n_m_patterns]
    share = ["none"] + ([4] if hw.codebook.supported else [])
    return {"bits": bits, "granularity": list(GRANULARITIES), "prune": prune, "share": share, "activation_bits": 8}


#: a first or last layer holding more than this share of the weights stays searchable by default
PIN_SHARE = 0.15


def default_pinned(graph: Graph) -> list[str]:
    """The first and last weighted layer, kept at 8-bit per-channel weights as deployments usually keep them
    (they see the raw input and produce the scores, and are most often the most sensitive). A layer holding
    more than :data:`PIN_SHARE` of the weights stays searchable: pinning it could put a size budget out of
    reach (digits-cnn's classifier holds a fifth of its weights)."""
    layers = weighted_layers(graph)
    if len(layers) < 3:
        return []
    sizes = {n.name: graph.tensors[weight_name(graph, n)].size for n in layers}
    total = sum(sizes.values())
    return [n.name for n in (layers[0], layers[-1]) if sizes[n.name] <= PIN_SHARE * total]


def build_space(graph: Graph, hw: Hardware, options: dict[str, Any] | None = None, where: str = "space") -> Space:
    """The space for ``graph``: the defaults for ``hw`` overridden by ``options`` (a parsed YAML mapping)."""
    if options is not None and not isinstance(options, dict):
        raise EdgesimError(f"{where}: a search space is a mapping with fields {', '.join(FIELDS)}")
    given = options or {}
    for key in given:
        if key not in FIELDS:
            raise EdgesimError(f"{where}: unknown field {key!r}; valid fields: {', '.join(FIELDS)}")
    opts = {**default_options(hw), **given}
    bits = _list(opts["bits"], where, "bits")
    for b in bits:
        if isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 16:
            raise _fail(where, "bits", f"expected integers from 2 to 16, got {b!r}")
    grans = _list(opts["granularity"], where, "granularity")
    for g in grans:
        if g not in GRANULARITIES:
            raise _fail(where, "granularity", f"expected per-channel or per-tensor, got {g!r}")
    prunes = [_prune_option(p, where) for p in _list(opts["prune"], where, "prune")]
    shares = []
    for s in _list(opts["share"], where, "share"):
        if s in (None, "none", 0):
            shares.append(0)
        elif isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 8:
            raise _fail(where, "share", f"expected none or codebook bits from 1 to 8, got {s!r}")
        else:
            shares.append(s)
    act = opts["activation_bits"]
    if act not in (8, 16):
        raise _fail(where, "activation_bits", f"expected 8 or 16 (TFLite's int8 and 16x8 schemes), got {act!r}")
    layers = [n.name for n in weighted_layers(graph)]
    if not layers:
        raise EdgesimError(f"{graph.name}: the model has no layers with weights to search over")
    pinned = given.get("pinned", default_pinned(graph))
    pinned_names = _match(_names(pinned, where, "pinned"), layers, where, "pinned")
    groups = [_match(_names(g, where, "groups"), layers, where, "groups") for g in given.get("groups", [])]
    if "groups" in given and not isinstance(given["groups"], list):
        raise _fail(where, "groups", "expected a list of groups, each a list of layer names or globs")
    seen: set[str] = set()
    units: list[tuple[str, ...]] = []
    for name in layers:
        if name in seen:
            continue
        group = next((g for g in groups if name in g), [name])
        units.append(tuple(n for n in layers if n in group))
        seen.update(group)
    free = sorted({Choice(b, g, p, s) for b, g, p, s in itertools.product(bits, grans, prunes, shares)})
    free = [c for c in free if not c.share or c.share < c.bits]  # a codebook wider than the weights saves nothing
    per_unit = []
    for unit in units:
        options_here = [BASE] if any(n in pinned_names for n in unit) else [BASE] + [c for c in free if c != BASE]
        per_unit.append(tuple(options_here))
    return Space(tuple(units), tuple(per_unit), int(act))


def _names(value: Any, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, field, f"expected a layer name or a list of names / globs, got {value!r}")
    return value


def _match(patterns: list[str], layers: list[str], where: str, field: str) -> list[str]:
    out = []
    for pattern in patterns:
        hits = [n for n in layers if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise _fail(where, field, f"{pattern!r} matches no layer with weights; layers: {', '.join(layers)}")
        out += [h for h in hits if h not in out]
    return out


def load_space(path: str | Path | None, graph: Graph, hw: Hardware) -> Space:
    """The space in ``path`` (None: the default for ``hw``); errors name the file."""
    if path is None:
        return build_space(graph, hw)
    try:
        data = read_yaml(Path(path), "search space")
    except EdgesimError as exc:
        raise EdgesimError(f"{path}: {exc}") from None
    return build_space(graph, hw, data if data is not None else {}, str(path))


def plan_data(space: Space, assignment: tuple[int, ...], name: str) -> dict[str, Any]:
    """The plan (as parse_plan reads it) that gives unit i its choice ``assignment[i]``: prune, share and
    weight-quantize passes grouped by setting, then one activation pass over every layer."""
    by: dict[tuple[str, Any], list[str]] = {}
    for unit, options, index in zip(space.units, space.choices, assignment, strict=True):
        c = options[index]
        if c.prune:
            by.setdefault(("prune", c.prune), []).extend(unit)
        if c.share:
            by.setdefault(("share", c.share), []).extend(unit)
        by.setdefault(("quantize", (c.bits, c.granularity)), []).extend(unit)
    passes: list[dict[str, Any]] = []
    for (kind, value), layers in sorted(
        by.items(), key=lambda kv: (("prune", "share", "quantize").index(kv[0][0]), str(kv[0][1]))
    ):
        if kind == "prune":
            if ":" in value:
                passes.append({"pass": "prune", "layers": layers, "method": "n:m", "pattern": value})
            else:
                passes.append({"pass": "prune", "layers": layers, "sparsity": float(value)})
        elif kind == "share":
            passes.append({"pass": "share", "layers": layers, "bits": value})
        else:
            bits, granularity = value
            passes.append({"pass": "quantize", "layers": layers, "weights": {"bits": bits, "granularity": granularity}})
    symmetric = space.activation_bits > 8  # TFLite's 16x8 scheme: int16 activations with zero point 0
    passes.append({"pass": "quantize", "activations": {"bits": space.activation_bits, "symmetric": symmetric}})
    return {"name": name, "description": describe(space, assignment), "passes": passes}


def describe(space: Space, assignment: tuple[int, ...]) -> str:
    """``conv1=w8c conv2=w4t fc=w8c``: each unit's choice."""
    return " ".join(
        f"{'+'.join(unit)}={options[i].label}"
        for unit, options, i in zip(space.units, space.choices, assignment, strict=True)
    )
