"""The op graph every part of edgesim shares: tensors, ops, and their execution order.

Nodes are operations, edges are tensors (a networkx MultiDiGraph keyed by tensor name). Weight tensors carry
the fields that compression passes rewrite -- sparsity mask, quantization parameters, codebook -- so that passes,
the estimator and the executors all read one structure. Graphs are treated as values: passes build new graphs
(see :meth:`Graph.replace`) and never mutate the one they were given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np

from simulator.errors import EdgesimError

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Affine quantization ``real = (q - zero_point) * scale``.

    ``scale`` and ``zero_point`` are 0-d for per-tensor quantization, or 1-d along ``axis`` for per-channel.
    ``bits`` may be anything from 1 to 32; ``symmetric`` means the zero point is fixed at 0, which is what
    saves the zero-point correction terms in integer kernels.
    """

    bits: int
    scale: np.ndarray
    zero_point: np.ndarray
    symmetric: bool = True
    axis: int | None = None
    signed: bool = True
    #: the integers a model file stored for this constant, when it stored integers (QDQ / QOperator import)
    integers: np.ndarray | None = field(default=None, repr=False)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def broadcast(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero point) as float64 arrays that broadcast against a tensor of ``rank`` dims."""
        scale = np.asarray(self.scale, np.float64)
        zero_point = np.asarray(self.zero_point, np.float64)
        if self.axis is not None:
            shape = [1] * rank
            shape[self.axis] = -1
            scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
        return scale, zero_point

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True, eq=False)
class Codebook:
    """Weight sharing: every weight is ``centroids[indices]`` (Deep Compression, Han et al. 2016)."""

    centroids: np.ndarray
    indices: np.ndarray

    @property
    def index_bits(self) -> int:
        return max(1, math.ceil(math.log2(len(self.centroids))))


@dataclass(frozen=True)
class Encoding:
    """How a weight is laid out in flash. ``format``: dense, csr (absolute column indices of
    ``index_bits``), csr-relative (Deep Compression: gaps of ``index_bits`` with filler entries when a gap
    overflows) or bitmask (one bit per weight); ``huffman`` entropy-codes the value and index streams."""

    format: str = "dense"
    index_bits: int = 0
    huffman: bool = False


@dataclass(eq=False)
class Tensor:
    """A named tensor: shape, numpy dtype name and, for constants, its values.

    Constant values may be given lazily through ``factory`` (the zoo's seeded weights), so that counting the
    cost of VGG-16 never allocates its 138 M weights.
    """

    name: str
    shape: Shape | None = None
    dtype: str = "float32"
    constant: bool = False
    factory: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    mask: np.ndarray | None = field(default=None, repr=False)
    quant: QuantParams | None = None
    codebook: Codebook | None = field(default=None, repr=False)
    encoding: Encoding | None = None
    _data: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_array(cls, name: str, array: np.ndarray, **fields: Any) -> Tensor:
        array = np.asarray(array)
        return cls(name, tuple(int(d) for d in array.shape), array.dtype.name, True, _data=array, **fields)

    def with_values(self, values: np.ndarray, **changes: Any) -> Tensor:
        """A copy holding new constant values (same name; other fields kept unless changed)."""
        values = np.asarray(values)
        return replace(
            self, shape=tuple(int(d) for d in values.shape), dtype=values.dtype.name, constant=True,
            factory=None, _data=values, **changes,
        )  # fmt: skip

    @property
    def data(self) -> np.ndarray:
        """The constant's values (materialised on first use)."""
        if not self.constant:
            raise ValueError(f"tensor {self.name!r} is an activation and has no constant values")
        if self._data is None:
            assert self.factory is not None, self.name
            self._data = np.asarray(self.factory())
        return self._data

    @property
    def size(self) -> int:
        assert self.shape is not None, self.name
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor in its in-memory dtype."""
        return self.size * self.itemsize

    @property
    def stored_bits(self) -> int:
        """Bits per element as stored: the quantized width when quantized, else the dtype's."""
        return self.quant.bits if self.quant is not None else 8 * self.itemsize


@dataclass(eq=False)
class Node:
    """One operation. ``inputs``/``outputs`` are tensor names; an empty name is an omitted optional input."""

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass(eq=False)
class Subgraph:
    """The body of a control-flow op (If's branches, Loop's body), as the importer read it: nodes in file
    order, its own constants, its formal inputs and its outputs. Names it does not define refer to the
    enclosing scope. Shape inference inlines a subgraph once its condition or trip count is known."""

    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]

    def defined(self) -> set[str]:
        """Every value this subgraph or a subgraph nested in it defines (inputs, constants, node outputs)."""
        names = set(self.inputs) | set(self.tensors)
        for node in self.nodes:
            names.update(n for n in node.outputs if n)
            for value in node.attrs.values():
                if isinstance(value, Subgraph):
                    names |= value.defined()
        return names

    def outer_names(self) -> set[str]:
        """Values the subgraph (or one nested in it) reads from the enclosing scope."""
        read: set[str] = set()
        for node in self.nodes:
            read.update(n for n in node.inputs if n)
            for value in node.attrs.values():
                if isinstance(value, Subgraph):
                    read |= value.outer_names()
        read.update(self.outputs)
        return read - self.defined()

    def renamed(self, prefix: str) -> Subgraph:
        """A copy whose own values and node names carry ``prefix`` (one copy per inlined use, so two uses
        never write one tensor); references to the enclosing scope stay as they are."""
        mapping = {name: prefix + name for name in self.defined()}
        return self._mapped(mapping, prefix)

    def _mapped(self, mapping: dict[str, str], prefix: str) -> Subgraph:
        def rename(name: str) -> str:
            return mapping.get(name, name) if name else name

        nodes = [
            Node(
                prefix + node.name,
                node.op_type,
                [rename(n) for n in node.inputs],
                [rename(n) for n in node.outputs],
                {k: v._mapped(mapping, prefix) if isinstance(v, Subgraph) else v for k, v in node.attrs.items()},
            )
            for node in self.nodes
        ]
        tensors = {rename(k): replace(t, name=rename(k)) for k, t in self.tensors.items()}
        return Subgraph(nodes, tensors, [rename(n) for n in self.inputs], [rename(n) for n in self.outputs])


