"""Quantization (graph -> new graph): weights and activations separately, any width from 2 to 16 bits plus
binary and ternary weights, symmetric or asymmetric, per tensor or per output channel.

Weights are fake-quantized in place (their values become the dequantized levels, so the float executor runs
what the integer kernel would compute) and carry their QuantParams. Activation ranges are calibrated by
running the float graph on calibration inputs (min/max, a percentile, or the MSE-optimal clipping) and stored
on the activation tensors; biases then get int32 quantization at scale s_in * s_w, as TFLite does (int64
beside activations wider than 8 bits, as its 16x8 scheme does).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, QuantParams
from simulator.ops import get_op
from simulator.passes.prune import weight_name, weight_slot

GRANULARITIES = ("per-tensor", "per-channel")
#: ops that only clamp, select or move values run in the integer domain of their input
PASSTHROUGH = (
    "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape",
    "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout", "Pad",
)  # fmt: skip
#: elementwise ops integer runtimes run on quantized operands (a residual Add): their outputs get a range too
INTEGER_ELEMENTWISE = ("Add", "Sub", "Mul")
#: of those, the ones whose output TFLite requires to share its input's scale and zero point
SHARES_INPUT_QUANT = (
    "MaxPool", "AveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose",
    "Identity", "Dropout", "Pad",
)  # fmt: skip
#: ops integer runtimes run with output parameters of their own (TFLite's HARD_SWISH and MEAN; the converter
#: turns a global average pool into MEAN, so GlobalAveragePool is calibrated too, through PASSTHROUGH)
CALIBRATED_OUTPUT = ("HardSwish", "ReduceMean")
#: ops whose output TFLite fixes whatever the data: the real range their integer grid spans
FIXED_OUTPUT_RANGE = {"Sigmoid": (0.0, 1.0)}
#: ops whose inputs TFLite's converter gives the output's scale and zero point (CONCATENATION): the output's
#: range covers every input, and each producer writes straight onto that shared grid
SHARES_OUTPUT_QUANT = ("Concat",)
CALIBRATIONS = ("minmax", "percentile", "mse")


def output_channel_axis(node: Node) -> int:
    """Axis of the layer's output channels in its weight tensor."""
    if node.op_type in ("Conv", "QLinearConv"):
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        return 0 if node.attr("transB", 0) else 1
    return 1  # MatMul: B is K x N


def _reduce(values: np.ndarray, axis: int | None, fn: Callable) -> np.ndarray:
    if axis is None:
        return np.asarray(fn(values))
    moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    return fn(moved, axis=1)


