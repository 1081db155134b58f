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
from onnx.external_data_helper import uses_external_data
from onnx.helper import get_attribute_value, tensor_dtype_to_field, tensor_dtype_to_np_dtype

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Shape, Subgraph, Tensor
from simulator.importers.dynamic_dims import binding_hint
from simulator.limits import check_elements, read_file, regular_file

_STANDARD_DOMAINS = ("", "ai.onnx")
#: ops whose axis semantics changed at opset 13 (see ops/activation.py softmax_axes)
LEGACY_SOFTMAX = ("Softmax", "LogSoftmax")


def read_onnx(path: Path) -> onnx.ModelProto:
    """Parse an ONNX file and check what edgesim's import relies on (every graph output computed, no string
    tensors, initializer data the size its dims and type say). External data is read only from inside the
    model's directory, after its offsets and lengths are checked against the file. onnx's own checker runs
    after edgesim's import (:func:`check_onnx`), so that what edgesim can explain in its terms (a cycle
    through named nodes, a shape mismatch at a layer) is said that way, and the checker refuses the rest."""
    data = read_file(path, "ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError, TypeError) as exc:
        raise EdgesimError(
            f"not a valid ONNX model ({_first_line(exc)}); check the file is complete and re-export it"
        ) from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise EdgesimError("the file holds no ONNX graph (no nodes); check it is a complete .onnx model")
    base = path.resolve().parent
    for tensor in _all_tensors(model):
        if uses_external_data(tensor):
            _load_external(tensor, base)
    _check_structure(model)
    return model


def _first_line(exc: BaseException) -> str:
    """An exception's message as one line (onnx's checker spreads one over several)."""
    text = " ".join(str(exc).split())
    return text[:400] if text else type(exc).__name__


def _all_tensors(model: onnx.ModelProto):
    """Initializers and attribute tensors of the main graph (subgraphs are checked by onnx's checker)."""
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t


def check_onnx(model: onnx.ModelProto) -> None:
    """onnx's checker with full_check (strict shape inference) where the model is small enough to hand it.

    A graph output declared without a shape (``make_tensor_value_info(name, type, None)``, as tools write the
    intermediate tensors they expose; onnxruntime runs such models) is checked with the shape onnx infers for
    it: the checker requires the field on the main graph's outputs, and edgesim infers every shape anyway."""
    try:
        onnx.checker.check_model(_with_output_shapes(model), full_check=model.ByteSize() < 2**31 - 1)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EdgesimError(f"onnx's checker refuses the model: {_first_line(exc)}") from None
    except (ValueError, RuntimeError, TypeError) as exc:  # the checker's own failures on malformed input
        raise EdgesimError(f"onnx's checker cannot read the model: {_first_line(exc)}") from None


def _with_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy whose untyped or shapeless graph outputs carry the type the model's value_info or
    onnx's inference give them (value_info first: a QOperator model's contrib ops are annotated there; a
    declared element type is kept). Inference runs without those outputs, so a declared type it disagrees
    with cannot stop it."""

    def complete(vi: onnx.ValueInfoProto) -> bool:
        t = vi.type.tensor_type
        return vi.type.HasField("tensor_type") and t.HasField("shape") and t.elem_type != 0

    missing = {o.name for o in model.graph.output if not complete(o)}
    if not missing:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [o for o in copy.graph.output if o.name not in missing]
    del copy.graph.output[:]
    copy.graph.output.extend(kept)
    try:
        inferred = list(onnx.shape_inference.infer_shapes(copy).graph.value_info)
    except Exception:  # noqa: BLE001 - onnx raises many types; the checker then says what is wrong
        inferred = []
    types = {vi.name: vi.type for vi in [*inferred, *model.graph.value_info] if complete(vi)}
    del copy.graph.output[:]
    copy.graph.output.extend(model.graph.output)
    for output in copy.graph.output:
        if output.name in missing and output.name in types:
            declared = output.type.tensor_type.elem_type
            output.type.CopyFrom(types[output.name])
            if declared:
                output.type.tensor_type.elem_type = declared
    return copy


def _check_structure(model: onnx.ModelProto) -> None:
    g = model.graph
    known = {i.name for i in g.input} | {t.name for t in g.initializer}
    produced = {name for node in g.node for name in node.output if name}
    for output in g.output:
        if output.name not in produced and output.name not in known:
            raise EdgesimError(f"graph output {output.name!r} is computed by no node; the model is incomplete")
    for vi in g.input:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            raise EdgesimError(f"input {vi.name!r} holds strings; edgesim models numeric tensors only")
    for tensor in g.initializer:
        _check_initializer(tensor)


_SUB_BYTE_BITS = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2))
    if hasattr(onnx.TensorProto, name)
}


def _check_initializer(tensor: onnx.TensorProto) -> None:
    """An initializer holds exactly the data its dims and type need (a FLOAT16 tensor whose raw bytes are
    float32 would otherwise surface as a reshape traceback the first time its values are read)."""
    what = f"initializer {tensor.name!r}"
    if tensor.data_type == onnx.TensorProto.STRING:
        raise EdgesimError(f"{what} holds strings; edgesim models numeric tensors only")
    if any(d < 0 for d in tensor.dims):
        raise EdgesimError(f"{what} has a negative dimension {list(tensor.dims)}")
    count = math.prod(tensor.dims)
    check_elements(count, what)
    dtype = np.dtype(_np_dtype(tensor.data_type, what))
    if tensor.HasField("raw_data"):
        bits = _SUB_BYTE_BITS.get(tensor.data_type, 8 * dtype.itemsize)
        expected = (count * bits + 7) // 8
        given = len(tensor.raw_data)
    else:
        field = tensor_dtype_to_field(tensor.data_type)
        given = len(getattr(tensor, field))
        # sub-byte types pack several values per stored integer, each type its own way: to_array checks them
        expected = None if tensor.data_type in _SUB_BYTE_BITS else count * (2 if dtype.kind == "c" else 1)
    if expected is not None and given != expected:
        raise EdgesimError(
            f"{what}: dims {list(tensor.dims)} of {onnx.TensorProto.DataType.Name(tensor.data_type)} need "
            f"{expected:,} {'bytes' if tensor.HasField('raw_data') else 'values'}, the model stores {given:,}; "
            "the tensor's type or data is mislabelled"
        )


def _load_external(tensor: onnx.TensorProto, base: Path) -> None:
    """Read a tensor's external data after checking every field of its reference (location inside ``base``,
    offset and length non-negative integers inside the file) and its size against the element limit."""
    what = f"initializer {tensor.name!r}"
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if not location or "\0" in location:
        raise EdgesimError(f"{what} points at external data {location!r}, which is no file name; re-export the model")
    target = (base / location).resolve()
    if Path(location).is_absolute() or not target.is_relative_to(base):
        raise EdgesimError(
            f"{what} points at external data {location!r} outside the model's directory; "
            "edgesim only reads external data stored beside the model"
        )
    if not target.exists():
        raise EdgesimError(f"{what} needs external data file {location!r}, which is missing; copy it next to the model")
    size = regular_file(target, "external data")
    offset, length = (_external_int(info, key, what) for key in ("offset", "length"))
    offset = offset or 0
    length = size - offset if length is None else length
    if offset > size or offset + length > size:
        raise EdgesimError(
            f"{what}: external data at offset {offset:,} length {length:,} lies beyond the end of {location!r} "
            f"({size:,} bytes); the data file does not belong to this model"
        )
    if any(d < 0 for d in tensor.dims):
        raise EdgesimError(f"{what} has a negative dimension {list(tensor.dims)}")
    check_elements(math.prod(tensor.dims), what)
    with target.open("rb") as handle:
        handle.seek(offset)
        tensor.raw_data = handle.read(length)
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


def _external_int(info: dict[str, str], key: str, what: str) -> int | None:
    text = info.get(key)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise EdgesimError(f"{what}: external data {key} {text!r} is not a non-negative integer")
    return int(text)


def _np_dtype(elem_type: int, what: str) -> str:
    try:
        dtype = np.dtype(tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        dtype = np.dtype(object)
    if dtype.kind in "OSU":  # strings, or a type onnx itself does not know
        name = (
            onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        )
        raise EdgesimError(f"{what} has element type {name}, which edgesim does not handle (numeric tensors only)")
    return dtype.name


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
    check_onnx(model)
    return fold_batchnorm(graph)
