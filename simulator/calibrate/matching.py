"""Which of edgesim's layers each row of a tool's per-layer profile timed.

By name first: a row whose name (or a part of a fused name, "conv1 + relu1", "PWN(...)", "name:3") is a layer
of the deployed graph times that layer; when most rows match so, the rest (reformatting copies, delegate
partitions) are left out. Otherwise by order and op type: the rows and the layers are aligned as the longest
common subsequence of compatible op types, as runtimes run layers in graph order (TFLM tags events with the
op name only). A per-type log (LogTicksPerTagCsv) is matched by op type alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from simulator.calibrate.formats import LayerProfile, LayerTiming

#: a tool's op type (lower case, letters and digits only) -> the edgesim op classes it can be, and the
#: edgesim op types it can be (None: any op of those classes)
_TYPES: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {}


def _add(names: str, classes: str, op_types: str | None = None) -> None:
    for name in names.split():
        _TYPES[name] = (frozenset(classes.split()), frozenset(op_types.split()) if op_types else None)


_add("conv2d conv convolution conv2dpool optimizedconv2d", "conv depthwise")
_add("depthwiseconv2d dwconv2d depthwiseconv", "depthwise")
_add("transposeconv transposeconv2d deconv2d convtranspose", "conv", "ConvTranspose")
_add("fullyconnected dense gemm matmul batchmatmul innerproduct", "matmul")
_add("maxpool2d maxpool", "pooling", "MaxPool GlobalMaxPool")
_add("averagepool2d avgpool2d averagepool avgpool", "pooling", "AveragePool GlobalAveragePool")
_add("mean reducemean globalaveragepool", "pooling", "GlobalAveragePool ReduceMean AveragePool")
_add("pool pooling", "pooling")
_add("add", "elementwise", "Add")
_add("sub", "elementwise", "Sub")
_add("mul", "elementwise", "Mul")
_add("eltwise elementwise", "elementwise")
_add("relu relu6 logistic sigmoid tanh hardswish leakyrelu prelu nl softmax", "activation")
_add("reshape squeeze expanddims flatten", "data_movement", "Reshape Flatten Squeeze Unsqueeze")
_add("pad padv2 mirrorpad", "data_movement", "Pad")
_add("concatenation concat", "data_movement", "Concat")
_add("transpose", "data_movement", "Transpose")
_add("stridedslice slice gather split", "data_movement")
_add("quantize dequantize requantize", "quantization")


#: spellings whose meaning the normalised key loses: TFLite's CONV_2D is never depthwise (that is
#: DEPTHWISE_CONV_2D), while X-CUBE-AI's Conv2D is either
_EXACT = {"CONV_2D": (frozenset({"conv"}), frozenset({"Conv"}))}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def compatible(tool_type: str, op_type: str, op_class: str) -> bool:
    """Whether a tool's op type can be the edgesim layer (op type, op class)."""
    key = _norm(tool_type)
    if key == _norm(op_type):
        return True
    known = _EXACT.get(tool_type.strip()) or _TYPES.get(key)
    if known is None:
        return False
    classes, op_types = known
    return op_class in classes and (op_types is None or op_type in op_types)


def _name_parts(name: str) -> list[str]:
    parts = [name]
    for piece in re.split(r"\s\+\s|[()\[\]]|,\s*", name):
        piece = piece.strip()
        if piece:
            parts += [piece, re.sub(r":\d+$", "", piece)]
    return parts


Layer = tuple[str, str, str]  # (name, op type, op class) of one layer of the deployed graph


def match_by_name(rows: Sequence[LayerTiming], layers: Sequence[Layer]) -> list[tuple[LayerTiming, tuple[int, ...]]]:
    index = {name: i for i, (name, _, _) in enumerate(layers)}
    out, claimed = [], set()
    for row in rows:
        hit = sorted({index[p] for p in _name_parts(row.name) if p in index} - claimed)
        if hit:
            claimed |= set(hit)
            out.append((row, tuple(hit)))
    return out


def match_by_order(rows: Sequence[LayerTiming], layers: Sequence[Layer]) -> list[tuple[LayerTiming, tuple[int, ...]]]:
    """Longest common subsequence of compatible (row type, layer) pairs."""
    n, m = len(rows), len(layers)
    ok = [[compatible(r.op_type, op, cls) for _, op, cls in layers] for r in rows]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + 1 if ok[i][j] else 0)
    out, i, j = [], 0, 0
    while i < n and j < m:
        if ok[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            out.append((rows[i], (j,)))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def match_by_type(rows: Sequence[LayerTiming], layers: Sequence[Layer]) -> list[tuple[LayerTiming, tuple[int, ...]]]:
    out, claimed = [], set()
    for row in rows:
        hit = tuple(i for i, (_, op, cls) in enumerate(layers) if i not in claimed and compatible(row.op_type, op, cls))
        if hit:
            claimed |= set(hit)
            out.append((row, hit))
    return out


def match(profile: LayerProfile, layers: Sequence[Layer]) -> tuple[list[tuple[LayerTiming, tuple[int, ...]]], str]:
    """(row, layer indices) pairs, and how they were matched ('name', 'order' or 'type')."""
    if profile.by_type:
        return match_by_type(profile.rows, layers), "type"
    named = match_by_name(profile.rows, layers)
    if named and 2 * len(named) >= len(profile.rows):
        return named, "name"
    return match_by_order(profile.rows, layers), "order"
