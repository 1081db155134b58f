"""Huffman code lengths from real symbol frequencies (for storage accounting; no bitstream is written)."""

from __future__ import annotations

import heapq

import numpy as np


def code_lengths(frequencies: dict[int, int]) -> dict[int, int]:
    """Optimal prefix-code length of every symbol. One symbol alone still needs one bit."""
    symbols = [(count, i, s) for i, (s, count) in enumerate(sorted(frequencies.items())) if count > 0]
    if not symbols:
        return {}
    if len(symbols) == 1:
        return {symbols[0][2]: 1}
    lengths = {s: 0 for _, _, s in symbols}
    # heap of (weight, tie-breaker, symbols under this subtree); merging deepens every symbol below by one
    heap = [(count, i, [s]) for count, i, s in symbols]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, tie, a + b))
        tie += 1
    return lengths


def coded_bits(stream: np.ndarray) -> tuple[int, int]:
    """(payload bits, distinct symbols) of Huffman-coding the integer symbols in ``stream``."""
    symbols, counts = np.unique(np.asarray(stream).reshape(-1), return_counts=True)
    frequencies = {int(s): int(c) for s, c in zip(symbols, counts, strict=True)}
    lengths = code_lengths(frequencies)
    return sum(c * lengths[s] for s, c in frequencies.items()), len(frequencies)
