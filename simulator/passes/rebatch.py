"""Run many samples in one pass: the graph with a larger batch on axis 0, when its shapes scale that way.

Comparing a compressed model with its original (``compare``, ``verify``, calibration) runs the same graph on
hundreds or thousands of single samples; numpy's per-call overhead then costs more than the arithmetic. A
graph whose every activation has batch 1 on axis 0, and keeps the batch there after shape inference with N
samples, computes each sample exactly as N single runs would (each output row depends on its own input row
only), so they can be stacked. A graph that moves the batch (a Reshape to a constant ``[1, -1]``, a Transpose
of axis 0, a reduction over it) is detected by its inferred shapes and not rebatched.
"""

from __future__ import annotations

import dataclasses

from simulator.errors import EdgesimError
from simulator.graph import Graph
from simulator.passes.infer_shapes import infer_shapes


def with_batch(graph: Graph, samples: int) -> Graph | None:
    """``graph`` running ``samples`` samples at once on axis 0, or None when its shapes do not allow it."""
    if samples == 1:
        return graph
    tensors = dict(graph.tensors)
    for name in graph.inputs:
        t = tensors[name]
        if not t.shape or t.shape[0] != 1:
            return None
        tensors[name] = dataclasses.replace(t, shape=(samples, *t.shape[1:]))
    try:
        inferred = infer_shapes(graph.replace(tensors=tensors))
    except (EdgesimError, ValueError, TypeError, IndexError, ZeroDivisionError):
        return None
    if [n.name for n in inferred.order] != [n.name for n in graph.order]:
        return None  # something folded differently: not the same computation
    out = {}
    for name, t in graph.tensors.items():
        if t.constant:
            out[name] = t
            continue
        new = inferred.tensors.get(name)
        if new is None or not t.shape or t.shape[0] != 1 or tuple(new.shape) != (samples, *t.shape[1:]):
            return None
        out[name] = dataclasses.replace(t, shape=tuple(new.shape))
    return graph.replace(tensors=out)