def affine_params(lo: np.ndarray, hi: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) mapping [lo, hi] onto signed ``bits``-bit integers.

    Symmetric uses the narrow range [-(2^(b-1) - 1), 2^(b-1) - 1] with zero point 0 (TFLite's weights);
    asymmetric the full range with the zero point chosen so that real 0 is exactly representable.
    """
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    qmax = (1 << (bits - 1)) - 1
    qmin = -(1 << (bits - 1))
    if symmetric:
        bound = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(bound > 0, bound / qmax, 1.0)
        return scale.astype(np.float32), np.zeros(scale.shape, np.int64)
    span = hi - lo
    scale = np.where(span > 0, span / (qmax - qmin), 1.0)
    zero_point = np.clip(np.rint(qmin - lo / scale), qmin, qmax).astype(np.int64)
    return scale.astype(np.float32), zero_point


def fake_quantize(values: np.ndarray, q: QuantParams) -> np.ndarray:
    """Round to the quantization grid and back (round half to even, saturating)."""
    scale, zp = q.broadcast(values.ndim)
    qmin = -q.qmax if q.symmetric and q.signed else q.qmin  # symmetric: the narrow range, as TFLite weights
    levels = np.clip(np.rint(values / scale) + zp, qmin, q.qmax)
    return ((levels - zp) * scale).astype(values.dtype)


def _binary(values: np.ndarray, axis: int | None) -> tuple[np.ndarray, QuantParams]:
    """sign(w) * mean|w| (BinaryConnect / XNOR-Net scaling), one scale per channel or tensor."""
    alpha = _reduce(np.abs(values), axis, np.mean)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    a = np.asarray(alpha).reshape(shape) if axis is not None else alpha
    q = QuantParams(1, np.asarray(alpha, np.float32), np.zeros(np.shape(alpha), np.int64), True, axis)
    return (np.where(values >= 0, 1.0, -1.0) * a).astype(values.dtype), q


def _ternary(values: np.ndarray, axis: int | None) -> tuple[np.ndarray, QuantParams]:
    """Ternary weight networks (Li & Liu 2016): threshold 0.7 * mean|w|, level = mean of |w| above it."""
    absolute = np.abs(values)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    delta = _reduce(absolute, axis, np.mean) * 0.7
    d = np.asarray(delta).reshape(shape) if axis is not None else delta
    above = absolute > d
    total = _reduce(np.where(above, absolute, 0.0), axis, np.sum)
    count = _reduce(above.astype(np.float64), axis, np.sum)
    alpha = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    a = np.asarray(alpha).reshape(shape) if axis is not None else alpha
    q = QuantParams(2, np.asarray(alpha, np.float32), np.zeros(np.shape(alpha), np.int64), True, axis)
    return (np.sign(values) * above * a).astype(values.dtype), q


def quantize_weights(
    graph: Graph,
    layers: list[Node],
    bits: int | str,
    symmetric: bool = True,
    granularity: str = "per-channel",
) -> Graph:
    """Quantize the selected layers' weights; ``bits`` is 2..16, 'binary' or 'ternary'."""
    if granularity not in GRANULARITIES:
        raise EdgesimError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    if bits not in ("binary", "ternary") and not (isinstance(bits, int) and 2 <= bits <= 16):
        raise EdgesimError(f"weight bits must be an integer from 2 to 16, 'binary' or 'ternary', got {bits!r}")
    tensors = dict(graph.tensors)
    for node in layers:
        name = weight_name(graph, node)
        t = graph.tensors[name]
        values = np.asarray(t.data, dtype=np.float32)
        axis = output_channel_axis(node) if granularity == "per-channel" else None
        if bits == "binary":
            new, q = _binary(values, axis)
        elif bits == "ternary":
            new, q = _ternary(values, axis)
        else:
            lo = _reduce(values, axis, np.min)
            hi = _reduce(values, axis, np.max)
            scale, zero_point = affine_params(lo, hi, bits, symmetric)
            q = QuantParams(bits, scale, zero_point, symmetric, axis)
            new = fake_quantize(values, q)
        if t.mask is not None:
            new = np.where(t.mask, new, 0).astype(new.dtype)
        tensors[name] = t.with_values(new, quant=q)
    return graph.replace(tensors=tensors)


# -- activations -------------------------------------------------------------------------------------------


def _mse_range(samples: np.ndarray, bits: int, symmetric: bool) -> tuple[float, float]:
    """The clipping range (a fraction of min/max, searched on a grid) with the least quantization MSE."""
    lo, hi = float(samples.min()), float(samples.max())
    best, best_err = (lo, hi), np.inf
    for fraction in np.linspace(0.3, 1.0, 36):
        a, b = lo * fraction, hi * fraction
        scale, zp = affine_params(np.array(a), np.array(b), bits, symmetric)
        q = QuantParams(bits, scale, zp, symmetric, None)
        err = float(np.mean((fake_quantize(samples, q) - samples) ** 2))
        if err < best_err:
            best, best_err = (a, b), err
    return best


def activation_range(
    samples: np.ndarray, bits: int, symmetric: bool, method: str, percentile: float
) -> tuple[float, float]:
    samples = np.asarray(samples, np.float64).reshape(-1)
    if method == "minmax":
        return float(samples.min()), float(samples.max())
    if method == "percentile":
        return float(np.percentile(samples, 100 - percentile)), float(np.percentile(samples, percentile))
    if method == "mse":
        return _mse_range(samples, bits, symmetric)
    raise EdgesimError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {method!r}")


def _tied_groups(names: list[str], ties: list[list[str]]) -> list[list[str]]:
    """``names`` partitioned so that the tensors of each tie (and, transitively, of overlapping ties) share a
    group; groups and their members keep the order of ``names``."""
    parent = {name: name for name in names}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for tie in ties:
        for other in tie[1:]:
            parent[root(other)] = root(tie[0])
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def fixed_output_params(lo: float, hi: float, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) TFLite fixes for an output whose real range is [lo, hi] = [0, 1] (logistic, softmax):
    2^-bits with the zero point at the bottom of the range (int8: 1/256, -128), or 2^-(bits - 1) with zero point
    0 for symmetric grids (int16: 1/32768, 0)."""
    if (lo, hi) != (0.0, 1.0):
        raise EdgesimError(f"no fixed output parameters for the range [{lo}, {hi}]")
    if symmetric:
        return np.array(2.0 ** -(bits - 1), np.float32), np.array(0, np.int64)
    return np.array(2.0**-bits, np.float32), np.array(-(1 << (bits - 1)), np.int64)


def _group_quant(
    graph: Graph,
    group: list[str],
    ranges: dict[str, tuple[float, float]],
    fixed: dict[str, tuple[float, float]],
    bits: int,
    symmetric: bool,
) -> dict:
    """One parameter set for a group of tied tensors: a fixed one when a member has it (it cannot move),
    otherwise the grid of the union of the members' calibrated ranges."""
    pinned = [name for name in group if name in fixed]
    if pinned:
        scale, zp = fixed_output_params(*fixed[pinned[0]], bits, symmetric)
    else:
        known = [ranges[name] for name in group if name in ranges]
        lo, hi = min(r[0] for r in known), max(r[1] for r in known)
        scale, zp = affine_params(np.array(lo), np.array(hi), bits, symmetric)
    q = QuantParams(bits, scale, zp, symmetric, None)
    return {name: graph.copy_tensor(name, quant=q) for name in group}


def bias_bits(activation_bits: int) -> int:
    """Bias width at a layer's input activation width: int32 beside int8 activations, int64 beside wider ones
    (TFLite's 16x8 scheme: int16 x int8 products summed over a layer outgrow int32)."""
    return 32 if activation_bits <= 8 else 64


def quantize_activations(
    graph: Graph,
    layers: list[Node],
    bits: int,
    symmetric: bool,
    method: str,
    calibration: list[dict[str, np.ndarray]],
    percentile: float = 99.99,
) -> Graph:
    """Calibrate the inputs and outputs of the selected layers on ``calibration`` feeds and record their
    quantization; biases of those layers become int32 at scale s_in * s_w (int64 for wider activations)."""
    from simulator.fidelity import run_samples

    if not 2 <= bits <= 16:
        raise EdgesimError(f"activation bits must be from 2 to 16, got {bits}")
    if method not in CALIBRATIONS:
        raise EdgesimError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {method!r}")
    if not 50 < percentile <= 100:
        raise EdgesimError(f"percentile must be in (50, 100], got {percentile}")
    wanted: list[str] = []
    for node in layers:
        for name in [*node.inputs, *node.outputs]:
            if name and not graph.tensors[name].constant and name not in wanted:
                wanted.append(name)
    # ops that only clamp, select or move values (a fused activation, pooling, reshapes) run in the integer
    # domain of their input: their outputs are quantized too, calibrated (a clamp) or sharing the input's
    # parameters (pooling and reshapes, as TFLite requires)
    shared: dict[str, str] = {}
    ties: list[list[str]] = []  # tensors that must share one parameter set (concatenations)
    fixed: dict[str, tuple[float, float]] = {}
    for node in graph.order:
        if node.op_type in SHARES_OUTPUT_QUANT:
            members = [n for n in (*node.inputs, *node.outputs[:1]) if n and not graph.tensors[n].constant]
            if any(n in wanted for n in members):
                ties.append(members)
                wanted.extend(n for n in members if n not in wanted)
            continue
        if node.op_type in FIXED_OUTPUT_RANGE and (node.inputs[0] in wanted or node.outputs[0] in wanted):
            fixed[node.outputs[0]] = FIXED_OUTPUT_RANGE[node.op_type]
        if not node.inputs or node.inputs[0] not in wanted:
            continue
        if node.op_type in SHARES_INPUT_QUANT:
            # even when the output also feeds a selected layer: TFLite ties it to the input's parameters
            shared[node.outputs[0]] = shared.get(node.inputs[0], node.inputs[0])
            if node.outputs[0] not in wanted:
                wanted.append(node.outputs[0])
        elif (
            node.op_type in PASSTHROUGH or node.op_type in INTEGER_ELEMENTWISE or node.op_type in CALIBRATED_OUTPUT
            or node.op_type in FIXED_OUTPUT_RANGE
        ) and node.outputs[0] not in wanted:  # fmt: skip
            wanted.append(node.outputs[0])
    calibrated = [name for name in wanted if name not in shared and name not in fixed]
    values = run_samples(graph, calibration, keep=True)
    ranges = {
        name: activation_range(np.asarray(values[name]).reshape(-1), bits, symmetric, method, percentile)
        for name in calibrated
    }
    ranges.update(fixed)
    tensors = dict(graph.tensors)
    for group in _tied_groups(wanted, [[out, source] for out, source in shared.items()] + ties):
        tensors.update(_group_quant(graph, group, ranges, fixed, bits, symmetric))
    for node in layers:
        op = get_op(node.op_type)
        x = tensors[node.inputs[0]]
        slot = weight_slot(graph, node)
        if op is None or slot is None or x.quant is None:
            continue
        w = tensors[node.inputs[slot]]
        if w.quant is None:
            continue
        for b in op.bias_inputs:
            if b < len(node.inputs) and node.inputs[b]:
                bias = tensors[node.inputs[b]]
                scale = (np.asarray(x.quant.scale, np.float64) * np.asarray(w.quant.scale, np.float64)).astype(
                    np.float32
                )
                q = QuantParams(
                    bias_bits(x.quant.bits), scale, np.zeros(scale.shape, np.int64), True, 0 if scale.ndim else None
                )
                tensors[bias.name] = bias.with_values(fake_quantize(np.asarray(bias.data, np.float32), q), quant=q)
    return graph.replace(tensors=tensors)
