"""Control flow: If and Loop, resolved at import. A cost simulator needs one static graph, and exporters emit
control flow mostly over things fixed at deployment (a sample rate, an input's size, a fixed number of
refinement steps), so shape inference inlines the branch a constant condition selects and unrolls a loop
whose trip count and condition fold, iteration by iteration (the body's cost x the trip count, with every
iteration's shapes checked). Control flow over run-time data cannot be costed statically: it is refused with
the node and the inputs to bind (``--input-value``).

Neither op has a float kernel or counts of its own: after import neither is left in the graph.
"""

from __future__ import annotations

import numpy as np

from simulator.graph import Node, Subgraph, Tensor
from simulator.ops.registry import OpDef, fail, register

#: iterations a Loop may unroll to: past it, a constant trip count is more likely a bug than a model
MAX_UNROLL = 4096


class RuntimeControl(Exception):  # noqa: N818 -- a signal to shape inference, which turns it into an error
    """A control-flow node whose ``what`` (``tensor``) is not a constant at import."""

    def __init__(self, node: Node, what: str, tensor: str):
        super().__init__(what)
        self.node, self.what, self.tensor = node, what, tensor


def _flag(node: Node, t: Tensor, what: str) -> bool:
    if not t.constant:
        raise RuntimeControl(node, what, t.name)
    values = np.asarray(t.data).reshape(-1)
    if values.size != 1:
        raise fail(node, f"its {what} {t.name!r} has {values.size} elements; it must be a single boolean")
    return bool(values[0])


def _identity(name: str, source: str, target: str) -> Node:
    return Node(name, "Identity", [source], [target])


class _ControlFlow(OpDef):
    op_class = "data_movement"

    def infer(self, node, inputs):
        raise fail(node, "control flow is inlined by shape inference and has no shape of its own")


@register
class If(_ControlFlow):
    op_type = "If"
    min_inputs = max_inputs = 1

    def expand(self, node, inputs):
        taken = "then_branch" if _flag(node, inputs[0], "condition") else "else_branch"
        branch: Subgraph | None = node.attr(taken)
        if not isinstance(branch, Subgraph):
            raise fail(node, f"its {taken} is missing")
        if len(branch.outputs) != len(node.outputs):
            raise fail(node, f"its {taken} has {len(branch.outputs)} outputs for the node's {len(node.outputs)}")
        links = [
            _identity(f"{node.name}/{taken}/output_{i}", source, target)
            for i, (source, target) in enumerate(zip(branch.outputs, node.outputs, strict=True))
            if target
        ]
        return [*branch.nodes, *links], dict(branch.tensors)


@register
class Loop(_ControlFlow):
    """Inputs: trip count M (optional), condition (optional), loop-carried initial values. The body takes
    (iteration number, condition, carried values) and gives (condition, carried values, scan outputs).

    Unrolled one iteration at a time: each expansion inlines one renamed copy of the body and a follow-on
    Loop node that carries the iteration count and the scan values so far, so the next iteration's condition
    is read only once the previous body has been folded."""

    op_type = "Loop"
    min_inputs, max_inputs = 2, 1 << 16
    optional_inputs = (0, 1)  # the trip count and the condition may each be absent

    def expand(self, node, inputs):
        body: Subgraph | None = node.attr("body")
        if not isinstance(body, Subgraph):
            raise fail(node, "its body is missing")
        carried = node.inputs[2:]
        n_scan = len(body.outputs) - 1 - len(carried)
        if len(body.inputs) != 2 + len(carried) or n_scan < 0:
            raise fail(node, f"its body's {len(body.inputs)} inputs / {len(body.outputs)} outputs do not fit "
                             f"{len(carried)} loop-carried values")  # fmt: skip
        base = node.attr("_loop", node.name)
        done = int(node.attr("_iteration", 0))
        scans: list[list[str]] = node.attr("_scans") or [[] for _ in range(n_scan)]
        trip = None
        if inputs[0] is not None:
            if not inputs[0].constant:
                raise RuntimeControl(node, "trip count", inputs[0].name)
            trip = int(np.asarray(inputs[0].data).reshape(-1)[0])
        go_on = True if inputs[1] is None else _flag(node, inputs[1], "condition")
        if trip is None and inputs[1] is None:
            raise fail(node, "it has neither a trip count nor a condition, so it never ends")
        if not go_on or (trip is not None and done >= trip):
            return self._finish(node, base, carried, scans), {}
        if done >= MAX_UNROLL:
            raise fail(node, f"it runs more than {MAX_UNROLL} iterations; edgesim unrolls loops up to that")
        copy = body.renamed(f"{base}/{done}/")
        counter = Tensor.from_array(copy.inputs[0], np.array(done, dtype=np.int64))
        tensors = {**copy.tensors, counter.name: counter}
        nodes = []
        if inputs[1] is None:
            tensors[copy.inputs[1]] = Tensor.from_array(copy.inputs[1], np.array(True))
        else:
            nodes.append(_identity(f"{base}/{done}/condition_in", node.inputs[1], copy.inputs[1]))
        nodes += [
            _identity(f"{base}/{done}/carried_in_{i}", source, target)
            for i, (source, target) in enumerate(zip(carried, copy.inputs[2:], strict=True))
        ]
        nodes += copy.nodes
        outs = copy.outputs
        follow_on = Node(
            f"{base}/{done + 1}",
            "Loop",
            [node.inputs[0], outs[0], *outs[1 : 1 + len(carried)]],
            list(node.outputs),
            {**node.attrs, "_loop": base, "_iteration": done + 1,
             "_scans": [s + [v] for s, v in zip(scans, outs[1 + len(carried) :], strict=True)]},
        )  # fmt: skip
        return [*nodes, follow_on], tensors

    def _finish(self, node: Node, base: str, carried: list[str], scans: list[list[str]]) -> list[Node]:
        """The loop's outputs: the last carried values, and each scan output stacked along a new axis 0."""
        nodes = [
            _identity(f"{base}/output_{i}", source, target)
            for i, (source, target) in enumerate(zip(carried, node.outputs, strict=False))
            if target
        ]
        for k, (values, target) in enumerate(zip(scans, node.outputs[len(carried) :], strict=True)):
            if not target:
                continue
            if not values:
                raise fail(node, f"it runs zero iterations, so the shape of scan output {target!r} is unknown")
            stacked = [f"{base}/scan_{k}/{i}" for i in range(len(values))]
            nodes += [
                Node(f"{base}/scan_{k}/unsqueeze_{i}", "Unsqueeze", [v], [s], {"axes": [0]})
                for i, (v, s) in enumerate(zip(values, stacked, strict=True))
            ]
            nodes.append(Node(f"{base}/scan_{k}/concat", "Concat", stacked, [target], {"axis": 0}))
        return nodes
