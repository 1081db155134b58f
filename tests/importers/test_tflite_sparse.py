"""TFLite sparse constants decoded as DENSIFY does: a CSR level and a blocked layout, built by hand with the
schema's own builders, against the dense arrays they stand for."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

tflite = pytest.importorskip("tflite")

from simulator.importers.tflite_sparse import densify  # noqa: E402


def _ints(builder, start, values):
    start(builder, len(values))
    for v in reversed(values):
        builder.PrependInt32(v)
    return builder.EndVector()


def _vector(builder, values):
    vec = _ints(builder, tflite.Int32VectorStartValuesVector, values)
    tflite.Int32VectorStart(builder)
    tflite.Int32VectorAddValues(builder, vec)
    return tflite.Int32VectorEnd(builder)


def _sparsity(levels, order, block_map=()):
    """levels: ("dense", size) or ("csr", segments, indices), one per traversal level."""
    builder = flatbuffers.Builder(256)
    metas = []
    for level in levels:
        if level[0] == "csr":
            segments, indices = _vector(builder, level[1]), _vector(builder, level[2])
        tflite.DimensionMetadataStart(builder)
        if level[0] == "dense":
            tflite.DimensionMetadataAddFormat(builder, 0)
            tflite.DimensionMetadataAddDenseSize(builder, level[1])
        else:
            tflite.DimensionMetadataAddFormat(builder, 1)
            tflite.DimensionMetadataAddArraySegmentsType(builder, 1)
            tflite.DimensionMetadataAddArraySegments(builder, segments)
            tflite.DimensionMetadataAddArrayIndicesType(builder, 1)
            tflite.DimensionMetadataAddArrayIndices(builder, indices)
        metas.append(tflite.DimensionMetadataEnd(builder))

    order_vec = _ints(builder, tflite.SparsityParametersStartTraversalOrderVector, list(order))
    block_vec = _ints(builder, tflite.SparsityParametersStartBlockMapVector, list(block_map))
    tflite.SparsityParametersStartDimMetadataVector(builder, len(metas))
    for m in reversed(metas):
        builder.PrependUOffsetTRelative(m)
    meta_vec = builder.EndVector()
    tflite.SparsityParametersStart(builder)
    tflite.SparsityParametersAddTraversalOrder(builder, order_vec)
    tflite.SparsityParametersAddBlockMap(builder, block_vec)
    tflite.SparsityParametersAddDimMetadata(builder, meta_vec)
    builder.Finish(tflite.SparsityParametersEnd(builder))
    return tflite.SparsityParameters.GetRootAs(builder.Output(), 0)


def test_csr_rows():
    dense = np.array([[0, 3, 0, 0], [0, 0, 0, 0], [5, 0, 0, 7]], np.float32)
    sparsity = _sparsity([("dense", 3), ("csr", [0, 1, 1, 3], [1, 0, 3])], [0, 1])
    assert np.array_equal(densify(tflite, sparsity, np.array([3, 5, 7], np.float32), (3, 4)), dense)


def test_blocked_csr_with_dense_blocks():
    """4x4 in 2x2 blocks (block map: both dimensions): block rows dense, block columns CSR, each stored block
    dense in row-major order; the zero blocks are skipped."""
    dense = np.zeros((4, 4), np.int8)
    dense[0:2, 2:4] = [[1, 2], [3, 4]]
    dense[2:4, 0:2] = [[5, 6], [7, 8]]
    levels = [("dense", 2), ("csr", [0, 1, 2], [1, 0]), ("dense", 2), ("dense", 2)]
    sparsity = _sparsity(levels, [0, 1, 2, 3], block_map=[0, 1])
    values = np.arange(1, 9, dtype=np.int8)
    assert np.array_equal(densify(tflite, sparsity, values, (4, 4)), dense)
