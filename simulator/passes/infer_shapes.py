"""Shape inference with constant folding, in one walk over the execution order.

Folding has to happen during the walk: a Reshape's target shape is often computed by a Shape -> Gather ->
Concat chain, so its output shape is known only once that chain has been evaluated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Shape, Tensor
from simulator.ops import get_op
from simulator.ops.control_flow import RuntimeControl
from simulator.ops.registry import fail


def infer_shapes(
    graph: Graph,
    *,
    allow_unknown: bool = False,
    hints: dict[str, tuple[Shape, str]] | None = None,
    unknown_shapes: Callable[[Node, list[Tensor | None]], list[tuple[Shape, str] | None]] | None = None,
) -> Graph:
    """A new graph with every tensor's shape and dtype known and import-time constants folded away.

    Ops edgesim does not model are kept only when ``allow_unknown`` is set, cost nothing and are listed in
    the graph's warnings. Their output shapes come from ``unknown_shapes(node, inputs)`` (the importer's
    format-specific inference, given the shapes known at that point), else from ``hints`` (shapes the model
    file itself records).
    """
    hints = hints or {}
    tensors = dict(graph.tensors)
    kept = []
    warnings = list(graph.warnings)
    producers: dict[str, Node] = {}
    queue = deque(graph.order)
    while queue:
        node = queue.popleft()
        producers.update((name, node) for name in node.outputs if name)
        undefined = [n for n in node.inputs if n and n not in tensors]
        if undefined:
            raise fail(node, f"it reads {undefined[0]!r}, which nothing before it defines; the model is incomplete")
        inputs: list[Tensor | None] = [tensors[n] if n else None for n in node.inputs]
        op = get_op(node.op_type)
        if op is None:
            if not allow_unknown:
                raise EdgesimError(
                    f"node {node.name!r} uses op {node.op_type!r}, which edgesim does not model; "
                    "pass --allow-unknown to count it as zero cost"
                )
            inferred = unknown_shapes(node, inputs) if unknown_shapes is not None else None
            for i, name in enumerate(node.outputs):
                if not name:
                    continue
                if inferred is not None and i < len(inferred) and inferred[i] is not None:
                    tensors[name] = Tensor(name, *inferred[i])
                elif name in hints:
                    tensors[name] = Tensor(name, *hints[name])
                else:
                    raise fail(
                        node,
                        f"op is unknown and the shape of its output {name!r} is neither in the model nor given by "
                        "onnx's shape inference; bind the dynamic inputs with --input-shape, or export the model "
                        "with its shapes (onnx.shape_inference.infer_shapes)",
                    )
            warnings.append(f"unknown op {node.op_type} at node {node.name!r} counted as zero cost")
            kept.append(node)
            continue
        present = len(node.inputs)
        if not op.min_inputs <= present <= op.max_inputs:
            raise fail(node, f"it has {present} inputs; {node.op_type} takes {op.min_inputs} to {op.max_inputs}")
        for i, t in enumerate(inputs[: op.min_inputs]):
            if t is None and i not in op.optional_inputs:
                raise fail(node, f"its required input {i} is empty; {node.op_type} needs {op.min_inputs} inputs")
        for i, t in enumerate(inputs):
            if t is not None and t.shape is None:
                raise fail(node, f"the shape of input {i} ({t.name!r}) is unknown")
        try:
            expansion = op.expand(node, inputs)
        except RuntimeControl as exc:
            raise _unresolved(graph, producers, exc) from None
        if expansion is not None:  # control flow that folds: its inlined nodes are walked next
            new_nodes, new_tensors = expansion
            tensors.update(new_tensors)
            queue.extendleft(reversed(new_nodes))
            continue
        try:
            values = op.fold(node, inputs)
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as exc:
            raise fail(node, f"its constant inputs cannot be evaluated ({exc})") from None
        if values is not None:
            for name, value in zip(node.outputs, values, strict=False):
                if name:
                    tensors[name] = op.folded_tensor(node, inputs, name, value)
            continue
        specs = op.infer(node, inputs)
        for name, (shape, dtype) in zip(node.outputs, specs, strict=False):
            if name:
                tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype)
        kept.append(node)
    return graph.replace(nodes=kept, tensors=tensors, warnings=warnings)


def _unresolved(graph: Graph, producers: dict[str, Node], exc: RuntimeControl) -> EdgesimError:
    """The one-line error for control flow over run-time values: which graph inputs to bind."""
    sources, seen, stack = [], set(), [exc.tensor]
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        if name in graph.inputs:
            sources.append(name)
        elif name in producers:
            stack.extend(producers[name].inputs)
    what = f"its {exc.what} {exc.tensor!r} is computed at run time"
    if not sources:
        return fail(exc.node, f"{what}; edgesim inlines If / Loop only where it folds to a constant")
    binds = " ".join(f"--input-value {name}=VALUE" for name in sorted(sources))
    return fail(
        exc.node,
        f"{what} from input(s) {', '.join(sorted(sources))}; bind them so it folds ({binds}) "
        "or the dims it reads with --input-shape",
    )
