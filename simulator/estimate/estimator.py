"""Graph + hardware profile (+ precision) -> latency, energy and memory, per layer and in total.

The model is documented in docs/hardware-profiles.md. :func:`prepare` does the work that depends only on the
graph (counts, tensor lists, sparsity), so sweeping many profiles or precisions over one graph only repeats
the arithmetic in :func:`estimate`. Nothing here keeps state between calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.estimate.arena import ArenaPlan, plan_arena
from simulator.estimate.precision import bias_bits, layer_precision, tensor_bits
from simulator.estimate.storage import nonzeros, stored_weight_bytes
from simulator.graph import Graph, Node, Tensor
from simulator.hardware import Hardware
from simulator.ops import get_op
from simulator.passes.deploy import for_deployment
from simulator.summary import LayerCounts, count


@dataclass(frozen=True)
class _Work:
    """What one layer does, independent of hardware."""

    node: Node
    counts: LayerCounts
    in_place: bool
    activation_inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    weights: tuple[tuple[Tensor, bool, int], ...]  # (tensor, is_bias, non-zeros)
    asymmetric_extra_ops: int  # the Z_W * sum(X) adds of asymmetric weights


@dataclass(frozen=True)
class PreparedGraph:
    graph: Graph
    work: tuple[_Work, ...]


def _asymmetric_extra_ops(node: Node, counts: LayerCounts, weights: list[Tensor]) -> int:
    """Non-zero weight zero points add Z_W * sum(X) per output: sum(X) over each output's receptive field."""
    main = next((w for w in weights if w.quant is not None), None)
    if main is None or main.quant.symmetric or not counts.macs:
        return 0
    out_channels = counts.outputs[0][1] if len(counts.outputs[0]) > 1 else 1
    groups = int(node.attr("group", 1))
    return counts.macs * groups // max(out_channels, 1)


def prepare(graph: Graph) -> PreparedGraph:
    """Per-layer work of a shape-inferred graph as a runtime would run it (activations fused, no-ops
    dropped), reusable across hardware profiles and precisions."""
    graph = for_deployment(graph)
    work = []
    for node, counts in zip(graph.order, count(graph).layers, strict=True):
        op = get_op(node.op_type)
        inputs = graph.input_tensors(node)
        slots = op.weight_slots(node, inputs) if op is not None else []
        biases = set(op.bias_inputs) if op is not None else set()
        weights = [(inputs[i], i in biases, nonzeros(inputs[i])) for i in slots]
        work.append(
            _Work(
                node=node,
                counts=counts,
                in_place=bool(op is not None and op.in_place),
                activation_inputs=tuple(t for t in inputs if t is not None and not t.constant),
                outputs=tuple(graph.output_tensors(node)),
                weights=tuple(weights),
                asymmetric_extra_ops=_asymmetric_extra_ops(node, counts, [w for w, b, _ in weights if not b]),
            )
        )
    return PreparedGraph(graph, tuple(work))


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    op: str
    op_class: str
    precision: str
    macs: int
    ops: int
    params: int
    weight_bytes: int
    activation_read_bytes: int
    activation_write_bytes: int
    compute_cycles: float
    memory_cycles: float
    overhead_cycles: float
    latency_ms: float | None
    energy_compute_uj: float
    energy_memory_uj: float
    energy_static_uj: float
    bound: str

    @property
    def energy_uj(self) -> float:
        return self.energy_compute_uj + self.energy_memory_uj + self.energy_static_uj


@dataclass(frozen=True)
class Estimate:
    model: str
    hardware: Hardware
    precision: str | None
    plan: str | None
    layers: list[LayerEstimate]
    arena: ArenaPlan
    warnings: list[str] = field(default_factory=list)

    @property
    def latency_ms(self) -> float | None:
        if self.hardware.energy_only:
            return None
        return sum(layer.latency_ms for layer in self.layers)

    @property
    def flash_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def peak_ram_bytes(self) -> int:
        return self.arena.peak_ram_bytes

    def capacity(self, role: str) -> int:
        hw = self.hardware
        return hw.memory[hw.weights_level if role == "flash" else hw.activations_level].capacity_bytes

    @property
    def fits(self) -> dict[str, bool]:
        hw = self.hardware
        if hw.weights_level == hw.activations_level:
            both = self.flash_bytes + self.peak_ram_bytes <= self.capacity("flash")
            return {"flash": both, "ram": both}
        return {
            "flash": self.flash_bytes <= self.capacity("flash"),
            "ram": self.peak_ram_bytes <= self.capacity("ram"),
        }

    def totals(self) -> dict[str, float | int | None]:
        compute = sum(layer.energy_compute_uj for layer in self.layers)
        memory = sum(layer.energy_memory_uj for layer in self.layers)
        static = sum(layer.energy_static_uj for layer in self.layers)
        return {
            "params": sum(layer.params for layer in self.layers),
            "macs": sum(layer.macs for layer in self.layers),
            "latency_ms": self.latency_ms,
            "energy_uj": compute + memory + static,
            "energy_compute_uj": compute,
            "energy_memory_uj": memory,
            "energy_static_uj": static,
            "weight_bytes": self.flash_bytes,
            "flash_bytes": self.flash_bytes,
            "peak_ram_bytes": self.peak_ram_bytes,
        }


