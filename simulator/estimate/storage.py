"""Bytes a weight tensor occupies in flash, and bytes a kernel reads per inference, in the encoding the
runtime stores it in.

Encodings: dense at the stored width (quantized bits, or codebook index bits plus the codebook); CSR with
absolute column indices; CSR with relative indices as Deep Compression stores it (gaps of a fixed width,
a filler entry whenever a gap overflows); a bitmask; each optionally Huffman-coded from the real symbol
frequencies of its value and index streams. Without an explicit encoding (a plan's encode pass), a masked
weight is stored as the runtime's CSR when the hardware skips zeros and dense otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.graph import Encoding, Tensor
from simulator.hardware import Hardware
from simulator.huffman import coded_bits

FORMATS = ("dense", "csr", "csr-relative", "bitmask")
CODEBOOK_ENTRY_BITS = 32  # float32 centroids
LENGTH_BITS = 5  # a canonical Huffman table stores one code length (< 32) per symbol


@dataclass(frozen=True)
class StoredSize:
    value_bits: int  # weight values or codebook indices
    index_bits: int  # the sparse structure (indices, gaps, row pointers, bitmask)
    table_bits: int  # codebook and Huffman tables
    plain_bits: int  # the same encoding without Huffman coding

    @property
    def total_bytes(self) -> int:
        return math.ceil((self.value_bits + self.index_bits + self.table_bits) / 8)

    @property
    def plain_bytes(self) -> int:
        return math.ceil(self.plain_bits / 8)


def nonzeros(t: Tensor) -> int:
    """Weights kept by the sparsity mask (all of them without one)."""
    return t.size if t.mask is None else int(np.count_nonzero(t.mask))


def _value_symbols(t: Tensor, positions: np.ndarray) -> np.ndarray:
    """Integer symbols of the stored values (codebook indices or quantized levels) at flat ``positions``."""
    if t.codebook is not None:
        return np.asarray(t.codebook.indices).reshape(-1)[positions]
    values = np.asarray(t.data).reshape(-1)[positions]
    if t.quant is not None:
        scale, _ = t.quant.broadcast(len(t.shape))
        scale = np.broadcast_to(scale, t.shape).reshape(-1)[positions]
        return np.rint(values / scale).astype(np.int64)
    return values.view(np.int32 if values.dtype.itemsize == 4 else np.int16).astype(np.int64)


def _relative_gaps(positions: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Deep Compression's relative indexing: (gaps, is_filler) of the entry stream, a gap at most 2^bits;
    a longer gap is bridged by filler entries (stored zeros) every 2^bits positions."""
    longest = 1 << index_bits
    diffs = np.diff(np.concatenate([[-1], positions]))
    fillers = (diffs - 1) // longest
    repeat = fillers + 1
    gaps = np.full(int(repeat.sum()), longest, dtype=np.int64)
    ends = np.cumsum(repeat) - 1
    gaps[ends] = diffs - fillers * longest
    is_filler = np.ones(gaps.size, dtype=bool)
    is_filler[ends] = False
    return gaps, is_filler


def stored_size(t: Tensor, value_width: int, encoding: Encoding) -> StoredSize:
    """Bits of ``t`` stored in ``encoding`` with ``value_width`` bits per value (before Huffman)."""
    table = len(t.codebook.centroids) * CODEBOOK_ENTRY_BITS if t.codebook is not None else 0
    if t.codebook is not None:
        value_width = t.codebook.index_bits
    mask = np.ones(t.size, bool) if t.mask is None else np.asarray(t.mask).reshape(-1)
    positions = np.flatnonzero(mask)
    rows = t.shape[0] if t.shape else 1
    fmt = encoding.format
    if fmt == "dense":
        stored = np.arange(t.size)
        values, structure, streams = t.size * value_width, 0, [_value_symbols(t, stored)]
    elif fmt == "csr":
        values = positions.size * value_width
        structure = positions.size * encoding.index_bits + 32 * (rows + 1)
        streams = [_value_symbols(t, positions)]
    elif fmt == "bitmask":
        values, structure, streams = positions.size * value_width, t.size, [_value_symbols(t, positions)]
    elif fmt == "csr-relative":
        gaps, is_filler = _relative_gaps(positions, encoding.index_bits)
        symbols = np.zeros(gaps.size, dtype=np.int64)
        symbols[~is_filler] = _value_symbols(t, positions)
        if t.codebook is not None:
            # a filler stores the value zero: the codebook entry nearest to it
            symbols[is_filler] = int(np.argmin(np.abs(t.codebook.centroids)))
        values, structure = gaps.size * value_width, gaps.size * encoding.index_bits
        streams = [symbols, gaps - 1]
    else:
        raise ValueError(f"unknown encoding format {fmt!r}")
    plain = values + structure + table
    if not encoding.huffman:
        return StoredSize(values, structure, table, plain)
    coded = [coded_bits(s) for s in streams]
    huff_values = coded[0][0]
    huff_structure = coded[1][0] if len(coded) > 1 else structure
    widths = [value_width] + ([encoding.index_bits] if len(coded) > 1 else [])
    huff_table = table + sum(
        distinct * (width + LENGTH_BITS) for (_, distinct), width in zip(coded, widths, strict=True)
    )
    return StoredSize(huff_values, huff_structure, huff_table, plain)


def default_encoding(t: Tensor, hw: Hardware) -> Encoding:
    """How a runtime stores a weight no plan chose an encoding for."""
    if t.mask is not None and hw.sparsity.skips_zeros:
        return Encoding("csr", hw.sparsity.index_bits)
    return Encoding("dense")


def stored_weight_bytes(t: Tensor, bits: int, hw: Hardware, nnz: int | None = None) -> int:
    """Flash bytes of a weight stored at ``bits`` per value."""
    encoding = t.encoding or default_encoding(t, hw)
    if encoding.format == "dense" and not encoding.huffman and t.codebook is None:
        return math.ceil(t.size * bits / 8)  # the common case, without touching the values
    if encoding.format == "csr" and not encoding.huffman and t.codebook is None:
        nnz = nonzeros(t) if nnz is None else nnz
        rows = t.shape[0] if t.shape else 1
        return math.ceil(nnz * (bits + encoding.index_bits) / 8) + 4 * (rows + 1)
    return stored_size(t, bits, encoding).total_bytes
