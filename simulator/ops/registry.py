"""The op registry: one :class:`OpDef` per ONNX op type owns everything edgesim knows about that op.

Shape inference, parameter / MAC / byte counts and the float kernel live together, so adding an op is adding
one class, and the importers, estimator and executors stay op-agnostic (compare onnx.reference's op classes).

Counting conventions (also in README.md):
- ``macs``: multiply-accumulates of the reduction ops (Conv, ConvTranspose, Gemm, MatMul and their QLinear
  forms), as published model tables count them. Bias additions are not MACs.
- ``ops``: other arithmetic, one per elementary operation (an add, a compare, a pooling tap), so elementwise
  layers still cost something in the estimator.
- ``ops`` of the ``transcendental`` class (Exp, Erf, Sqrt, Gelu, ...): one per function evaluation, priced by
  the profile as the cycles the kernel library spends per element.
- ``params``: elements of constant inputs in an op's weight slots (weights and biases after batch-norm folding).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ClassVar

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Node, Shape, Tensor
from simulator.limits import check_shape

#: op class names the estimator's efficiency factors are keyed by
OP_CLASSES = (
    "conv",
    "depthwise",
    "matmul",
    "elementwise",
    "activation",
    "transcendental",
    "attention",
    "pooling",
    "normalization",
    "data_movement",
    "quantization",
    "constant",
)


class OpDef:
    """Base class of a registry entry. Subclasses set ``op_type`` and override what differs."""

    op_type: ClassVar[str] = ""
    #: cost class, one of OP_CLASSES
    op_class: ClassVar[str] = "elementwise"
    #: input positions that are parameters when they hold constants
    weight_inputs: ClassVar[tuple[int, ...]] = ()
    #: the subset of weight_inputs that are biases (stored as int32 next to int8 weights, as TFLite does)
    bias_inputs: ClassVar[tuple[int, ...]] = ()
    #: smallest and largest number of inputs the op accepts
    min_inputs: ClassVar[int] = 1
    #: positions below min_inputs that may still be empty ("", ONNX's absent input), e.g. Loop's trip count
    optional_inputs: ClassVar[tuple[int, ...]] = ()
    max_inputs: ClassVar[int] = 1
    #: output aliases input 0's storage (reshape-like): the arena planner may share the buffer
    in_place: ClassVar[bool] = False

    # -- shapes ----------------------------------------------------------------------------------------

    def infer(self, node: Node, inputs: list[Tensor | None]) -> list[tuple[Shape, str]]:
        """Output (shape, dtype) per output. Default: same as the first input."""
        x = inputs[0]
        assert x is not None and x.shape is not None
        return [(x.shape, x.dtype)] * len(node.outputs)

    # -- counts ----------------------------------------------------------------------------------------

    def params(self, node: Node, inputs: list[Tensor | None]) -> int:
        return sum(inputs[i].size for i in self.weight_slots(node, inputs))

    def weight_slots(self, node: Node, inputs: list[Tensor | None]) -> list[int]:
        """Positions of the inputs that are this op's parameters (constant inputs in weight slots)."""
        return [i for i in self.weight_inputs if i < len(inputs) and inputs[i] is not None and inputs[i].constant]

    def macs(self, node: Node, inputs: list[Tensor | None], outputs: list[Tensor]) -> int:
        return 0

    def ops(self, node: Node, inputs: list[Tensor | None], outputs: list[Tensor]) -> int:
        """Non-MAC arithmetic; default one operation per output element."""
        return sum(t.size for t in outputs)

    # -- float kernel ----------------------------------------------------------------------------------

    def run(self, node: Node, *inputs: np.ndarray | None) -> list[np.ndarray]:
        """Float reference kernel (numpy). Ops without one cannot be constant-folded or executed yet."""
        raise NotImplementedError(f"{self.op_type} has no float kernel yet")

    @property
    def has_kernel(self) -> bool:
        return type(self).run is not OpDef.run

    def fold(self, node: Node, inputs: list[Tensor | None]) -> list[np.ndarray] | None:
        """Values of the outputs when they are known at import time (all inputs constant), else None."""
        if not self.has_kernel:
            return None
        if any(t is not None and not t.constant for t in inputs):
            return None
        # the shapes come first: a folded Expand / ConstantOfShape / Tile / Range allocates what its inputs say
        for name, (shape, _) in zip(node.outputs, self.infer(node, inputs), strict=False):
            check_shape(shape, f"node {node.name!r} ({node.op_type}): folded constant {name!r}")
        with np.errstate(all="ignore"):  # IEEE results, as the float executor computes them
            return self.run(node, *[None if t is None else t.data for t in inputs])

    def folded_tensor(self, node: Node, inputs: list[Tensor | None], name: str, value: np.ndarray) -> Tensor:
        """The constant tensor a folded output becomes (DequantizeLinear keeps its quantization)."""
        return Tensor.from_array(name, value)

    def expand(self, node: Node, inputs: list[Tensor | None]) -> tuple[list[Node], dict[str, Tensor]] | None:
        """Nodes (and constants) that replace this node at import, for control flow that folds; None to keep
        the node as it is (every op but If and Loop)."""
        return None

    def cost_class(self, node: Node, inputs: list[Tensor | None]) -> str:
        """The op class the estimator prices this node as (a Conv may be depthwise)."""
        return self.op_class


