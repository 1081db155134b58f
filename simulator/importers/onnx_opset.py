"""Checking each node of an ONNX model against the opset the model imports, as a runtime does when it loads it.

An op's attributes and inputs grew over the opsets (DequantizeLinear's ``axis`` exists from opset 13, its
``block_size`` from 21). onnxruntime validates every node against the schema of the model's opset and refuses
the model otherwise; edgesim refuses it too, with one line naming the node, rather than run what the runtime
would not. What exists at which opset comes from onnx's own operator schemas (``onnx.defs``, every version of
every standard op), so every op is checked the same way, the quantization ops included: its existence, each
attribute, the number of inputs, and the element type of every input whose type the file states (graph inputs
and initializers: an int16 DequantizeLinear needs opset 21). A rule the schemas cannot express goes here too.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
from onnx import defs, helper

from simulator.graph import Node, Tensor
from simulator.ops.registry import fail


@cache
def _history(op_type: str) -> tuple[defs.OpSchema, ...]:
    """Every version of a standard-domain op's schema, oldest first (empty for an op onnx does not know)."""
    return tuple(
        sorted(
            (s for s in defs.get_all_schemas_with_history() if s.name == op_type and s.domain == ""),
            key=lambda s: s.since_version,
        )
    )


def _first_opset(op_type: str, has) -> int | None:
    """The first opset whose schema of ``op_type`` satisfies ``has(schema)``."""
    return next((s.since_version for s in _history(op_type) if has(s)), None)


def _max_inputs(schema: defs.OpSchema) -> int | None:
    """How many inputs the schema allows (None: a variadic last input, no limit)."""
    if schema.inputs and schema.inputs[-1].option == defs.OpSchema.FormalParameterOption.Variadic:
        return None
    return len(schema.inputs)


def check_node_opset(proto: onnx.NodeProto, node: Node, opset: int, tensors: dict[str, Tensor]) -> None:
    """Raise a one-line error if ``node`` (read from ``proto``, a standard-domain node) uses an op, attribute or
    input that ``opset`` does not define, or breaks its op's own opset rule."""
    if not _history(proto.op_type):
        return  # an op onnx does not know: the registry decides whether edgesim models it
    try:
        schema = defs.get_schema(proto.op_type, opset, "")
    except defs.SchemaError:
        first = _history(proto.op_type)[0].since_version
        raise fail(node, f"{proto.op_type} exists from opset {first}, but the model imports opset {opset}; "
                         f"re-export the model at opset {first} or later") from None  # fmt: skip
    for attr in proto.attribute:
        if attr.name not in schema.attributes:
            first = _first_opset(proto.op_type, lambda s, key=attr.name: key in s.attributes)
            where = f"exists from opset {first}" if first else "is not an attribute of it in any opset"
            fix = f"re-export the model at opset {first} or later" if first else "remove the attribute"
            raise fail(node, f"attribute {attr.name!r} {where}, but the model imports opset {opset}; {fix}")
    limit = _max_inputs(schema)
    if limit is not None and len(proto.input) > limit:
        first = _first_opset(proto.op_type, lambda s: (_max_inputs(s) or 1 << 30) >= len(proto.input))
        fix = f"re-export the model at opset {first} or later" if first else "remove the extra inputs"
        raise fail(node, f"it has {len(proto.input)} inputs, opset {opset} defines at most {limit}; {fix}")
    for index, name in enumerate(proto.input):
        tensor = tensors.get(name) if name else None
        if tensor is None or not schema.inputs:
            continue
        formal = schema.inputs[min(index, len(schema.inputs) - 1)]
        allowed = _allowed_types(schema, formal.type_str)
        found = _type_str(tensor.dtype)
        if allowed and found and found not in allowed:
            first = _first_opset(proto.op_type, lambda s, i=index, t=found: _accepts(s, i, t))
            fix = f"re-export the model at opset {first} or later" if first else f"store it as {' or '.join(allowed)}"
            raise fail(node, f"input {index} ({name!r}) is {found}, which opset {opset} does not allow there; {fix}")


def _type_str(dtype: str) -> str:
    """onnx's name of a numpy dtype in type constraints: 'tensor(float)', 'tensor(int8)'."""
    try:
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except (KeyError, TypeError, ValueError):
        return ""
    return f"tensor({onnx.TensorProto.DataType.Name(elem).lower()})"


def _allowed_types(schema: defs.OpSchema, type_str: str) -> list[str]:
    """The types a formal parameter of ``schema`` accepts (its constraint's list, or the one type it names)."""
    for constraint in schema.type_constraints:
        if constraint.type_param_str == type_str:
            return list(constraint.allowed_type_strs)
    return [type_str] if type_str.startswith("tensor(") else []


def _accepts(schema: defs.OpSchema, index: int, type_str: str) -> bool:
    if not schema.inputs:
        return False
    formal = schema.inputs[min(index, len(schema.inputs) - 1)]
    allowed = _allowed_types(schema, formal.type_str)
    return not allowed or type_str in allowed
