"""ONNX -> op graph, through the onnx package.

Initializers stay lazy (decoded on first use), so inspecting a model never copies its weights. External data
is read only from inside the model's own directory: a model file is untrusted input, and a location such as
``../../etc/passwd`` must not make edgesim read files the user never named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data
from onnx.helper import get_attribute_value, tensor_dtype_to_np_dtype

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Shape, Subgraph, Tensor
from simulator.importers.dynamic_dims import binding_hint

_STANDARD_DOMAINS = ("", "ai.onnx")
#: ops whose axis semantics changed at opset 13 (see ops/activation.py softmax_axes)
LEGACY_SOFTMAX = ("Softmax", "LogSoftmax")


def read_onnx(path: Path) -> onnx.ModelProto:
    """Parse and sanity-check an ONNX file; external data is loaded only from inside its directory."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgesimError(f"not a valid ONNX model ({reason}); check the file is complete and re-export it") from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise EdgesimError("the file holds no ONNX graph (no nodes); check it is a complete .onnx model")
    base = path.resolve().parent
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            _check_location(tensor, base)
            load_external_data_for_tensor(tensor, str(base))
    return model


def _check_location(tensor: onnx.TensorProto, base: Path) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    target = (base / location).resolve()
    if not location or Path(location).is_absolute() or not target.is_relative_to(base):
        raise EdgesimError(
            f"initializer {tensor.name!r} points at external data {location!r} outside the model's directory; "
            "edgesim only reads external data stored beside the model"
        )
    if not target.is_file():
        raise EdgesimError(
            f"initializer {tensor.name!r} needs external data file {location!r}, which is missing; "
            "copy it next to the model"
        )


def _np_dtype(elem_type: int, what: str) -> str:
    try:
        return np.dtype(tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        raise EdgesimError(f"{what} has element type {elem_type}, which edgesim does not handle") from None


def _declared_dims(vi: onnx.ValueInfoProto) -> list | None:
    tensor_type = vi.type.tensor_type
    return list(tensor_type.shape.dim) if tensor_type.HasField("shape") else None


def _is_static(vi: onnx.ValueInfoProto) -> bool:
    declared = _declared_dims(vi)
    return declared is not None and all(d.HasField("dim_value") and d.dim_value > 0 for d in declared)


def _input_shape(vi: onnx.ValueInfoProto, bound: dict[str, Shape]) -> Shape:
    """The shape of a graph input: its binding, else its declared (static) shape."""
    name = vi.name
    declared = _declared_dims(vi)
    if name in bound:
        shape = tuple(bound[name])
        if declared is not None and len(declared) != len(shape):
            raise EdgesimError(
                f"--input-shape gives {name} rank {len(shape)} but the model declares rank {len(declared)}"
            )
        return shape
    if declared is None:
        raise EdgesimError(f"input {name!r} has no declared shape; bind it with --input-shape {name}=D0,D1,...")
    return tuple(int(d.dim_value) for d in declared)


def _attributes(node: onnx.NodeProto) -> dict:
    attrs = {}
    for attr in node.attribute:
        value = get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, onnx.TensorProto):
            if uses_external_data(value):
                raise EdgesimError(f"node {node.name!r} has an attribute tensor stored outside the model")
            value = numpy_helper.to_array(value)
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        attrs[attr.name] = value
    return attrs


def _initializer(proto: onnx.TensorProto) -> Tensor:
    dtype = _np_dtype(proto.data_type, f"initializer {proto.name!r}")
    return Tensor(
        proto.name,
        tuple(int(d) for d in proto.dims),
        dtype,
        constant=True,
        factory=lambda: numpy_helper.to_array(proto),
    )