_REGISTRY: dict[str, OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: add an op definition to the registry (one per op type)."""
    assert cls.op_type and cls.op_type not in _REGISTRY, cls.op_type
    assert cls.op_class in OP_CLASSES, (cls.op_type, cls.op_class)
    _REGISTRY[cls.op_type] = cls()
    return cls


def get_op(op_type: str) -> OpDef | None:
    _load_all()
    return _REGISTRY.get(op_type)


def registered_ops() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def _load_all() -> None:
    # importing the op modules registers their classes
    from simulator.ops import (  # noqa: F401
        activation,
        constant,
        control_flow,
        conv,
        elementwise,
        indexing,
        logic,
        matmul,
        normalization,
        pooling,
        quantization,
        rearrange,
        recurrent,
        reduce,
        shape,
        unary,
    )


# -- helpers shared by op definitions ----------------------------------------------------------------------


def fail(node: Node, message: str) -> EdgesimError:
    """An error about one node, naming it and its op."""
    return EdgesimError(f"node {node.name!r} ({node.op_type}): {message}")


#: the float type conv / matmul operands are widened to (see :func:`widened`); a caller that wants speed over the
#: last bits (calibration, fidelity over many samples) runs inside ``reductions_in(np.float32)``
_REDUCTION_DTYPE: ContextVar[type] = ContextVar("reduction_dtype", default=np.float64)


@contextmanager
def reductions_in(dtype) -> Iterator[None]:
    """Run the float kernels' reductions in ``dtype`` (float64 by default) within the block; scoped to the
    calling thread or task, so concurrent runs do not see each other's choice."""
    token = _REDUCTION_DTYPE.set(np.dtype(dtype).type)
    try:
        yield
    finally:
        _REDUCTION_DTYPE.reset(token)


def widened(a: np.ndarray) -> np.ndarray:
    """A float operand of a reduction (conv, matmul) in float64: the reference sums thousands of products
    without float32 rounding, so its result does not depend on a BLAS's summation order or thread count and
    sits closer to the exact value than any float32 runtime it is compared with. The copy is C-ordered, so an
    im2col view becomes its column matrix in the same pass. Integers stay as they are. Inside
    ``reductions_in(np.float32)`` the operand stays float32 (twice the speed, as float32 runtimes compute)."""
    dtype = _REDUCTION_DTYPE.get()
    if a.dtype.kind == "f" and a.dtype.itemsize <= np.dtype(dtype).itemsize:
        return np.ascontiguousarray(a, dtype)
    return a


def clamp_fused(node: Node, y: np.ndarray) -> np.ndarray:
    """``y`` clamped by the activation a deployment pass fused into ``node`` (``attrs["activation"] =
    (low, high)``, see passes/deploy.py), so a fused graph computes what the unfused one does."""
    bounds = node.attr("activation")
    if bounds is None:
        return y
    low, high = (float(b) for b in bounds)
    if low > -math.inf:
        y = np.maximum(y, y.dtype.type(low))
    if high < math.inf:
        y = np.minimum(y, y.dtype.type(high))
    return np.asarray(y)


def shape_of(node: Node, t: Tensor | None, what: str) -> Shape:
    if t is None or t.shape is None:
        raise fail(node, f"the shape of its {what} is unknown")
    return t.shape


def constant_ints(node: Node, t: Tensor | None, what: str) -> list[int]:
    """Values of a constant integer input (Reshape's shape, Slice's starts); activations are refused."""
    if t is None:
        raise fail(node, f"its {what} input is missing")
    if not t.constant:
        raise fail(
            node,
            f"its {what} ({t.name!r}) is computed at run time, so output shapes cannot be inferred; "
            "export the model with static shapes or bind the inputs with --input-shape",
        )
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def normalize_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise fail(node, f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def broadcast(node: Node, shapes: Sequence[Shape]) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise fail(node, f"input shapes {', '.join(map(str, shapes))} do not broadcast") from None


def numel(shape: Shape) -> int:
    return math.prod(shape)
