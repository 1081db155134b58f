"""Bytes a weight tensor occupies in flash / moves from memory, in the encoding the runtime stores it in.

Dense at its bit width; CSR (values + column indices + row pointers) when the tensor has a sparsity mask and
the hardware's runtime skips zeros. The compression passes add codebook and Huffman encodings here.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Tensor
from simulator.hardware import Hardware


def nonzeros(t: Tensor) -> int:
    """Weights kept by the sparsity mask (all of them without one)."""
    return t.size if t.mask is None else int(np.count_nonzero(t.mask))


def stored_weight_bytes(t: Tensor, bits: int, hw: Hardware, nnz: int | None = None) -> int:
    if t.mask is not None and hw.sparsity.skips_zeros:
        nnz = nonzeros(t) if nnz is None else nnz
        rows = t.shape[0] if t.shape else 1
        # CSR: every kept value with its column index, plus one int32 row pointer per row (and one more)
        return math.ceil(nnz * (bits + hw.sparsity.index_bits) / 8) + 4 * (rows + 1)
    return math.ceil(t.size * bits / 8)
