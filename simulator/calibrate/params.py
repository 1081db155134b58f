"""The numbers of a profile that calibration may move, addressed by dotted path as in ``sources``.

A path names one number of the profile's data: ``stacks.cmsis-nn.efficiency.conv``, ``layer_overhead_cycles``,
``memory.sram.bandwidth_bytes_per_cycle`` (memory levels by name). Bounds come from the profile schema
(``exclusiveMinimum`` / ``minimum`` / ``maximum`` of the field), so a parameter that a later schema adds is
calibratable with no change here. A stack field the stack does not set (``stacks.S.layer_overhead_cycles``)
starts from the profile-level field of the same name, which is what the stack inherits.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from simulator.errors import EdgesimError
from simulator.hardware import schema


@dataclass(frozen=True)
class Parameter:
    path: str
    start: float
    low: float  # lower bound from the schema (0 when it gives none: parameters are fitted in log space)
    high: float  # upper bound from the schema (math.inf when it gives none)
    integer: bool


def _parent_and_key(data: dict, path: str, create: bool = False) -> tuple[Any, str]:
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = next((item for item in node if isinstance(item, dict) and item.get("name") == part), None)
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = None
        if node is None:
            raise EdgesimError(f"{path}: the profile has no {'.'.join(parts[: i + 1])}")
    if not isinstance(node, dict):
        raise EdgesimError(f"{path}: {'.'.join(parts[:-1]) or 'the profile'} is not a mapping of numbers")
    return node, parts[-1]


def _inherited(data: dict, path: str) -> float | None:
    """A stack field the stack leaves out takes the profile-level field of the same name."""
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "stacks" and parts[1] in data.get("stacks", {}):
        value = data.get(parts[2])
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def get_value(data: dict, path: str) -> float:
    parent, key = _parent_and_key(data, path)
    value = parent.get(key)
    if value is None:
        value = _inherited(data, path)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise EdgesimError(f"{path}: not a number of the profile; name a numeric field, e.g. stacks.S.efficiency.conv")
    return float(value)


def with_values(data: dict, values: dict[str, float]) -> dict:
    """A copy of the profile data with each path set (stack fields it lacked are added)."""
    out = copy.deepcopy(data)
    for path, value in values.items():
        parent, key = _parent_and_key(out, path)
        parent[key] = value
    return out


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **extra}
    return node


def _schema_field(path: str) -> dict:
    """The schema node of a profile field (a memory level is addressed by name, so one name part is skipped)."""
    root = schema()
    node = _resolve(root, root)
    for part in path.split("."):
        if node.get("type") == "array" or "items" in node:
            node = _resolve(node.get("items", {}), root)
            continue  # this part is the memory level's name
        props = node.get("properties", {})
        if part in props:
            node = _resolve(props[part], root)
        elif isinstance(node.get("additionalProperties"), dict):
            node = _resolve(node["additionalProperties"], root)
        else:
            raise EdgesimError(f"{path}: the profile schema has no field {part!r} there")
    if node.get("type") == "array" or "items" in node:
        node = _resolve(node.get("items", {}), root)
    return node


def parameter(data: dict, path: str) -> Parameter:
    """One free parameter: its starting value and the bounds the schema gives it."""
    start = get_value(data, path)
    field = _schema_field(path)
    if field.get("type") not in ("number", "integer"):
        raise EdgesimError(f"{path}: not a numeric field of the profile schema")
    high = float(field.get("maximum", math.inf))
    if "exclusiveMaximum" in field:
        high = min(high, float(field["exclusiveMaximum"]) * (1 - 1e-9))
    if start <= 0:
        raise EdgesimError(
            f"{path}: starts at {start:g}; calibration fits positive numbers in log space, so give it a positive "
            "starting value (e.g. 1)"
        )
    low = max(float(field.get("minimum", 0.0)), float(field.get("exclusiveMinimum", 0.0)) * (1 + 1e-9))
    return Parameter(path, start, low, high, field.get("type") == "integer")