class Graph:
    """An op graph with a deterministic execution order.

    The order is a topological sort with ties broken by the order nodes were given in (the model file's), so
    the same model always executes, plans memory and prints in the same order.
    """

    def __init__(
        self,
        name: str,
        nodes: Sequence[Node],
        tensors: dict[str, Tensor],
        inputs: Sequence[str],
        outputs: Sequence[str],
        warnings: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
    ):
        self.name = name
        #: facts about the model that are not ops (its source, a held-out data set for accuracy)
        self.metadata = dict(metadata or {})
        self.nodes: list[Node] = list(nodes)
        self.tensors = dict(tensors)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.warnings = list(warnings)
        self._check_names()

    def _check_names(self) -> None:
        seen_nodes: set[str] = set()
        for node in self.nodes:
            if node.name in seen_nodes:
                raise EdgesimError(f"two nodes are named {node.name!r}; node names must be unique")
            seen_nodes.add(node.name)
        for name in self.inputs:
            if name not in self.tensors:
                raise EdgesimError(f"graph input {name!r} has no tensor description")

    # -- structure -------------------------------------------------------------------------------------

    @cached_property
    def producers(self) -> dict[str, Node]:
        """Tensor name -> the node that writes it."""
        out: dict[str, Node] = {}
        for node in self.nodes:
            for name in node.outputs:
                if not name:
                    continue
                if name in out:
                    raise EdgesimError(
                        f"tensor {name!r} is written by both {out[name].name!r} and {node.name!r}; "
                        "every tensor needs exactly one producer"
                    )
                if name in self.tensors and self.tensors[name].constant:
                    raise EdgesimError(f"node {node.name!r} writes {name!r}, which is also a constant")
                out[name] = node
        return out

    @cached_property
    def consumers(self) -> dict[str, list[Node]]:
        """Tensor name -> nodes that read it, in node order."""
        out: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(n for n in node.inputs if n):
                out.setdefault(name, []).append(node)
        return out

    @cached_property
    def nx_graph(self) -> nx.MultiDiGraph:
        """Nodes are op names, edges producer -> consumer keyed by the tensor they carry."""
        g = nx.MultiDiGraph()
        for node in self.nodes:
            g.add_node(node.name, node=node)
        producers = self.producers
        for node in self.nodes:
            for name in node.inputs:
                if not name:
                    continue
                if name in producers:
                    g.add_edge(producers[name].name, node.name, key=name)
                elif name not in self.tensors:
                    raise EdgesimError(
                        f"node {node.name!r} ({node.op_type}) reads {name!r}, which no node, input or "
                        "initializer defines; the model is incomplete or corrupt"
                    )
            for body in (v for v in node.attrs.values() if isinstance(v, Subgraph)):
                # a control-flow body reads enclosing values by name: order their producers first
                for name in sorted(body.outer_names()):
                    if name in producers:
                        g.add_edge(producers[name].name, node.name, key=name)
        return g

    @cached_property
    def order(self) -> list[Node]:
        """Deterministic execution order (topological, ties broken by position in the model)."""
        g = self.nx_graph
        position = {node.name: i for i, node in enumerate(self.nodes)}
        try:
            names = list(nx.lexicographical_topological_sort(g, key=position.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(g)
            path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
            raise EdgesimError(f"the graph has a cycle ({path}); an op graph must be acyclic") from None
        return [g.nodes[name]["node"] for name in names]

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def node(self, name: str) -> Node:
        return self.nx_graph.nodes[name]["node"]

    def input_tensors(self, node: Node) -> list[Tensor | None]:
        return [self.tensors[n] if n else None for n in node.inputs]

    def output_tensors(self, node: Node) -> list[Tensor]:
        return [self.tensors[n] for n in node.outputs if n]

    # -- building new graphs ---------------------------------------------------------------------------

    def replace(
        self,
        nodes: Iterable[Node] | None = None,
        tensors: dict[str, Tensor] | None = None,
        outputs: Sequence[str] | None = None,
        warnings: Sequence[str] | None = None,
    ) -> Graph:
        """A new graph with some parts swapped; unused tensors are dropped."""
        new_nodes = list(self.nodes if nodes is None else nodes)
        new_tensors = dict(self.tensors if tensors is None else tensors)
        new_outputs = list(self.outputs if outputs is None else outputs)
        used = set(self.inputs) | set(new_outputs)
        for node in new_nodes:
            used.update(n for n in node.inputs if n)
            used.update(n for n in node.outputs if n)
        new_tensors = {k: v for k, v in new_tensors.items() if k in used}
        return Graph(
            self.name,
            new_nodes,
            new_tensors,
            self.inputs,
            new_outputs,
            self.warnings if warnings is None else warnings,
            self.metadata,
        )

    def copy_tensor(self, name: str, **changes: Any) -> Tensor:
        """A copy of a tensor with some fields changed (values are shared, never written in place)."""
        return replace(self.tensors[name], **changes)
