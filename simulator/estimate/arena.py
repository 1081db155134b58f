"""Activation arena planning, as TensorFlow Lite Micro's GreedyMemoryPlanner does it.

Every activation tensor lives from the step that writes it (graph inputs: step 0) to the last step that
reads it (graph outputs: the end). Buffers are placed largest first, each at the lowest offset where it
overlaps no already-placed buffer that is alive at the same time. In-place ops (reshape-like) write no new
buffer: their output aliases their input, extending its lifetime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        """Bytes of live buffers at every step (the arena timeline a report draws), in one pass over the
        buffers and one over the steps."""
        change = [0] * (self.steps + 1)
        for b in self.buffers:
            change[b.first_step] += b.size_bytes
            change[min(b.last_step + 1, self.steps)] -= b.size_bytes
        live, total = [], 0
        for step in range(self.steps):
            total += change[step]
            live.append(total)
        return live

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
    # placed buffers indexed by time, so that finding the ones a new buffer overlaps costs what they are, not
    # what has been placed: a buffer overlaps [a, b] if it is alive at step a or starts in (a, b]
    alive_at: dict[int, list[Buffer]] = {}
    starting_at: dict[int, list[Buffer]] = {}
    placed: list[Buffer] = []
    for name in roots:
        size = _align(tensor_bytes(name), alignment)
        a, b = first[name], last[name]
        overlapping = list(alive_at.get(a, ()))
        for step in range(a + 1, b + 1):
            overlapping.extend(starting_at.get(step, ()))
        overlapping.sort(key=lambda buf: buf.offset)
        offset = 0
        for other in overlapping:
            if offset + size <= other.offset:
                break
            offset = max(offset, other.offset + other.size_bytes)
        buffer = Buffer(name, size, a, b, offset, tuple(aliases.get(name, ())))
        placed.append(buffer)
        starting_at.setdefault(a, []).append(buffer)
        for step in range(a, b + 1):
            alive_at.setdefault(step, []).append(buffer)
    placed.sort(key=lambda b: (b.first_step, b.name))
    return ArenaPlan(placed, len(order))
