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

from simulator.arrays import load_arrays
from simulator.errors import EdgesimError
from simulator.execute.float_exec import run_graph
from simulator.graph import Graph
from simulator.limits import check_tensors
from simulator.passes.quantize import fake_quantize


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
    data = load_arrays(Path(path), "data set", finite=True)
    if not isinstance(data, dict) or "x" not in data or "y" not in data:
        raise EdgesimError(f"{path}: the data set needs arrays x and y (an .npz)")
    x, y = np.asarray(data["x"], np.float32), np.asarray(data["y"])
    name = graph.inputs[0]
    shape = graph.tensors[name].shape
    per_sample = math.prod(shape[1:])
    if x.size != len(x) * per_sample or len(x) != len(y):
        raise EdgesimError(f"{path}: x {x.shape} / y {y.shape} do not fit the input {shape}")
    feeds = [{name: x[i].reshape(1, *shape[1:])} for i in range(len(x))]
    return DataSet(feeds, y)


def random_inputs(graph: Graph, samples: int, seed: int = 0) -> DataSet:
    check_tensors([graph.tensors[name] for name in graph.inputs], "seeded input")
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


def measure(reference: Graph, compressed: Graph, data: DataSet, per_layer: bool = False) -> Fidelity:
    """Run both graphs on ``data``; SQNR of the first output over all samples, and per layer for tensors
    both graphs have with the same shape (channel pruning changes some)."""
    rounding = activation_rounding(compressed)
    out_name = reference.outputs[0]
    ref_out, test_out = [], []
    layer_ref: dict[str, list[np.ndarray]] = {}
    layer_test: dict[str, list[np.ndarray]] = {}
    for feeds in data.feeds:
        a = run_graph(reference, feeds, keep=per_layer)
        b = run_graph(compressed, feeds, keep=per_layer, transform=rounding)
        ref_out.append(np.asarray(a[out_name]))
        test_out.append(np.asarray(b[compressed.outputs[0]]))
        if per_layer:
            for name, value in a.items():
                if name in b and np.shape(b[name]) == np.shape(value) and name not in reference.inputs:
                    layer_ref.setdefault(name, []).append(np.asarray(value).reshape(-1))
                    layer_test.setdefault(name, []).append(np.asarray(b[name]).reshape(-1))
    ref = np.stack(ref_out)
    test = np.stack(test_out)
    agreement = float(np.mean(_top1(ref) == _top1(test)))
    accuracy = reference_accuracy = None
    if data.labels is not None:
        accuracy = float(np.mean(_top1(test) == data.labels))
        reference_accuracy = float(np.mean(_top1(ref) == data.labels))
    layers = {name: sqnr_db(np.concatenate(layer_ref[name]), np.concatenate(layer_test[name])) for name in layer_ref}
    return Fidelity(sqnr_db(ref, test), agreement, accuracy, reference_accuracy, layers)
