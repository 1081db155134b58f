"""TFLite sparse constants (a tensor's ``sparsity``: traversal order, block map, per-level DENSE / SPARSE_CSR
metadata) decoded to dense arrays, as the DENSIFY op does at run time (mediapipe's sparse face and pose
detectors store their float16 conv weights so).

The stored values are the non-zeros in traversal order. Level k of the traversal walks expanded dimension
``traversal_order[k]``: the first ``rank`` expanded dimensions are the original ones (block-outer when
blocked), then one inner dimension per ``block_map`` entry. A DENSE level counts 0 .. dense_size - 1; a
SPARSE_CSR level lists the indices ``array_indices[segments[p] : segments[p + 1]]`` of its parent position p.
A value's position in the stored array is the position reached at the last level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.errors import EdgesimError

_INDEX_VECTORS = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}


def _index_vector(tfl: Any, kind: int, table: Any) -> np.ndarray:
    if kind not in _INDEX_VECTORS or table is None:
        raise EdgesimError(f"sparse tensor metadata has index vector type {kind}, which edgesim does not read")
    vector = getattr(tfl, _INDEX_VECTORS[kind])()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64) if vector.ValuesLength() else np.zeros(0, np.int64)


def densify(tfl: Any, sparsity: Any, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The dense array of ``shape`` that sparse ``values`` (the stored non-zeros) with ``sparsity`` stand for."""
    rank = len(shape)
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()] if sparsity.TraversalOrderLength() else []
    block_map = [int(v) for v in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    levels = []
    for k in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(k)
        if meta.Format() == 0:  # DENSE
            levels.append(("dense", int(meta.DenseSize()), None, None))
        else:
            segments = _index_vector(tfl, meta.ArraySegmentsType(), meta.ArraySegments())
            indices = _index_vector(tfl, meta.ArrayIndicesType(), meta.ArrayIndices())
            levels.append(("csr", 0, segments, indices))
    if len(order) != rank + len(block_map) or len(levels) != len(order) or sorted(order) != list(range(len(order))):
        raise EdgesimError(f"sparse tensor of shape {shape} has inconsistent sparsity metadata")
    block_size = {block_map[j]: levels[order.index(rank + j)][1] for j in range(len(block_map))}
    dense = np.zeros(shape, values.dtype)
    coordinates = [0] * len(order)  # per expanded dimension

    def walk(level: int, parent: int) -> None:
        if level == len(order):
            if parent >= values.size:
                raise EdgesimError(f"sparse tensor of shape {shape} indexes past its {values.size} stored values")
            position = [coordinates[d] * block_size.get(d, 1) for d in range(rank)]
            for j, d in enumerate(block_map):
                position[d] += coordinates[rank + j]
            dense[tuple(position)] = values[parent]
            return
        kind, size, segments, indices = levels[level]
        if kind == "dense":
            for i in range(size):
                coordinates[order[level]] = i
                walk(level + 1, parent * size + i)
        else:
            for j in range(int(segments[parent]), int(segments[parent + 1])):
                coordinates[order[level]] = int(indices[j])
                walk(level + 1, j)

    walk(0, 0)
    return dense
