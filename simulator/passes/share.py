"""Weight sharing (Han et al., Deep Compression, 2016): per layer, k-means on the weights that pruning kept,
with 2^bits centroids; every weight becomes an index into the layer's codebook.

Initialisation as in the paper: linear (centroids evenly spaced between min and max, the paper's best),
density (at quantiles of the weights) or random (seeded picks among the weights). Lloyd iterations run to
convergence, so the result is exact and deterministic.
"""

from __future__ import annotations

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Codebook, Graph, Node
from simulator.passes.prune import weight_name

INITS = ("linear", "density", "random")


def kmeans_1d(
    values: np.ndarray, k: int, init: str = "linear", seed: int = 0, max_iter: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """(centroids ascending, index of each value's centroid) of 1-D k-means by Lloyd's algorithm."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if init not in INITS:
        raise EdgesimError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if values.size == 0:
        return np.zeros(k), np.zeros(0, dtype=np.int64)
    lo, hi = float(values.min()), float(values.max())
    if init == "linear":
        centroids = np.linspace(lo, hi, k)
    elif init == "density":
        centroids = np.quantile(values, (np.arange(k) + 0.5) / k)
    else:
        rng = np.random.default_rng(seed)
        centroids = np.sort(rng.choice(values, size=k, replace=values.size < k))
    # Lloyd's iterations on the sorted values with prefix sums: each step costs O(k log n), not O(n)
    ordered = np.sort(values)
    prefix = np.concatenate([[0.0], np.cumsum(ordered)])
    for _ in range(max_iter):
        centroids = np.sort(centroids)
        edges = (centroids[1:] + centroids[:-1]) / 2
        # cluster j holds ordered[bounds[j]:bounds[j + 1]]; a value on an edge goes to the lower centroid
        bounds = np.concatenate([[0], np.searchsorted(ordered, edges, side="right"), [ordered.size]])
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    centroids = np.sort(centroids)
    edges = (centroids[1:] + centroids[:-1]) / 2
    return centroids, np.searchsorted(edges, values, side="left").astype(np.int64)


def share_weights(graph: Graph, layers: list[Node], bits: int, init: str = "linear", seed: int = 0) -> Graph:
    """Replace each selected layer's weights by a 2^bits-entry codebook and per-weight indices."""
    if not 1 <= bits <= 16:
        raise EdgesimError(f"bits must be between 1 and 16, got {bits}")
    tensors = dict(graph.tensors)
    for node in layers:
        name = weight_name(graph, node)
        t = graph.tensors[name]
        data = np.asarray(t.data, dtype=np.float64)
        kept = np.ones(t.shape, bool) if t.mask is None else t.mask
        centroids, index = kmeans_1d(data[kept], 1 << bits, init, seed)
        indices = np.zeros(t.shape, dtype=np.int64)
        indices[kept] = index
        shared = np.where(kept, centroids[indices], 0.0).astype(t.dtype)
        codebook = Codebook(centroids.astype(np.float32), indices)
        tensors[name] = t.with_values(shared, codebook=codebook)
    return graph.replace(tensors=tensors)
