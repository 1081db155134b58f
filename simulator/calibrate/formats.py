"""Per-layer timings in the formats deployment tools print, read into one shape: rows of (name, op type, ms).

- TFLite Micro's ``MicroProfiler``: ``Log()`` ("CONV_2D took 123 ticks (0 ms)."), ``LogCsv()``
  ("Event","Tag","Ticks") and ``LogTicksPerTagCsv()`` ("Unique Tag", ... one row per op type). Tags are
  op names, in execution order; ticks become milliseconds at ``ticks_per_second``.
- X-CUBE-AI / ST Edge AI validation report (``network_validate_report.txt``): the "Inference time per node"
  table (c_id, m_id, type, dur (ms), %, cumul, CPU cycles, name).
- ``trtexec --dumpProfile --exportProfile=FILE``: a JSON list, ``[{"count": N}, {"name", "averageMs", ...}]``;
  fused layers are named "a + b". The table ``--dumpProfile`` prints to the console reads as well.
- TFLite ``benchmark_model --enable_op_profiling=true``: the "Run Order" table of the regular benchmark runs
  ([node type], [first], [avg ms], ..., [Name]).

Each parser takes the file's text and raises EdgesimError (without the file name; the caller adds it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from simulator.errors import EdgesimError


@dataclass(frozen=True)
class LayerTiming:
    name: str  # the tool's layer name ('' when it prints none)
    op_type: str  # the tool's op type ('' when it prints none)
    ms: float


@dataclass(frozen=True)
class LayerProfile:
    """One inference, layer by layer, as a tool printed it."""

    format: str
    rows: tuple[LayerTiming, ...]
    by_type: bool = False  # rows are totals per op type (LogTicksPerTagCsv), not layers

    @property
    def total_ms(self) -> float:
        return sum(row.ms for row in self.rows)


_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?%?$")

# -- TFLite Micro MicroProfiler ------------------------------------------------------------------------------

_TOOK = re.compile(r"(\S+) took (\d+) (?:ticks|cycles)\b")  # older TFLM printed "cycles", newer "(N ms)." too
_CSV_EVENT = re.compile(r"^\s*\d+\s*,\s*([^,]+?)\s*,\s*(\d+)\s*(?:,.*)?$")
_CSV_TAG = re.compile(r'^\s*"?([^",]+?)"?\s*,\s*(\d+)\s*$')


def _ms(ticks: int, ticks_per_second: float | None) -> float:
    if not ticks_per_second:
        raise EdgesimError("MicroProfiler counts ticks; give --ticks-per-second (the rate of the tick counter)")
    return ticks / ticks_per_second * 1e3


def parse_micro_profiler(text: str, ticks_per_second: float | None) -> LayerProfile:
    lines = text.splitlines()
    took = [m for m in map(_TOOK.search, lines) if m]
    if took:
        rows = tuple(LayerTiming("", m.group(1), _ms(int(m.group(2)), ticks_per_second)) for m in took)
        return LayerProfile("tflm-micro-profiler", rows)
    header = next((i for i, line in enumerate(lines) if '"Unique Tag"' in line or '"Tag"' in line), None)
    if header is None:
        raise EdgesimError("no MicroProfiler output in it (expected 'X took N ticks' lines or a CSV log)")
    by_type = '"Unique Tag"' in lines[header]
    rows = []
    for line in lines[header + 1 :]:
        if "total number of ticks" in line.lower():
            break
        m = (_CSV_TAG if by_type else _CSV_EVENT).match(line)
        if m is None:
            if rows:
                break
            continue
        rows.append(LayerTiming("", m.group(1).strip(), _ms(int(m.group(2)), ticks_per_second)))
    if not rows:
        raise EdgesimError("the MicroProfiler CSV log has no rows under its header")
    return LayerProfile("tflm-micro-profiler", tuple(rows), by_type)


# -- X-CUBE-AI validation report -------------------------------------------------------------------------

_XCUBE_ROW = re.compile(r"^\s*\d+\s+(?:\d+|n/a|-)\s+(?P<rest>.+)$")
_XCUBE_TIME = re.compile(r"(?P<ms>\d+(?:\.\d+)?)\s+\d+(?:\.\d+)?\s*%")


def _xcube_row(line: str) -> LayerTiming | None:
    """c_id, m_id, the type (with its hex code and, in older reports, the output shape), the time in ms
    followed by its share in %, then optional cumul %, [CPU cycles] and the node name."""
    m = _XCUBE_ROW.match(line)
    t = _XCUBE_TIME.search(m.group("rest")) if m else None
    if t is None:
        return None
    rest = m.group("rest")
    op_type = re.sub(r"\(0x[0-9a-fA-F]+\)|\([\d, ]*\)", " ", rest[: t.start()]).split()
    tail = re.sub(r"\[[^\]]*\]", " ", rest[t.end() :]).split()
    names = [w for w in tail if not _NUMBER.match(w.replace(",", ""))]
    return LayerTiming(names[-1] if names else "", op_type[0] if op_type else "", float(t.group("ms")))


def parse_xcube_report(text: str) -> LayerProfile:
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if "c_id" in line and "m_id" in line), None)
    if header is None:
        raise EdgesimError("no 'Inference time per node' table (c_id, m_id, type, dur (ms), ...) in it")
    rows = []
    for line in lines[header + 1 :]:
        stripped = line.strip()
        if not stripped or set(stripped) <= set("-= "):
            if rows and not stripped:
                break
            continue
        row = _xcube_row(line)
        if row is None:
            break  # Inter-nodes / total rows end the per-node part
        rows.append(row)
    if not rows:
        raise EdgesimError("the 'Inference time per node' table has no rows")
    return LayerProfile("x-cube-ai", tuple(rows))


# -- trtexec --exportProfile ----------------------------------------------------------------------------


def parse_trtexec_profile(text: str) -> LayerProfile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EdgesimError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise EdgesimError('a trtexec profile is a JSON list: [{"count": N}, {"name": ..., "averageMs": ...}]')
    rows = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or ("count" in item and "name" not in item):
            continue
        try:
            ms = float(item["averageMs"]) if "averageMs" in item else float(item["timeMs"]) / float(data[0]["count"])
            rows.append(LayerTiming(str(item["name"]), "", ms))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise EdgesimError(f"entry {i}: expected a name and averageMs") from None
    if not rows:
        raise EdgesimError("the trtexec profile lists no layers")
    return LayerProfile("trtexec", tuple(rows))


_TRT_HEADER = re.compile(r"Avg\.?\s*(?:Time)?\s*\(ms\)")


def parse_trtexec_log(text: str) -> LayerProfile:
    """trtexec --dumpProfile printed to the console: a "Layer, Time (ms), Avg. Time (ms), Time %" table (older
    releases, name first) or "Time(ms), Avg.(ms), Median(ms), Time(%), Layer" (newer, name last)."""
    lines = [re.sub(r"^\[[^\]]*\]\s*(?:\[I\]\s*)?", "", line) for line in text.splitlines()]
    header = next((i for i, line in enumerate(lines) if "Layer" in line and _TRT_HEADER.search(line)), None)
    if header is None:
        raise EdgesimError("no per-layer profile table (Layer ... Avg. Time (ms) ...) in it")
    columns = re.split(r"\s{2,}", lines[header].strip())
    name_last = columns[-1] == "Layer"
    titles = [c for c in columns if c != "Layer"]
    avg = next(i for i, t in enumerate(titles) if t.startswith("Avg"))
    rows = []
    for line in lines[header + 1 :]:
        tokens = line.split()
        if not tokens:
            if rows:
                break
            continue
        nums = tokens[: len(titles)] if name_last else tokens[-len(titles) :]
        name = " ".join(tokens[len(titles) :] if name_last else tokens[: -len(titles)])
        if len(nums) < len(titles) or not all(_NUMBER.match(n) for n in nums):
            if rows:
                break
            continue
        if name.strip().lower() == "total":
            break
        rows.append(LayerTiming(name, "", float(nums[avg].rstrip("%"))))
    if not rows:
        raise EdgesimError("the trtexec profile table has no rows")
    return LayerProfile("trtexec", tuple(rows))


# -- TFLite benchmark_model --enable_op_profiling -------------------------------------------------------------

_BRACKETS = re.compile(r"\[([^\]]+)\]")


def _run_order_rows(lines: list[str], start: int) -> list[LayerTiming]:
    header = next((i for i in range(start, len(lines)) if "[node type]" in lines[i] and "[avg ms]" in lines[i]), None)
    if header is None:
        return []
    columns = [c.strip().lower() for c in _BRACKETS.findall(lines[header])]
    numeric = columns[1:-1]  # between [node type] and [Name]
    avg = numeric.index("avg ms")
    rows = []
    for line in lines[header + 1 :]:
        text = line.split("]", 1)[1] if line.lstrip().startswith("INFO: [") else line
        if not text.strip() or text.strip().startswith("="):
            break
        cells = [c for c in re.split(r"\t+", text.strip()) if c.strip()] if "\t" in text else None
        if cells is None or len(cells) != len(columns):
            tokens = text.split()
            nums = [i for i, t in enumerate(tokens) if _NUMBER.match(t)]
            first = next((i for i in nums if all(j in nums for j in range(i, i + len(numeric)))), None)
            if first is None:
                break
            last = first + len(numeric)
            cells = [" ".join(tokens[:first]), *tokens[first:last], " ".join(tokens[last:])]
        try:
            ms = float(cells[1 + avg].rstrip("%"))
        except (ValueError, IndexError):
            break
        rows.append(LayerTiming(cells[-1].strip(), cells[0].strip(), ms))
    return rows


def parse_benchmark_model(text: str) -> LayerProfile:
    lines = text.splitlines()
    regular = next((i for i, line in enumerate(lines) if "Profiling Info for Regular Benchmark Runs" in line), None)
    if regular is None:
        # without the section title, take the last Run Order table (the first may be the initialization's)
        starts = [i for i, line in enumerate(lines) if "Run Order" in line]
        regular = starts[-1] if starts else 0
    rows = _run_order_rows(lines, regular)
    if not rows:
        raise EdgesimError("no op-profiling 'Run Order' table ([node type] ... [avg ms] ... [Name]) in it")
    return LayerProfile("tflite-benchmark-model", tuple(rows))


# -- detection ------------------------------------------------------------------------------------------------

FORMATS = ("tflm-micro-profiler", "x-cube-ai", "trtexec", "trtexec-log", "tflite-benchmark-model")


def detect_format(text: str) -> str | None:
    if text.lstrip().startswith("[") and ('"averageMs"' in text or '"timeMs"' in text):
        return "trtexec"
    if "[node type]" in text and "[avg ms]" in text:
        return "tflite-benchmark-model"
    if re.search(r"Layer.*" + _TRT_HEADER.pattern + r"|" + _TRT_HEADER.pattern + r".*Layer", text):
        return "trtexec-log"
    if "c_id" in text and "m_id" in text:
        return "x-cube-ai"
    if _TOOK.search(text) or '"Unique Tag"' in text or '"Event","Tag","Ticks"' in text.replace(" ", ""):
        return "tflm-micro-profiler"
    return None


def parse_layer_profile(text: str, ticks_per_second: float | None = None) -> LayerProfile:
    """Any of the supported formats, recognised by its content."""
    kind = detect_format(text)
    if kind is None:
        raise EdgesimError(
            "not a per-layer profile edgesim reads (MicroProfiler log, X-CUBE-AI validation report, trtexec "
            "--exportProfile JSON, benchmark_model --enable_op_profiling output); see docs/calibration.md"
        )
    if kind == "tflm-micro-profiler":
        return parse_micro_profiler(text, ticks_per_second)
    if kind == "x-cube-ai":
        return parse_xcube_report(text)
    if kind == "trtexec":
        return parse_trtexec_profile(text)
    if kind == "trtexec-log":
        return parse_trtexec_log(text)
    return parse_benchmark_model(text)
