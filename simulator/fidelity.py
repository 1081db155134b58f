"""How much a compressed model still computes what the original does: output and per-layer SQNR, top-1
agreement, and real accuracy where the model ships a held-out data set.

Both models run through the float executor on the same inputs; the compressed one with its weights as the
passes left them (pruned, shared, fake-quantized) and its quantized activations rounded to their grid as they
are produced, which is what an integer kernel would see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.errors import EdgesimError
from simulator.execute.float_exec import run_graph
from simulator.graph import Graph
from simulator.ops.registry import reductions_in
from simulator.passes.quantize import fake_quantize
from simulator.passes.rebatch import with_batch


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB; infinite when the two are identical."""
    reference = np.asarray(reference, np.float64)
    noise = float(np.sum((reference - np.asarray(test, np.float64)) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def activation_rounding(graph: Graph) -> Callable[[str, np.ndarray], np.ndarray] | None:
    """Rounds every quantized activation to its grid as it is produced (None when nothing is quantized)."""
    quantized = {name: t.quant for name, t in graph.tensors.items() if not t.constant and t.quant is not None}
    if not quantized:
        return None

    def transform(name: str, value: np.ndarray) -> np.ndarray:
        q = quantized.get(name)
        return value if q is None else fake_quantize(np.asarray(value, np.float32), q)

    return transform


@dataclass(frozen=True)
class DataSet:
    feeds: list[dict[str, np.ndarray]]
    labels: np.ndarray | None = None


def load_dataset(graph: Graph) -> DataSet | None:
    """The model's held-out set (``metadata['dataset']``: an .npz with ``x`` samples and ``y`` labels)."""
    path = graph.metadata.get("dataset")
    if not path:
        return None
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            x, y = np.asarray(data["x"], np.float32), np.asarray(data["y"])
    except (OSError, KeyError, ValueError) as exc:
        raise EdgesimError(f"{path}: cannot read the data set ({exc}); it needs arrays x and y") from None
    name = graph.inputs[0]
    shape = graph.tensors[name].shape
    per_sample = math.prod(shape[1:])
    if x.size != len(x) * per_sample or len(x) != len(y):
        raise EdgesimError(f"{path}: x {x.shape} / y {y.shape} do not fit the input {shape}")
    feeds = [{name: x[i].reshape(1, *shape[1:])} for i in range(len(x))]
    return DataSet(feeds, y)


def random_inputs(graph: Graph, samples: int, seed: int = 0) -> DataSet:
    rng = np.random.default_rng(seed)
    feeds = [
        {name: rng.standard_normal(graph.tensors[name].shape).astype(np.float32) for name in graph.inputs}
        for _ in range(samples)
    ]
    return DataSet(feeds)


@dataclass(frozen=True)
class Fidelity:
    output_sqnr_db: float
    top1_agreement: float
    accuracy: float | None
    reference_accuracy: float | None
    layer_sqnr_db: dict[str, float] = field(default_factory=dict)


def _top1(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).reshape(len(values), -1).argmax(axis=1)


#: activation bytes one batched run may hold (every tensor kept, float64): larger sets run in several chunks
BATCH_BYTES = 256 << 20


def run_samples(
    graph: Graph,
    feeds: list[dict[str, np.ndarray]],
    keep: bool = False,
    transform: Callable[[str, np.ndarray], np.ndarray] | None = None,
    reduction=np.float32,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on every sample of ``feeds`` and stack each returned tensor's results on axis 0, as
    ``len(feeds)`` single runs would give them. Samples run batched where the graph's shapes allow it
    (simulator.passes.rebatch), in chunks of at most :data:`BATCH_BYTES` of activations. Conv and matmul
    reduce in ``reduction``: float32 by default, as the float runtimes a model is trained and calibrated with
    do (statistics over many samples do not need the float64 reference's last bits)."""
    if not feeds:
        return {}
    per_sample = sum(8 * t.size for t in graph.tensors.values() if not t.constant and t.shape is not None)
    chunk = int(max(1, min(len(feeds), BATCH_BYTES // max(per_sample, 1))))
    graphs: dict[int, Graph | None] = {}
    parts: dict[str, list[np.ndarray]] = {}
    start = 0
    while start < len(feeds):
        size = min(chunk, len(feeds) - start)
        if size not in graphs:
            graphs[size] = with_batch(graph, size)
        batched = graphs[size]
        if batched is None:
            size, batched = 1, graph
        group = feeds[start : start + size]
        joined = {name: np.concatenate([f[name] for f in group]) for name in graph.inputs} if size > 1 else group[0]
        with reductions_in(reduction):
            results = run_graph(batched, joined, keep=keep, transform=transform)
        for name, value in results.items():
            parts.setdefault(name, []).append(np.asarray(value))
        start += size
    return {name: np.concatenate(values) if len(values) > 1 else values[0] for name, values in parts.items()}


@dataclass(frozen=True)
class ReferenceRun:
    """The original model's results on a data set, computed once and compared with every compressed graph."""

    data: DataSet
    per_layer: bool
    values: dict[str, np.ndarray]


def reference_run(reference: Graph, data: DataSet, per_layer: bool = False) -> ReferenceRun:
    values = run_samples(reference, data.feeds, keep=per_layer)
    if per_layer:
        values = {k: v for k, v in values.items() if k not in reference.inputs}
    return ReferenceRun(data, per_layer, values)


def measure(
    reference: Graph,
    compressed: Graph,
    data: DataSet,
    per_layer: bool = False,
    ref: ReferenceRun | None = None,
) -> Fidelity:
    """Run both graphs on ``data`` (the reference's results may be given, computed once by
    :func:`reference_run`); SQNR of the first output over all samples, and per layer for tensors both graphs
    have with the same shape (channel pruning changes some)."""
    if ref is None or ref.data is not data or (per_layer and not ref.per_layer):
        ref = reference_run(reference, data, per_layer)
    a = ref.values
    b = run_samples(compressed, data.feeds, keep=per_layer, transform=activation_rounding(compressed))
    ref_out = a[reference.outputs[0]]
    test_out = b[compressed.outputs[0]]
    agreement = float(np.mean(_top1(ref_out) == _top1(test_out)))
    accuracy = reference_accuracy = None
    if data.labels is not None:
        accuracy = float(np.mean(_top1(test_out) == data.labels))
        reference_accuracy = float(np.mean(_top1(ref_out) == data.labels))
    layers = {}
    if per_layer:
        layers = {
            name: sqnr_db(value, b[name])
            for name, value in a.items()
            if name in b and np.shape(b[name]) == np.shape(value)
        }
    return Fidelity(sqnr_db(ref_out, test_out), agreement, accuracy, reference_accuracy, layers)


def self_fidelity(reference: Graph, ref: ReferenceRun) -> Fidelity:
    """The fidelity of the reference to itself (identical everywhere), from its results alone."""
    out = ref.values[reference.outputs[0]]
    accuracy = None if ref.data.labels is None else float(np.mean(_top1(out) == ref.data.labels))
    layers = {name: math.inf for name in ref.values} if ref.per_layer else {}
    return Fidelity(math.inf, 1.0, accuracy, accuracy, layers)
