"""Which precision each layer computes at, and how many bits each tensor is stored with.

From the graph by default (a quantized weight's bit width, an integer activation dtype, otherwise the float
dtype), or everything at one precision when the user asks for it (``--precision int8``).
"""

from __future__ import annotations

from simulator.graph import Graph, Node, Tensor
from simulator.hardware import PRECISION_BITS, Hardware
from simulator.ops import get_op

_INTEGER_WIDTHS = (4, 8, 16, 32)


def tensor_bits(t: Tensor, override: str | None) -> int:
    """Bits per element of an activation or weight as stored."""
    if override is not None:
        return PRECISION_BITS[override]
    if t.quant is not None:
        return t.quant.bits
    return 8 * t.itemsize


def _is_integer(t: Tensor) -> bool:
    return t.quant is not None or t.dtype in ("int8", "uint8", "int16", "uint16", "int4", "uint4")


def wanted_precision(graph: Graph, node: Node, override: str | None) -> str:
    """The precision a layer asks for, before mapping to what the hardware has."""
    if override is not None:
        return override
    op = get_op(node.op_type)
    if op is not None and op.op_class == "quantization":
        return _integer_side(graph, node)
    biases = set(op.bias_inputs) if op is not None else set()
    weights = set(op.weight_inputs) if op is not None else set()
    considered = []
    for i, t in enumerate(graph.input_tensors(node)):
        if t is None or i in biases:
            continue
        if t.constant and i not in weights:
            continue  # shapes, axes, scales: not data
        if not t.constant and not (_is_integer(t) or t.dtype.startswith("float")):
            continue  # int64 indices and the like
        considered.append(t)
    if not considered:
        considered = [t for t in graph.output_tensors(node) if t.dtype.startswith("float") or _is_integer(t)]
    if considered and all(_is_integer(t) for t in considered):
        bits = max(tensor_bits(t, None) for t in considered)
        return f"int{next(w for w in _INTEGER_WIDTHS if w >= bits)}"
    if considered and all(t.dtype == "float16" for t in considered if not _is_integer(t)):
        return "fp16"
    return "fp32"


def _integer_side(graph: Graph, node: Node) -> str:
    """QuantizeLinear / DequantizeLinear convert between float and integers: they run as a kernel of their
    integer side's width (TFLite's QUANTIZE / DEQUANTIZE are int8 / int16 kernels), not as float compute."""
    data = [graph.input_tensors(node)[0], *graph.output_tensors(node)]
    bits = [tensor_bits(t, None) for t in data if t is not None and _is_integer(t)]
    if not bits:
        return "fp32"
    return f"int{next(w for w in _INTEGER_WIDTHS if w >= max(bits))}"


def layer_precision(graph: Graph, node: Node, hw: Hardware, override: str | None) -> str:
    return hw.precision_for(wanted_precision(graph, node, override))


def bias_bits(compute: str) -> int:
    """TFLite's scheme: int32 biases beside int8 (or narrower) weights, int64 in the 16x8 mode."""
    if compute.startswith("int"):
        return 32 if PRECISION_BITS[compute] <= 8 else 64
    return PRECISION_BITS[compute]
