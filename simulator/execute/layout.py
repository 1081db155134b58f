"""The model file's own tensor layout at the boundary of a run.

edgesim computes in ONNX's NCHW whatever the file said; a .tflite model's tensors are NHWC. The importer
records, for every file tensor whose layout it changed, the permutation that takes the file's tensor to
edgesim's (``graph.metadata["file_layout"]``: name -> perm, [0, 3, 1, 2] for a rank-4 TFLite tensor). Inputs
are taken and outputs (and dumps) returned in the file's layout through these two functions; a tensor without
an entry (every tensor of an ONNX model) is the same in both.
"""

from __future__ import annotations

import numpy as np

from simulator.graph import Graph


def _perm(graph: Graph, name: str) -> list[int] | None:
    return (graph.metadata.get("file_layout") or {}).get(name)


def file_shape(graph: Graph, name: str) -> tuple[int, ...]:
    """The shape of tensor ``name`` as the model file gives it."""
    shape = graph.tensors[name].shape
    perm = _perm(graph, name)
    return shape if perm is None else tuple(shape[i] for i in np.argsort(perm))


def to_graph(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    """A value of tensor ``name`` in the file's layout -> edgesim's."""
    perm = _perm(graph, name)
    return value if perm is None else np.transpose(value, perm)


def to_file(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    """A value of tensor ``name`` in edgesim's layout -> the file's."""
    perm = _perm(graph, name)
    return value if perm is None or np.ndim(value) != len(perm) else np.transpose(value, np.argsort(perm))