def _static(vi: onnx.ValueInfoProto) -> tuple[Shape, str] | None:
    """(shape, dtype) of a value whose every dimension is a known number, else None."""
    tensor_type = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    if any(d < 0 for d in dims):
        return None
    try:
        return tuple(dims), np.dtype(tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    except (KeyError, TypeError, ValueError):
        return None


def _infer_onnx(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # onnx raises many types here; inference is best effort
        return model


def _shape_hints(model: onnx.ModelProto, input_shapes: dict[str, Shape] | None = None) -> dict[str, tuple[Shape, str]]:
    """Static shapes the model records or onnx's own inference (with data propagation) gives once the dynamic
    inputs are bound to ``input_shapes``, for outputs of ops edgesim does not model."""
    if input_shapes:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        for vi in model.graph.input:
            if vi.name in input_shapes and vi.type.HasField("tensor_type"):
                shape = vi.type.tensor_type.shape
                shape.ClearField("dim")
                for d in input_shapes[vi.name]:
                    shape.dim.add().dim_value = int(d)
    inferred = _infer_onnx(model)
    hints = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output]:
        static = _static(vi)
        if static is not None:
            hints[vi.name] = static
    return hints


#: constants up to this many elements are handed to onnx's shape inference by value (a TopK's k, a shape)
_PROPAGATED_CONSTANT_ELEMENTS = 1024


def unknown_op_shapes(model: onnx.ModelProto) -> Callable[[Node, list[Tensor | None]], list[tuple[Shape, str] | None]]:
    """Output shapes of one node of a standard-domain op edgesim does not model: onnx's own shape inference
    (with data propagation) on a one-node model given the shapes edgesim has inferred up to that node, so it
    sees bound dynamic dimensions and folded constants. Ops of other domains get nothing (onnx has no schema
    for them); the model's recorded shapes serve those."""

    def shapes(node: Node, inputs: list[Tensor | None]) -> list[tuple[Shape, str] | None]:
        domain, _, op_type = node.op_type.rpartition(".")
        if domain not in _STANDARD_DOMAINS:
            return []
        attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v for k, v in node.attrs.items()}
        proto = helper.make_node(op_type, node.inputs, node.outputs, name=node.name, **attrs)
        feeds, inits = [], []
        for name, t in zip(node.inputs, inputs, strict=True):
            if not name or t is None:
                continue
            if t.constant and t.size <= _PROPAGATED_CONSTANT_ELEMENTS and t.data is not None:
                inits.append(numpy_helper.from_array(np.asarray(t.data), name))
            else:
                elem = helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype))
                feeds.append(helper.make_tensor_value_info(name, elem, t.shape))
        outputs = [helper.make_empty_tensor_value_info(n) for n in node.outputs if n]
        graph = helper.make_graph([proto], "node", feeds, outputs, inits)
        one = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
        one.functions.extend(model.functions)
        inferred = _infer_onnx(one)
        found = {vi.name: _static(vi) for vi in [*inferred.graph.value_info, *inferred.graph.output]}
        return [found.get(n) for n in node.outputs]

    return shapes


@dataclass
class _Scope:
    """What converting one (sub)graph's nodes needs: node names taken so far (model-wide, so inlining a
    branch never repeats one), value names taken so far, and the renames of the enclosing subgraphs."""

    opset: int
    names: set[str]
    values: set[str]
    rename: dict[str, str]
    #: the model's constants and inputs so far (input types are checked against the opset's schema)
    tensors: dict[str, Tensor] = field(default_factory=dict)


def _convert_nodes(protos, scope: _Scope) -> tuple[list[Node], bool]:
    """Nodes of one graph or subgraph, control-flow bodies converted to :class:`Subgraph` recursively."""
    from simulator.importers.onnx_opset import check_node_opset
    from simulator.ops import get_op

    nodes = []
    has_unknown = False
    for i, proto in enumerate(protos):
        node_name = proto.name or f"{proto.op_type}_{i}"
        while node_name in scope.names:
            node_name = f"{node_name}_{i}"
        scope.names.add(node_name)
        attrs = _attributes(proto)
        for key, value in attrs.items():
            if isinstance(value, onnx.GraphProto):
                attrs[key], unknown = _subgraph(value, node_name, scope)
                has_unknown |= unknown
        op_type = proto.op_type if proto.domain in _STANDARD_DOMAINS else f"{proto.domain}.{proto.op_type}"
        if proto.domain in _STANDARD_DOMAINS and scope.opset > 0:
            # before defaults that depend on the opset are filled in
            check_node_opset(proto, Node(node_name, op_type, list(proto.input), list(proto.output), attrs),
                             scope.opset, scope.tensors)  # fmt: skip
        if op_type in LEGACY_SOFTMAX and scope.opset < 13:
            # before opset 13 these normalise over every axis from ``axis`` (default 1) on
            attrs.setdefault("axis", 1)
            attrs["legacy_2d"] = 1
        has_unknown |= get_op(op_type) is None
        renamed = [[scope.rename.get(n, n) for n in names] for names in (proto.input, proto.output)]
        nodes.append(Node(node_name, op_type, *renamed, attrs))
    return nodes, has_unknown


def _subgraph(g: onnx.GraphProto, owner: str, scope: _Scope) -> tuple[Subgraph, bool]:
    """A control-flow body. ONNX lets sibling bodies reuse value names; a name taken already is prefixed
    with the owning node's name so every value in the model has one producer once a body is inlined."""
    local = [vi.name for vi in g.input] + [t.name for t in g.initializer] + [o for n in g.node for o in n.output]
    clashes = {name: f"{owner}/{name}" for name in local if name and name in scope.values}
    inner = _Scope(scope.opset, scope.names, scope.values, {**scope.rename, **clashes}, scope.tensors)
    scope.values.update(inner.rename.get(name, name) for name in local if name)
    tensors = {}
    for proto in g.initializer:
        name = inner.rename.get(proto.name, proto.name)
        tensors[name] = replace(_initializer(proto), name=name)
    nodes, has_unknown = _convert_nodes(g.node, inner)
    inputs = [inner.rename.get(vi.name, vi.name) for vi in g.input]
    outputs = [inner.rename.get(vi.name, vi.name) for vi in g.output]
    return Subgraph(nodes, tensors, inputs, outputs), has_unknown


