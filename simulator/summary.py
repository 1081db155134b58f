"""Per-layer and total counts of an op graph: what `edgesim inspect` reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.graph import Graph, Shape
from simulator.ops import get_op


@dataclass(frozen=True)
class LayerCounts:
    name: str
    op: str
    op_class: str
    inputs: list[Shape]
    outputs: list[Shape]
    weights: list[Shape]
    params: int
    macs: int
    ops: int
    weight_bytes: int
    activation_bytes: int
    warning: str = ""


@dataclass(frozen=True)
class ModelCounts:
    model: str
    layers: list[LayerCounts]
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def ops(self) -> int:
        return sum(layer.ops for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def activation_bytes_max(self) -> int:
        """The most activation bytes one layer needs at once (its activation inputs plus outputs)."""
        return max((layer.activation_bytes for layer in self.layers), default=0)

    def totals(self) -> dict[str, int]:
        return {
            "params": self.params,
            "macs": self.macs,
            "ops": self.ops,
            "weight_bytes": self.weight_bytes,
            "activation_bytes_max": self.activation_bytes_max,
        }


def count(graph: Graph) -> ModelCounts:
    """Counts for every node of a shape-inferred graph, in execution order."""
    layers = []
    for node in graph.order:
        inputs = graph.input_tensors(node)
        outputs = graph.output_tensors(node)
        activations = [t for t in inputs if t is not None and not t.constant]
        activation_bytes = sum(t.nbytes for t in activations) + sum(t.nbytes for t in outputs)
        op = get_op(node.op_type)
        if op is None:
            layers.append(
                LayerCounts(
                    node.name, node.op_type, "unknown", [t.shape for t in activations],
                    [t.shape for t in outputs], [], 0, 0, 0, 0, activation_bytes,
                    warning="unknown op, counted as zero cost",
                )
            )  # fmt: skip
            continue
        slots = op.weight_slots(node, inputs)
        weights = [inputs[i] for i in slots]
        layers.append(
            LayerCounts(
                name=node.name,
                op=node.op_type,
                op_class=op.cost_class(node, inputs),
                inputs=[t.shape for t in activations],
                outputs=[t.shape for t in outputs],
                weights=[t.shape for t in weights],
                params=op.params(node, inputs),
                macs=op.macs(node, inputs, outputs),
                ops=op.ops(node, inputs, outputs),
                weight_bytes=sum(t.size * t.stored_bits for t in weights) // 8,
                activation_bytes=activation_bytes,
            )
        )
    return ModelCounts(graph.name, layers, list(graph.warnings))
