"""Budgets: limits on an estimate's totals that a CI job can gate on (``--budget latency_ms=50,flash_bytes=1M``).

A budget names totals by their JSON field names. Byte sizes take a K, M or G suffix (also KB/KiB, MB/MiB,
GB/GiB, any case) and these are *binary*: 1K = 1024 bytes, 1M = 1024**2, as microcontroller datasheets quote
memory (a "512 KB" SRAM is 524,288 bytes, the figure the hardware profiles carry), so ``peak_ram_bytes=512K``
means exactly the profile's capacity. A value passes when it is at most its limit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.errors import EdgesimError

#: metric -> (what it is, unit). The names are the ``totals`` fields of ``edgesim estimate --format json``.
METRICS = {
    "latency_ms": ("latency", "ms"),
    "energy_uj": ("energy", "uJ"),
    "flash_bytes": ("flash", "B"),
    "peak_ram_bytes": ("peak RAM", "B"),
}
_SUFFIXES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
EXAMPLE = "latency_ms=50,flash_bytes=1M,peak_ram_bytes=320K,energy_uj=5000"


def parse_size(text: str) -> int:
    """Bytes from ``320K``, ``1.5M``, ``2G``, ``4096``, ``512KiB`` (binary multiples; fractions round up)."""
    match = _SIZE.match(text)
    if match is None or (match.group(2) == "" and text.strip().lower().endswith("ib")):
        raise ValueError(text)
    size = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    if not math.isfinite(size):  # 400 nines: float says inf, and ceil(inf) would raise OverflowError
        raise ValueError(text)
    return math.ceil(size)


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float
    limit: float

    def text(self, given: str = "") -> str:
        """``latency_ms 61.200 > 50``, ``peak_ram_bytes 400000 > 327680 (320K)``."""
        value = _number(self.metric, self.value)
        if not self.metric.endswith("_bytes"):
            return f"{self.metric} {value} > {self.limit:g}"
        shown = f" ({given})" if given and given != str(int(self.limit)) else ""
        return f"{self.metric} {value} > {int(self.limit)}{shown}"


def _number(metric: str, value: float) -> str:
    if metric.endswith("_bytes"):
        return str(int(value))
    return f"{value:.3f}" if metric == "latency_ms" else f"{value:.2f}"


@dataclass(frozen=True)
class Budget:
    limits: dict[str, float]  # in the order given
    given: dict[str, str]  # the text each limit was written as (``320K``)

    def check(self, totals: Mapping[str, float | int | None], what: str = "") -> list[Breach]:
        """The limits ``totals`` exceeds. A limit on a total the estimate does not have is bad input."""
        breaches = []
        for metric, limit in self.limits.items():
            value = totals.get(metric)
            if value is None:
                raise EdgesimError(
                    f"--budget {metric}: {what or 'this estimate'} has no {metric} "
                    "(an energy-only profile reports no latency); drop that limit"
                )
            if value > limit:
                breaches.append(Breach(metric, float(value), limit))
        return breaches

    def as_dict(self, breaches: Mapping[str, list[Breach]] | list[Breach]) -> dict:
        """JSON form: the limits, and what exceeds them (per plan when ``breaches`` is a mapping)."""
        if isinstance(breaches, Mapping):
            exceeded = [
                {"plan": name, "metric": b.metric, "value": b.value, "limit": b.limit}
                for name, items in breaches.items()
                for b in items
            ]
        else:
            exceeded = [{"metric": b.metric, "value": b.value, "limit": b.limit} for b in breaches]
        return {"limits": dict(self.limits), "exceeded": exceeded, "ok": not exceeded}

    def summary_line(self, breaches: Mapping[str, list[Breach]] | list[Breach]) -> str:
        """The one line printed when something is over budget (empty when nothing is)."""
        if isinstance(breaches, Mapping):
            parts = [
                f"{name}: " + ", ".join(b.text(self.given[b.metric]) for b in items)
                for name, items in breaches.items()
                if items
            ]
            return "; ".join(parts)
        return ", ".join(b.text(self.given[b.metric]) for b in breaches)


def parse_budget(specs: str | list[str] | None) -> Budget | None:
    """``latency_ms=50,flash_bytes=1M`` (several ``--budget`` flags join) -> a Budget; None when not given."""
    if specs is None:
        return None
    if isinstance(specs, str):
        specs = [specs]
    text = ",".join(specs)
    limits: dict[str, float] = {}
    given: dict[str, str] = {}
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise EdgesimError(f"--budget {text!r}: give METRIC=LIMIT pairs, e.g. {EXAMPLE}")
    for item in items:
        metric, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not metric or not value:
            raise EdgesimError(f"--budget {text!r}: {item!r} is not METRIC=LIMIT; e.g. {EXAMPLE}")
        if metric not in METRICS:
            raise EdgesimError(
                f"--budget {text!r}: unknown metric {metric!r}; budgets limit {', '.join(METRICS)} (e.g. {EXAMPLE})"
            )
        if metric in limits:
            raise EdgesimError(f"--budget {text!r}: {metric} is limited twice")
        try:
            limit = float(parse_size(value)) if metric.endswith("_bytes") else float(value)
        except ValueError:
            kind = "a size such as 320K, 1M or 65536 (K/M/G = 1024-based)" if metric.endswith("_bytes") else "a number"
            raise EdgesimError(f"--budget {text!r}: {metric}={value!r} is not {kind}") from None
        if not math.isfinite(limit) or limit <= 0:
            raise EdgesimError(f"--budget {text!r}: {metric}={value!r} must be a positive, finite limit")
        limits[metric] = limit
        given[metric] = value
    return Budget(limits, given)