def _bound_value(vi: onnx.ValueInfoProto, value, dtype: str) -> Tensor:
    """An input the user fixed (``--input-value sr=16000``): a constant, so the If / Loop nodes and shapes
    that depend on it fold at import. Its rank and static dims must agree with the declaration."""
    array = np.asarray(value)
    declared = list(vi.type.tensor_type.shape.dim) if vi.type.tensor_type.HasField("shape") else None
    if declared is not None:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in declared]
        if array.size == math.prod(d or 1 for d in dims) and None not in dims:
            array = array.reshape(dims)
        if array.ndim != len(dims) or any(d is not None and d != a for d, a in zip(dims, array.shape, strict=True)):
            shape = "x".join("?" if d is None else str(d) for d in dims) or "a scalar"
            raise EdgesimError(
                f"--input-value {vi.name}: {array.size} value(s) do not fit the declared shape ({shape})"
            )
    if np.dtype(dtype).kind in "iub" and array.dtype.kind == "f" and not np.all(array == np.round(array)):
        raise EdgesimError(f"--input-value {vi.name}: the input is {dtype}, give integers")
    return Tensor.from_array(vi.name, array.astype(dtype))


def onnx_to_graph(
    model: onnx.ModelProto,
    name: str,
    input_shapes: dict[str, Shape] | None = None,
    input_values: dict[str, np.ndarray] | None = None,
) -> tuple[Graph, bool]:
    """The raw op graph of a model (shapes of inputs and constants only) and whether it uses unknown ops.
    ``input_values`` turns inputs into constants (a sample rate, a mode flag the graph branches on)."""
    values = dict(input_values or {})
    bound = dict(input_shapes or {})
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS), 0)
    tensors: dict[str, Tensor] = {}
    for proto in g.initializer:
        tensors[proto.name] = _initializer(proto)
    declared = [vi.name for vi in g.input if vi.name not in tensors]
    for option, given in (("--input-shape", bound), ("--input-value", values)):
        unknown_bound = sorted(set(given) - set(declared))
        if unknown_bound:
            raise EdgesimError(
                f"{option} names {', '.join(unknown_bound)}, but the model's inputs are {', '.join(declared)}"
            )
    unbound = [
        vi
        for vi in g.input
        if vi.name not in tensors
        and vi.name not in bound
        and vi.name not in values
        and _declared_dims(vi) is not None
        and not _is_static(vi)
    ]
    if unbound:
        raise EdgesimError(binding_hint(model, name, unbound))
    inputs = []
    for vi in g.input:
        if vi.name in tensors:
            continue  # old exporters list initializers as inputs too
        if not vi.type.HasField("tensor_type"):
            raise EdgesimError(f"input {vi.name!r} is not a tensor; edgesim models tensor inputs only")
        dtype = _np_dtype(vi.type.tensor_type.elem_type, f"input {vi.name!r}")
        if vi.name in values:
            tensors[vi.name] = _bound_value(vi, values[vi.name], dtype)
            continue
        tensors[vi.name] = Tensor(vi.name, _input_shape(vi, bound), dtype)
        inputs.append(vi.name)
    scope = _Scope(
        opset, names=set(), values=set(tensors) | {o for n in g.node for o in n.output if o}, rename={}, tensors=tensors
    )
    nodes, has_unknown = _convert_nodes(g.node, scope)
    outputs = [o.name for o in g.output]
    return Graph(g.name or name, nodes, tensors, inputs, outputs), has_unknown


def load_onnx(
    path: Path,
    input_shapes: dict[str, Shape] | None = None,
    *,
    allow_unknown: bool = False,
    input_values: dict[str, np.ndarray] | None = None,
) -> Graph:
    """Read an ONNX file into a shape-inferred op graph with constants folded and batch norm folded (If
    and Loop nodes inlined where their condition and trip count fold, see ops/control_flow.py)."""
    from simulator.passes.fold_batchnorm import fold_batchnorm
    from simulator.passes.infer_shapes import infer_shapes

    model = read_onnx(path)
    graph, has_unknown = onnx_to_graph(model, path.stem, input_shapes, input_values)
    hints = unknown = None
    if has_unknown and allow_unknown:
        hints, unknown = _shape_hints(model, input_shapes), unknown_op_shapes(model)
    graph = infer_shapes(graph, allow_unknown=allow_unknown, hints=hints, unknown_shapes=unknown)
    return fold_batchnorm(graph)
