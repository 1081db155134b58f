"""Graph + hardware profile (+ precision) -> latency, energy and memory, per layer and in total.

The model is documented in docs/hardware-profiles.md. :func:`prepare` does the work that depends only on the
graph (counts, tensor lists, sparsity), so sweeping many profiles or precisions over one graph only repeats
the arithmetic in :func:`estimate`. Nothing here keeps state between calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.estimate.arena import ArenaPlan, plan_arena
from simulator.estimate.precision import bias_bits, layer_precision, tensor_bits
from simulator.estimate.storage import nonzeros, stored_weight_bytes
from simulator.graph import Graph, Node, Tensor
from simulator.hardware import Hardware
from simulator.ops import get_op
from simulator.passes.deploy import for_deployment
from simulator.passes.prune import reduction_axis
from simulator.summary import LayerCounts, count


@dataclass(frozen=True)
class _Weight:
    tensor: Tensor
    is_bias: bool
    nonzeros: int
    #: M -> the most non-zeros in any group of M consecutive weights along the input dimension (masked only)
    group_fill: dict[int, int]


def _group_fill(graph: Graph, node: Node, t: Tensor) -> dict[int, int]:
    if t.mask is None or len(t.shape) < 2:
        return {}
    axis = reduction_axis(node)
    moved = np.moveaxis(np.asarray(t.mask), axis, -1)
    out = {}
    for m in (2, 4, 8, 16):
        if moved.shape[-1] % m == 0:
            out[m] = int(moved.reshape(-1, m).sum(axis=1).max())
    return out


@dataclass(frozen=True)
class _Work:
    """What one layer does, independent of hardware."""

    node: Node
    counts: LayerCounts
    in_place: bool
    activation_inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    weights: tuple[_Weight, ...]
    asymmetric_extra_ops: int  # the Z_W * sum(X) adds of asymmetric weights


@dataclass(frozen=True)
class PreparedGraph:
    graph: Graph
    work: tuple[_Work, ...]
    #: arena plans already made for this graph, by precision override: the plan depends on the tensors' sizes
    #: only, so sweeping profiles or stacks over one prepared graph plans each arena once
    arenas: dict[str | None, ArenaPlan] = field(default_factory=dict, compare=False, repr=False)

    def arena(self, precision: str | None) -> ArenaPlan:
        if precision not in self.arenas:
            g = self.graph

            def activation_bytes(name: str) -> int:
                t = g.tensors[name]
                return math.ceil(t.size * tensor_bits(t, precision) / 8)

            self.arenas[precision] = plan_arena(g, activation_bytes)
        return self.arenas[precision]


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
        weights = [
            _Weight(
                inputs[i], i in biases, nonzeros(inputs[i]), {} if i in biases else _group_fill(graph, node, inputs[i])
            )
            for i in slots
        ]
        work.append(
            _Work(
                node=node,
                counts=counts,
                in_place=bool(op is not None and op.in_place),
                activation_inputs=tuple(t for t in inputs if t is not None and not t.constant),
                outputs=tuple(graph.output_tensors(node)),
                weights=tuple(weights),
                asymmetric_extra_ops=_asymmetric_extra_ops(node, counts, [w.tensor for w in weights if not w.is_bias]),
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
    weight_bytes: int  # in flash, in the plan's encoding
    weight_read_bytes: int  # read per inference, in the form the kernel runs (no Huffman; codebook if supported)
    sparse_mode: str  # dense, unstructured or n:m: how the kernel treats pruned weights
    sparsity: float  # fraction of the layer's (non-bias) weights pruned
    activation_read_bytes: int
    activation_write_bytes: int
    compute_cycles: float
    memory_cycles: float
    overhead_cycles: float
    latency_ms: float | None
    #: energy the way a board measures it: the chip's active power (static_power_mw: clocks, leakage, fetch
    #: and control of the whole chip while it runs) over the latency, plus what each MAC and byte adds on top
    energy_datapath_uj: float  # incremental: MACs and other ops x pJ each at the layer's precision
    energy_memory_uj: float
    energy_baseline_uj: float  # active baseline: static_power_mw x latency
    bound: str

    @property
    def energy_uj(self) -> float:
        return self.energy_datapath_uj + self.energy_memory_uj + self.energy_baseline_uj


@dataclass(frozen=True)
class Estimate:
    model: str
    hardware: Hardware
    precision: str | None
    plan: str | None
    layers: list[LayerEstimate]
    arena: ArenaPlan
    warnings: list[str] = field(default_factory=list)
    #: where the layers' precisions come from (simulator.deployment: model, plan, --precision or post-training
    #: quantization) and the one-line notes that explain it to the user
    precision_source: str = "model"
    notes: list[str] = field(default_factory=list)

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
        datapath = sum(layer.energy_datapath_uj for layer in self.layers)
        memory = sum(layer.energy_memory_uj for layer in self.layers)
        baseline = sum(layer.energy_baseline_uj for layer in self.layers)
        return {
            "params": sum(layer.params for layer in self.layers),
            "macs": sum(layer.macs for layer in self.layers),
            "latency_ms": self.latency_ms,
            "energy_uj": datapath + memory + baseline,
            "energy_datapath_uj": datapath,
            "energy_memory_uj": memory,
            "energy_baseline_uj": baseline,
            "weight_bytes": self.flash_bytes,
            "flash_bytes": self.flash_bytes,
            "peak_ram_bytes": self.peak_ram_bytes,
        }


def _winograd_eligible(node: Node, w: _Work) -> bool:
    """A 3x3, stride-1, undilated, ungrouped 2-D convolution: what Winograd kernels accelerate."""
    if node.op_type != "Conv" or int(node.attr("group", 1)) != 1:
        return False
    main = [x.tensor for x in w.weights if not x.is_bias]
    return (
        bool(main)
        and tuple(main[0].shape[2:]) == (3, 3)
        and list(node.attr("strides", [1, 1])) == [1, 1]
        and list(node.attr("dilations", [1, 1])) == [1, 1]
    )


def _sparsity(w: _Work) -> float:
    main = [x for x in w.weights if not x.is_bias]
    total = sum(x.tensor.size for x in main)
    return 1.0 - sum(x.nonzeros for x in main) / total if total else 0.0


@dataclass(frozen=True)
class _WeightCosts:
    flash_bytes: int
    read_bytes: int
    mode: str
    density: float  # fraction of the dense MACs the kernel performs
    lookups: bool


def _weight_costs(w: _Work, precision: str, hw: Hardware, override: str | None) -> _WeightCosts:
    """How a layer's weights are stored, read and multiplied on ``hw``.

    Hardware N:M support (a pattern the weights satisfy) runs M/N faster at no efficiency cost and reads
    log2(M) bits of metadata per kept weight; unstructured zero-skipping runs the non-zeros at the sparse
    kernel's efficiency and reads CSR; otherwise zeros are multiplied like any weight. A codebook the
    hardware can look up is read as indices; one it cannot is expanded to dense weights at load.
    """
    flash = read = 0
    mode, density, lookups = "dense", 1.0, False
    for weight in w.weights:
        t = weight.tensor
        bits = bias_bits(precision) if weight.is_bias else tensor_bits(t, override)
        flash += stored_weight_bytes(t, bits, hw, weight.nonzeros)
        if weight.is_bias:
            read += math.ceil(t.size * bits / 8)
            continue
        looked_up = t.codebook is not None and hw.codebook.supported
        lookups |= looked_up
        value_bits = t.codebook.index_bits if looked_up else bits
        table = len(t.codebook.centroids) * 4 if looked_up else 0
        patterns = [(n, m) for n, m in hw.sparsity.n_m_patterns if weight.group_fill.get(m, m + 1) <= n]
        if patterns:
            n, m = min(patterns, key=lambda p: p[0] / p[1])
            mode, density = "n:m", n / m
            read += math.ceil(t.size * n / m * (value_bits + math.log2(m)) / 8) + table
        elif t.mask is not None and hw.sparsity.skips_zeros:
            mode, density = "unstructured", weight.nonzeros / max(t.size, 1)
            rows = t.shape[0] if t.shape else 1
            read += math.ceil(weight.nonzeros * (value_bits + hw.sparsity.index_bits) / 8) + 4 * (rows + 1) + table
        else:
            read += math.ceil(t.size * value_bits / 8) + table
    return _WeightCosts(flash, read, mode, density, lookups)


def _layer(w: _Work, graph: Graph, hw: Hardware, override: str | None) -> LayerEstimate:
    node, counts = w.node, w.counts
    precision = layer_precision(graph, node, hw, override) if counts.op_class != "unknown" else "fp32"
    unit = hw.compute[precision]
    # every class has a number in every profile (the schema requires them); an unknown op does no work
    efficiency = hw.stack.efficiency[counts.op_class] if counts.op_class != "unknown" else 1.0
    weights_level = hw.memory[hw.weights_level]
    act_level = hw.memory[hw.activations_level]

    # -- weights: flash in the plan's encoding, reads and MACs in the form the kernel runs -----------
    weights = _weight_costs(w, precision, hw, override)
    if w.in_place or counts.op_class == "unknown":
        # an op edgesim does not model (--allow-unknown) costs nothing at all: no traffic, no overhead
        act_read = act_write = 0
    else:
        act_read = sum(math.ceil(t.size * tensor_bits(t, override) / 8) for t in w.activation_inputs)
        act_write = sum(math.ceil(t.size * tensor_bits(t, override) / 8) for t in w.outputs)

    # -- cycles ----------------------------------------------------------------------------------------
    macs = counts.macs
    macs_done = macs * weights.density
    if hw.stack.winograd_3x3_speedup > 1.0 and weights.mode == "dense" and _winograd_eligible(node, w):
        macs_done /= hw.stack.winograd_3x3_speedup
    rate = unit.macs_per_cycle * efficiency * (hw.sparsity.efficiency if weights.mode == "unstructured" else 1.0)
    mac_cycles = macs_done / rate
    if weights.mode == "unstructured":
        mac_cycles += macs_done * hw.sparsity.index_decode_cycles
    if weights.lookups:
        mac_cycles += macs_done * hw.codebook.lookup_cycles_per_weight
    ops = counts.ops + w.asymmetric_extra_ops
    compute_cycles = mac_cycles + ops / (unit.ops_per_cycle * efficiency)
    bandwidth_scale = efficiency if counts.op_class == "data_movement" else 1.0
    memory_cycles = (
        weights.read_bytes / weights_level.bandwidth_bytes_per_cycle
        + (act_read + act_write) / act_level.bandwidth_bytes_per_cycle
    ) / bandwidth_scale
    overhead = hw.layer_overhead_cycles if counts.op_class != "unknown" else 0
    # a core that overlaps loads with arithmetic is bound by the slower of the two; an in-order MCU pays both
    busy = max(compute_cycles, memory_cycles) if hw.overlap_compute_memory else compute_cycles + memory_cycles
    bound = "compute" if compute_cycles >= memory_cycles else "memory"
    if overhead > busy:
        bound = "overhead"
    latency_s = (busy + overhead) / hw.clock_hz

    # -- energy (pJ -> uJ) -----------------------------------------------------------------------------
    compute_pj = macs_done * unit.mac_energy_pj + ops * unit.add_energy_pj
    if weights.lookups:
        compute_pj += macs_done * hw.codebook.lookup_energy_pj
    memory_pj = (
        weights.read_bytes * weights_level.read_energy_pj_per_byte
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
        weight_bytes=weights.flash_bytes,
        weight_read_bytes=weights.read_bytes,
        sparse_mode=weights.mode,
        sparsity=_sparsity(w),
        activation_read_bytes=act_read,
        activation_write_bytes=act_write,
        compute_cycles=compute_cycles,
        memory_cycles=memory_cycles,
        overhead_cycles=overhead,
        latency_ms=None if hw.energy_only else latency_s * 1e3,
        energy_datapath_uj=compute_pj * 1e-6,
        energy_memory_uj=memory_pj * 1e-6,
        energy_baseline_uj=static_uj,
        bound=bound,
    )


def estimate(
    graph: Graph | PreparedGraph,
    hw: Hardware,
    *,
    precision: str | None = None,
    plan: str | None = None,
    precision_source: str | None = None,
    notes: list[str] | None = None,
) -> Estimate:
    """Latency, energy and memory of ``graph`` on ``hw``; ``precision`` runs every layer at one precision.
    ``precision_source`` and ``notes`` say how the graph came to be what is estimated (simulator.deployment)."""
    prepared = graph if isinstance(graph, PreparedGraph) else prepare(graph)
    g = prepared.graph
    layers = [_layer(w, g, hw, precision) for w in prepared.work]
    arena = prepared.arena(precision)
    source = precision_source or ("--precision" if precision else ("plan" if plan else "model"))
    return Estimate(g.name, hw, precision, plan, layers, arena, list(g.warnings), source, list(notes or []))
