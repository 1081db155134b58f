"""Activation arena planning, as TensorFlow Lite Micro's GreedyMemoryPlanner does it.

Every activation tensor lives from the step that writes it (graph inputs: step 0) to the last step that
reads it (graph outputs: the end). Buffers are placed largest first, each at the lowest offset where it
overlaps no already-placed buffer that is alive at the same time. In-place ops (reshape-like) write no new
buffer: their output aliases their input, extending its lifetime.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.graph import Graph
from simulator.ops import get_op


@dataclass(frozen=True)
class Buffer:
    name: str  # the tensor that owns the buffer (aliases listed separately)
    size_bytes: int
    first_step: int
    last_step: int
    offset: int
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArenaPlan:
    buffers: list[Buffer]
    steps: int

    @property
    def peak_ram_bytes(self) -> int:
        return max((b.offset + b.size_bytes for b in self.buffers), default=0)

    def live_bytes(self) -> list[int]:
        """Bytes of live buffers at every step (the arena timeline a report draws)."""
        # each buffer adds its size where its lifetime starts and removes it after its last step: one pass
        change = [0] * (self.steps + 1)
        for b in self.buffers:
            if b.first_step <= b.last_step and b.first_step < self.steps:
                change[max(b.first_step, 0)] += b.size_bytes
                change[min(b.last_step, self.steps - 1) + 1] -= b.size_bytes
        return list(itertools.accumulate(change[: self.steps]))

    def offsets(self) -> dict[str, int]:
        out = {}
        for b in self.buffers:
            for name in (b.name, *b.aliases):
                out[name] = b.offset
        return out


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def plan_arena(graph: Graph, tensor_bytes: Callable[[str], int], alignment: int = 16) -> ArenaPlan:
    """Plan the activation arena of ``graph``; ``tensor_bytes(name)`` gives an activation's size in bytes
    (it depends on the precision the plan runs it at). Sizes are rounded up to ``alignment`` (TFLM: 16)."""
    order = graph.order
    owner: dict[str, str] = {}  # tensor -> the tensor whose buffer it lives in
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in graph.inputs:
        owner[name], first[name], last[name] = name, 0, 0
    for step, node in enumerate(order):
        for name in node.inputs:
            if name in owner:
                root = owner[name]
                last[root] = max(last[root], step)
        op = get_op(node.op_type)
        data_inputs = [n for n in node.inputs if n in owner]
        for i, name in enumerate(n for n in node.outputs if n):
            if op is not None and op.in_place and i == 0 and data_inputs:
                owner[name] = owner[data_inputs[0]]
                last[owner[name]] = max(last[owner[name]], step)
            else:
                owner[name], first[name], last[name] = name, step, step
    end = max(len(order) - 1, 0)
    for name in graph.outputs:
        if name in owner:
            last[owner[name]] = end
    aliases: dict[str, list[str]] = {}
    for name, root in owner.items():
        if name != root:
            aliases.setdefault(root, []).append(name)
    roots = [name for name, root in owner.items() if name == root]
    # largest first; ties by first use, then name, so the plan is deterministic
    roots.sort(key=lambda n: (-tensor_bytes(n), first[n], n))
    placed: list[Buffer] = []
    # the placed buffers' lifetimes and extents as arrays: finding those alive during a new buffer's lifetime
    # and the lowest gap among them are vector operations, not a Python scan per buffer placed so far
    firsts = np.empty(len(roots), dtype=np.int64)
    lasts = np.empty(len(roots), dtype=np.int64)
    starts = np.empty(len(roots), dtype=object)  # Python ints: sizes past 2**63 stay exact
    ends = np.empty(len(roots), dtype=object)
    for k, name in enumerate(roots):
        size = _align(tensor_bytes(name), alignment)
        alive = np.flatnonzero((firsts[:k] <= last[name]) & (lasts[:k] >= first[name]))
        offset = 0
        if len(alive):
            by_offset = sorted(alive.tolist(), key=lambda j: starts[j])
            # below each overlapping buffer (by offset) lies the gap from the highest end before it
            reach = 0
            for j in by_offset:
                if reach + size <= starts[j]:
                    break
                reach = max(reach, ends[j])
            offset = reach
        firsts[k], lasts[k], starts[k], ends[k] = first[name], last[name], offset, offset + size
        placed.append(Buffer(name, size, first[name], last[name], offset, tuple(aliases.get(name, ()))))
    placed.sort(key=lambda b: (b.first_step, b.name))
    return ArenaPlan(placed, len(order))
