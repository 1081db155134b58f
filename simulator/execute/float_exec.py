"""The float reference executor: runs a graph in numpy, op by op, through the registry's float kernels.

It knows nothing about individual ops (each registry entry owns its kernel), as onnx.reference's evaluator
and torch.fx's Interpreter do. It is the ground truth the quantized executors and compression passes are
measured against, so it checks what it can: feeds against the graph's inputs, and every kernel's output
against the shape and dtype the estimator was given by shape inference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node
from simulator.limits import check_tensors
from simulator.ops import get_op
from simulator.ops.registry import fail


def run_graph(
    graph: Graph,
    feeds: dict[str, np.ndarray],
    keep: bool = False,
    transform: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``feeds`` (graph input name -> array) and return its outputs by name.

    With ``keep`` every activation tensor (inputs and each node's outputs) is returned too, for per-layer
    comparisons; without it a tensor is dropped after its last reader, so peak memory stays near what a
    runtime needs. Constants are read from the graph and never returned. ``transform(name, value)``, when
    given, rewrites every activation as it is produced (fidelity measurement rounds quantized activations to
    their grid there).
    """
    check_tensors(graph.tensors.values(), "the graph to run")
    values = _check_feeds(graph, feeds)
    order = graph.order
    last_use = _last_use(graph, order)
    for step, node in enumerate(order):
        op = get_op(node.op_type)
        if op is None or not op.has_kernel:
            raise fail(node, "it has no float kernel, so the graph cannot be executed")
        inputs = [_value(graph, values, name, node) if name else None for name in node.inputs]
        try:
            # IEEE semantics, as the runtimes compute: an overflow is an inf in the result, not a warning on
            # stderr; whoever needs finite values (calibration, quantization) checks them
            with np.errstate(all="ignore"):
                results = op.run(node, *inputs)
        except EdgesimError:
            raise
        except Exception as exc:  # a kernel bug: keep the traceback, say where
            exc.add_note(f"while running node {node.name!r} ({node.op_type}) of graph {graph.name!r}")
            raise
        if any(name for name in node.outputs[len(results) :]):
            raise fail(node, f"its kernel returned {len(results)} outputs for {len(node.outputs)}")
        for name, value in zip(node.outputs, results, strict=False):
            if name:
                value = _checked(graph, node, name, np.asarray(value))
                values[name] = value if transform is None else transform(name, value)
        if not keep:
            for name in last_use.get(step, ()):
                values.pop(name, None)
    outputs = {name: _value(graph, values, name, None) for name in graph.outputs}
    return {**values, **outputs} if keep else outputs


def _check_feeds(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    unknown = sorted(set(feeds) - set(graph.inputs))
    missing = [name for name in graph.inputs if name not in feeds]
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise EdgesimError(
            f"feeds do not match the graph's inputs ({'; '.join(parts)}); its inputs are {', '.join(graph.inputs)}"
        )
    values = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        value = np.asarray(feeds[name])
        if t.shape is not None and tuple(value.shape) != tuple(t.shape):
            raise EdgesimError(f"feed {name!r} has shape {tuple(value.shape)}; the graph expects {tuple(t.shape)}")
        dtype = np.dtype(t.dtype)
        if value.dtype != dtype:
            if value.dtype.kind != dtype.kind:  # float64 -> float32 is fine, int -> float is a mistake
                raise EdgesimError(f"feed {name!r} has dtype {value.dtype}; the graph expects {dtype}")
            value = value.astype(dtype)
        values[name] = value
    return values


def _last_use(graph: Graph, order: list[Node]) -> dict[int, list[str]]:
    """Step -> activation tensors no later step reads (graph outputs are never dropped)."""
    last: dict[str, int] = {}
    for step, node in enumerate(order):
        for name in node.inputs:
            if name and not graph.tensors[name].constant:
                last[name] = step
        for name in node.outputs:
            if name:
                last.setdefault(name, step)  # written but never read: free right away
    keep = set(graph.outputs)
    by_step: dict[int, list[str]] = {}
    for name, step in last.items():
        if name not in keep:
            by_step.setdefault(step, []).append(name)
    return by_step


def _value(graph: Graph, values: dict[str, np.ndarray], name: str, node: Node | None) -> np.ndarray:
    if name in values:
        return values[name]
    t = graph.tensors.get(name)
    if t is not None and t.constant:
        return t.data
    where = f"node {node.name!r} ({node.op_type}) reads" if node is not None else "graph output"
    raise EdgesimError(f"{where} {name!r}, which is neither computed nor constant; the graph is incomplete")


def _checked(graph: Graph, node: Node, name: str, value: np.ndarray) -> np.ndarray:
    """The kernel's output, if it agrees with the shape and dtype shape inference recorded."""
    t = graph.tensors.get(name)
    if t is None or t.shape is None:
        return value
    if tuple(value.shape) != tuple(t.shape) or value.dtype != np.dtype(t.dtype):
        raise fail(
            node,
            f"its kernel wrote {name!r} as {value.dtype}{list(value.shape)} but shape inference says "
            f"{t.dtype}{list(t.shape)}; the op's infer and run disagree",
        )
    return value