def _layer(w: _Work, graph: Graph, hw: Hardware, override: str | None) -> LayerEstimate:
    node, counts = w.node, w.counts
    precision = layer_precision(graph, node, hw, override) if counts.op_class != "unknown" else "fp32"
    unit = hw.compute[precision]
    efficiency = hw.stack.efficiency.get(counts.op_class, 1.0)
    weights_level = hw.memory[hw.weights_level]
    act_level = hw.memory[hw.activations_level]

    # -- bytes -----------------------------------------------------------------------------------------
    weight_bytes = 0
    nonzero_fraction = 1.0
    for t, is_bias, nnz in w.weights:
        bits = bias_bits(precision) if is_bias else tensor_bits(t, override)
        weight_bytes += stored_weight_bytes(t, bits, hw, nnz)
        if not is_bias and t.mask is not None and hw.sparsity.skips_zeros:
            nonzero_fraction = nnz / max(t.size, 1)
    if w.in_place:
        act_read = act_write = 0
    else:
        act_read = sum(math.ceil(t.size * tensor_bits(t, override) / 8) for t in w.activation_inputs)
        act_write = sum(math.ceil(t.size * tensor_bits(t, override) / 8) for t in w.outputs)

    # -- cycles ----------------------------------------------------------------------------------------
    macs = counts.macs
    if nonzero_fraction < 1.0:
        useful = macs * nonzero_fraction
        mac_cycles = useful / (unit.macs_per_cycle * efficiency * hw.sparsity.efficiency)
        mac_cycles += useful * hw.sparsity.index_decode_cycles
        macs_done = useful
    else:
        mac_cycles = macs / (unit.macs_per_cycle * efficiency)
        macs_done = macs
    ops = counts.ops + w.asymmetric_extra_ops
    compute_cycles = mac_cycles + ops / (unit.ops_per_cycle * efficiency)
    bandwidth_scale = efficiency if counts.op_class == "data_movement" else 1.0
    memory_cycles = (
        weight_bytes / weights_level.bandwidth_bytes_per_cycle
        + (act_read + act_write) / act_level.bandwidth_bytes_per_cycle
    ) / bandwidth_scale
    overhead = hw.layer_overhead_cycles
    # a core that overlaps loads with arithmetic is bound by the slower of the two; an in-order MCU pays both
    busy = max(compute_cycles, memory_cycles) if hw.overlap_compute_memory else compute_cycles + memory_cycles
    bound = "compute" if compute_cycles >= memory_cycles else "memory"
    if overhead > busy:
        bound = "overhead"
    latency_s = (busy + overhead) / hw.clock_hz

    # -- energy (pJ -> uJ) -----------------------------------------------------------------------------
    compute_pj = macs_done * unit.mac_energy_pj + ops * unit.add_energy_pj
    memory_pj = (
        weight_bytes * weights_level.read_energy_pj_per_byte
        + act_read * act_level.read_energy_pj_per_byte
        + act_write * act_level.write_energy_pj_per_byte
    )
    static_uj = 0.0 if hw.energy_only else hw.static_power_mw * latency_s * 1e3  # mW * s = mJ = 1e3 uJ
    return LayerEstimate(
        name=node.name,
        op=node.op_type,
        op_class=counts.op_class,
        precision=precision,
        macs=macs,
        ops=ops,
        params=counts.params,
        weight_bytes=weight_bytes,
        activation_read_bytes=act_read,
        activation_write_bytes=act_write,
        compute_cycles=compute_cycles,
        memory_cycles=memory_cycles,
        overhead_cycles=overhead,
        latency_ms=None if hw.energy_only else latency_s * 1e3,
        energy_compute_uj=compute_pj * 1e-6,
        energy_memory_uj=memory_pj * 1e-6,
        energy_static_uj=static_uj,
        bound=bound,
    )


def estimate(
    graph: Graph | PreparedGraph,
    hw: Hardware,
    *,
    precision: str | None = None,
    plan: str | None = None,
) -> Estimate:
    """Latency, energy and memory of ``graph`` on ``hw``; ``precision`` runs every layer at one precision."""
    prepared = graph if isinstance(graph, PreparedGraph) else prepare(graph)
    g = prepared.graph
    layers = [_layer(w, g, hw, precision) for w in prepared.work]

    def activation_bytes(name: str) -> int:
        t = g.tensors[name]
        return math.ceil(t.size * tensor_bits(t, precision) / 8)

    arena = plan_arena(g, activation_bytes)
    return Estimate(g.name, hw, precision, plan, layers, arena, list(g.warnings))
