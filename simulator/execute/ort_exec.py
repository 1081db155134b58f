"""The ``ort`` arithmetic mode: run a quantized ONNX graph bit for bit as onnxruntime's x86 CPU provider does.

A QDQ model (DequantizeLinear -> op -> QuantizeLinear, as ``onnxruntime.quantization.quantize_static`` writes
it) is not executed the way it reads: onnxruntime's graph optimizer fuses the node groups it recognises into
integer kernels (QLinearConv, QGemm, QLinearMatMul also between two activations, QLinearAdd, QLinearMul,
QLinearAveragePool, QLinearGlobalAveragePool, QLinearSoftmax, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat;
MaxPool and data movement run on the 8-bit values directly) and runs only what is left through float (Sigmoid and
Tanh there through MLAS's own approximations). This executor does the same on the graph ``load_onnx`` gives
(weight DequantizeLinear nodes are folded there into float constants that keep their QuantParams and stored
integers), after the value-changing rewrites of :mod:`ort_graph`:

* a DequantizeLinear of an activation is kept lazy: its consumers see the integers and their parameters;
* an op whose activation inputs are all such values and whose only consumer is a QuantizeLinear (possibly
  through a Relu / Clip the quantizer left in) runs as the fused integer kernel of :mod:`ort_kernels`;
* data movement (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Gather, Slice, Expand, Tile, Split, Identity,
  Dropout, same-parameter Concat) moves the integers, as onnxruntime's QDQ "drop" rules do;
* anything else runs in float32 on dequantized inputs, as onnxruntime does, and is requantized by the
  QuantizeLinear that follows.

Signed (int8) activations follow onnxruntime's x86 rules (see :func:`s8_to_u8_quantizers`): a QuantizeLinear ->
DequantizeLinear pair whose DequantizeLinear is its only reader is rewritten to uint8 (zero point + 128) before
fusion; Conv and MatMul groups whose activations stay int8 are not fused (MLAS has no s8s8 kernel there) and run
in float (in MLAS's SGEMM order); Gemm, Add, Mul, Sigmoid, LeakyRelu and the pooling / Softmax groups fuse with int8
too, but only when every input and the output have the same type after that rewrite.

QOperator models (QLinearConv, QLinearMatMul and the com.microsoft QLinear* ops) run through the same kernels.

:func:`prepare_ort` returns an :class:`OrtSession` (the peer of onnxruntime's ``InferenceSession``): it keeps what
depends only on the graph (constant weights as integers, the conv / gemm weights as BLAS-ready float32 with their
exactness proof, Add tables; :mod:`ort_prepared`), built when a node first runs, so that later runs only compute.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.errors import EdgesimError
from simulator.execute import ort_kernels as K
from simulator.execute.float_exec import _check_feeds
from simulator.execute.ort_graph import onnxruntime_rewrites
from simulator.execute.ort_prepared import PreparedAdd, PreparedConv, PreparedMatMul, WorkBuffers
from simulator.graph import Graph, Node, Tensor
from simulator.ops import get_op
from simulator.ops.activation import softmax_axes
from simulator.ops.quantization import stored_integers
from simulator.ops.registry import fail

#: ops that only move values (onnxruntime's QDQ "drop" rules cover Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
#: Gather, GatherElements, Slice, Expand, Tile; Split with equal parameters): run on the integers
_MOVEMENT = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_MOVEMENT |= {"Gather", "GatherElements", "Slice", "Expand", "Tile", "Split", "SpaceToDepth", "DepthToSpace"}
_FUSABLE = {"Conv", "Gemm", "MatMul", "Add", "AveragePool", "GlobalAveragePool", "MaxPool", "Softmax"}
_FUSABLE |= {"Mul", "Sigmoid", "LeakyRelu", "Concat"}  # QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat
#: float ops whose numpy result is onnxruntime's bit for bit: one correctly rounded float32 operation per
#: element, or no arithmetic at all (Conv has its own MLAS emulation, see ort_kernels.mlas_conv_float)
_EXACT_FLOAT = _MOVEMENT | {"Relu", "Clip", "MaxPool", "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Abs"}
_EXACT_FLOAT |= {"Concat", "Pad"}
#: float ops computed by an emulation of onnxruntime's own kernel (MLAS's FMA3 approximations on x86), bit-exact
_FLOAT_KERNELS: dict[str, Callable[[Node, np.ndarray], np.ndarray]] = {
    "Sigmoid": lambda node, x: K.mlas_logistic(x),
    "Tanh": lambda node, x: K.mlas_tanh(x),
    "LeakyRelu": lambda node, x: K.leaky_relu_f32(x, node.attr("alpha", 0.01)),
}


def _scalars(*values) -> tuple[float, ...]:
    """Per-tensor quantization parameters (scalars or one-element arrays) as plain floats, for kernel keys."""
    return tuple(float(np.asarray(v).reshape(-1)[0]) for v in values)


@dataclass
class QValue:
    """Integers ``q`` standing for the float tensor ``(q - zero_point) * scale`` (a lazy DequantizeLinear)."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @property
    def per_tensor(self) -> bool:
        return np.asarray(self.scale).size == 1

    def same_params(self, other: QValue) -> bool:
        return (
            self.per_tensor
            and other.per_tensor
            and np.asarray(self.zero_point).dtype == np.asarray(other.zero_point).dtype
            and np.float32(np.asarray(self.scale).reshape(())) == np.float32(np.asarray(other.scale).reshape(()))
            and int(np.asarray(self.zero_point).reshape(())) == int(np.asarray(other.zero_point).reshape(()))
        )

    def dequantized(self) -> np.ndarray:
        return K.dequantize_linear(self.q, self.scale, self.zero_point, self.axis)


def run_ort(
    graph: Graph,
    feeds: dict[str, np.ndarray],
    keep: bool = False,
    on_tensor: Callable[[str, np.ndarray], None] | None = None,
    caveats: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run a quantized (QDQ or QOperator) graph on ``feeds`` with onnxruntime's x86 integer arithmetic.

    Returns the graph outputs by name (float outputs of a final DequantizeLinear are computed as onnxruntime
    computes them). With ``keep`` every intermediate tensor is returned too: integer tensors as integers.
    ``on_tensor(name, value)`` sees every tensor as it is produced (for ``--dump``). ``caveats``, if given,
    receives one line per node the run cannot promise bit-exact (a float op outside the reproduced set, see
    :data:`_EXACT_FLOAT`, or a float Conv whose MLAS summation order depends on the thread count).
    """
    return prepare_ort(graph).run(feeds, keep, on_tensor, caveats)


def prepare_ort(graph: Graph, blas_threads: int | None = None) -> OrtSession:
    """A session that runs ``graph`` in the ort mode many times, each kernel prepared once (:class:`OrtSession`)."""
    return OrtSession(graph, blas_threads)


class OrtSession:
    """A quantized graph ready to run repeatedly with onnxruntime's arithmetic.

    The session owns the prepared state: constant weights as integers with their parameters, and per node the
    prepared conv / matmul / add kernel, built on the node's first run (the key is the input's shape and
    parameters: a run with another input shape prepares again), and the work buffers its conv kernels share (so
    a session runs one input at a time). Outputs never depend on that state, only speed.

    ``blas_threads`` caps the BLAS threads during :meth:`run` (through threadpoolctl, which must be installed);
    None leaves BLAS as configured. On a machine shared with other work, a multi-threaded OpenBLAS can be many
    times slower than one thread (its threads wait for each other on busy cores); results are identical.
    """

    def __init__(self, graph: Graph, blas_threads: int | None = None):
        self.graph = onnxruntime_rewrites(graph)  # what the runtime's optimizer changes before it runs the graph
        self.constants: dict[str, QValue | None] = {}
        self.kernels: dict[str, tuple[tuple, object]] = {}
        self.work = WorkBuffers()  # the conv kernels' columns and accumulators, sized by the largest layer
        self.as_u8 = s8_to_u8_quantizers(self.graph)  # graph-static: decided once
        self.blas_threads = blas_threads
        self._blas = None
        if blas_threads is not None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                raise EdgesimError("blas_threads needs the threadpoolctl package (pip install threadpoolctl)") from None
            self._blas = ThreadpoolController()

    def run(
        self,
        feeds: dict[str, np.ndarray],
        keep: bool = False,
        on_tensor: Callable[[str, np.ndarray], None] | None = None,
        caveats: list[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run on ``feeds``; arguments and results as :func:`run_ort`."""
        limit = contextlib.nullcontext()
        if self._blas is not None:
            limit = self._blas.limit(limits=self.blas_threads, user_api="blas")
        run = _OrtRun(self, on_tensor)
        with limit:
            outputs = run.run(_check_feeds(self.graph, feeds), keep)
        if caveats is not None:
            caveats.extend(run.caveats)
        return outputs

    def prepared(self, node: Node, key: tuple, build: Callable[[], object]):
        """The prepared kernel of ``node`` for ``key``, built once (``build`` may return None: no prepared path)."""
        cached = self.kernels.get(node.name)
        if cached is None or cached[0] != key:
            cached = (key, build())
            self.kernels[node.name] = cached
        return cached[1]


def _edges(graph: Graph, name: str) -> list[Node]:
    """Every reader of tensor ``name``, once per input slot it reads it through (onnxruntime counts edges)."""
    return [node for node in graph.nodes for n in node.inputs if n == name]


def _int8_scalar_zero_point(graph: Graph, node: Node) -> int | None:
    """The zero point of a Q / DQ node if it is a constant one-element int8 tensor, else None."""
    t = graph.tensors.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if t is None or not t.constant or np.asarray(t.data).dtype != np.int8 or np.asarray(t.data).size != 1:
        return None
    return int(np.asarray(t.data).reshape(()))


def s8_to_u8_quantizers(graph: Graph) -> set[str]:
    """Outputs of the int8 QuantizeLinear nodes that onnxruntime's x86 optimizer turns into uint8 (QDQS8ToU8).

    onnxruntime first gives every consumer of a DequantizeLinear its own copy (EnsureUniqueDQForNodeUnit), then
    rewrites a QuantizeLinear whose single output edge goes to a DequantizeLinear, both with the same constant
    int8 zero point, to uint8 with the zero point + 128. The integers are the int8 ones + 128, so this changes no
    value, but it decides which groups fuse: a tensor read by two nodes (a residual branch) stays int8."""
    converted = set()
    for node in graph.nodes:
        if node.op_type != "QuantizeLinear" or len(node.inputs) < 3 or node.outputs[0] in graph.outputs:
            continue
        readers = _edges(graph, node.outputs[0])
        if len(readers) != 1 or readers[0].op_type != "DequantizeLinear" or len(readers[0].inputs) < 3:
            continue
        dq = readers[0]
        zp = _int8_scalar_zero_point(graph, node)
        if zp is None or zp != _int8_scalar_zero_point(graph, dq):
            continue
        dq_edges = len(_edges(graph, dq.outputs[0]))
        if dq_edges == 0 or (dq_edges == 1 and dq.outputs[0] not in graph.outputs):  # no copy of the DQ is made
            converted.add(node.outputs[0])
    return converted


def _float_to_int32(value: np.float32) -> int:
    """``static_cast<int32_t>(rint(value))`` on x86: a value outside int32 (or inf / NaN) becomes INT32_MIN."""
    r = np.rint(np.float64(value))
    return int(r) if np.isfinite(r) and -(2**31) <= r < 2**31 else -(2**31)


def _to_u8(q: np.ndarray) -> np.ndarray:
    return (np.asarray(q).astype(np.int16) + 128).astype(np.uint8)


def _to_s8(q: np.ndarray) -> np.ndarray:
    return (np.asarray(q).astype(np.int16) - 128).astype(np.int8)


class _OrtRun:
    def __init__(self, session: OrtSession, on_tensor):
        self.session = session
        self.graph = session.graph
        self.values: dict[str, np.ndarray | QValue] = {}
        self.done: set[str] = set()
        self.on_tensor = on_tensor
        self.as_u8 = session.as_u8
        self.caveats: list[str] = []

    # -- helpers ----------------------------------------------------------------------------------------

    def const(self, name: str) -> np.ndarray | None:
        t = self.graph.tensors.get(name) if name else None
        return None if t is None or not t.constant else np.asarray(t.data)

    def set(self, name: str, value) -> None:
        self.values[name] = value
        if self.on_tensor is not None:
            self.on_tensor(name, value.q if isinstance(value, QValue) else value)

    def get(self, name: str):
        if name in self.values:
            return self.values[name]
        value = self.const(name)
        if value is None:
            raise EdgesimError(f"tensor {name!r} is neither computed nor constant; the graph is incomplete")
        return value

    def float_of(self, name: str) -> np.ndarray:
        value = self.get(name)
        return value.dequantized() if isinstance(value, QValue) else value

    def qparams(self, node: Node, scale_at: int, zp_at: int):
        scale = self.const(node.inputs[scale_at]) if len(node.inputs) > scale_at else None
        if scale is None:
            raise fail(node, "its scale is not a constant; the ort mode needs constant quantization parameters")
        name = node.inputs[zp_at] if len(node.inputs) > zp_at else ""
        zp = self.const(name) if name else None
        if name and zp is None:
            raise fail(node, "its zero point is not a constant")
        return scale, (np.zeros(scale.shape, np.uint8) if zp is None else zp)

    def qconst(self, t: Tensor | None) -> QValue | None:
        """A constant folded from a DequantizeLinear, as its stored integers and parameters (once per session)."""
        if t is None or not t.constant or t.quant is None:
            return None
        if t.name not in self.session.constants:
            self.session.constants[t.name] = self._qconst(t)
        return self.session.constants[t.name]

    @staticmethod
    def _qconst(t: Tensor) -> QValue:
        quant = t.quant
        ints = stored_integers(quant)
        scale = np.asarray(quant.scale, np.float32)
        zp = np.asarray(quant.zero_point)
        if ints is None:  # recover them from the float values (exact for 8-bit weights)
            shape = [1] * len(t.shape)
            if quant.axis is not None:
                shape[quant.axis] = -1
            ints = np.rint(np.asarray(t.data, np.float64) / scale.reshape(shape)) + zp.reshape(shape)
            dtype = f"{'' if quant.signed else 'u'}int{quant.bits}"
            ints = ints.astype(dtype)
        zp = zp.astype(ints.dtype)
        return QValue(np.asarray(ints), scale, zp, quant.axis)

    def operand(self, name: str) -> QValue | None:
        """Input ``name`` as integers with parameters, if it is a lazy DequantizeLinear or a folded constant."""
        if not name:
            return None
        value = self.values.get(name)
        if isinstance(value, QValue):
            return value
        if value is None:
            return self.qconst(self.graph.tensors.get(name))
        return None

    def sole_consumer(self, name: str) -> Node | None:
        if name in self.graph.outputs:
            return None
        readers = self.graph.consumers.get(name, [])
        return readers[0] if len(readers) == 1 else None

    # -- the walk --------------------------------------------------------------------------------------

    def run(self, feeds: dict[str, np.ndarray], keep: bool) -> dict[str, np.ndarray]:
        for name, value in feeds.items():
            self.set(name, value)
        for node in self.graph.order:
            if node.name in self.done:
                continue
            try:
                self.step(node)
            except K.AccumulatorOverflow as exc:
                raise fail(node, f"its int32 accumulator overflows ({exc}); the runtime would wrap") from None
        outputs = {}
        for name in self.graph.outputs:
            value = self.get(name)
            outputs[name] = value.dequantized() if isinstance(value, QValue) else value
        if keep:
            every = {k: (v.q if isinstance(v, QValue) else v) for k, v in self.values.items()}
            return {**every, **outputs}
        return outputs

    def step(self, node: Node) -> None:
        op = node.op_type
        if op == "QuantizeLinear":
            scale, zp = self.qparams(node, 1, 2)
            axis = self._axis(node, scale)
            value = self.get(node.inputs[0])
            if isinstance(value, QValue) and value.same_params(QValue(value.q, scale, zp)):
                self.set(node.outputs[0], value.q)  # DQ -> Q with the same parameters is the identity
                return
            x = value.dequantized() if isinstance(value, QValue) else np.asarray(value)
            self.set(node.outputs[0], K.quantize_linear(x, scale, zp, np.asarray(zp).dtype, axis))
            return
        if op == "DequantizeLinear":
            scale, zp = self.qparams(node, 1, 2)
            q = self.get(node.inputs[0])
            if isinstance(q, QValue):
                q = q.q
            if node.inputs[0] in self.as_u8:  # onnxruntime made this pair uint8: same values, + 128
                q, zp = _to_u8(q), _to_u8(zp)
            self.set(node.outputs[0], QValue(np.asarray(q), scale, zp, self._axis(node, scale)))
            return
        if op in ("QLinearConv", "QLinearMatMul") or op.startswith("com.microsoft."):
            self.set(node.outputs[0], self.qoperator(node))
            return
        if op in ("Relu", "Clip") and self.dropped_before_quantize(node):
            self.set(node.outputs[0], self.get(node.inputs[0]))
            return
        if op in _FUSABLE and self.try_fused(node):
            return
        if (op in _MOVEMENT or op == "Concat") and self.try_movement(node):
            return
        if self.try_integer(node):
            return
        self.run_float(node)

    @staticmethod
    def _axis(node: Node, scale) -> int | None:
        return None if np.asarray(scale).size == 1 else int(node.attr("axis", 1))

    # -- float fallback ----------------------------------------------------------------------------------

    def run_float(self, node: Node) -> None:
        op = get_op(node.op_type)
        if op is None or not op.has_kernel:
            raise fail(node, "it has no kernel, so the ort mode cannot execute it")
        inputs = [self.float_of(n) if n else None for n in node.inputs]
        if node.op_type == "Conv" and inputs[0].ndim in (3, 4):
            self.set(node.outputs[0], self.float_conv(node, *inputs))
            return
        if node.op_type == "Gemm" and all(v is None or np.asarray(v).dtype == np.float32 for v in inputs):
            y = self.float_gemm(node, *inputs)
            if y is not None:
                self.set(node.outputs[0], y)
                return
        if node.op_type == "MatMul" and all(np.asarray(v).dtype == np.float32 and np.ndim(v) >= 2 for v in inputs):
            self.set(node.outputs[0], self.float_matmul(node, *inputs))
            return
        if node.op_type in _FLOAT_KERNELS and np.asarray(inputs[0]).dtype == np.float32:
            self.set(node.outputs[0], _FLOAT_KERNELS[node.op_type](node, inputs[0]))
            return
        if node.op_type not in _EXACT_FLOAT:
            self.caveats.append(f"{node.name} ({node.op_type}): computed in float by numpy, not by onnxruntime's "
                                "MLAS kernel; the last bit may differ")  # fmt: skip
        results = op.run(node, *inputs)
        for name, value in zip(node.outputs, results, strict=False):
            if name:
                value = np.asarray(value)
                if value.dtype == np.float64:
                    value = value.astype(np.float32)  # onnxruntime computes float ops in float32
                self.set(name, value)

    def float_conv(self, node: Node, x, w, bias=None) -> np.ndarray:
        """A Conv onnxruntime left in float (an int8 QDQ group x86 does not fuse), in MLAS's summation order."""
        spatial = x.ndim - 2
        kernel = list(w.shape[2:])
        strides = list(node.attr("strides", [1] * spatial))
        dilations = list(node.attr("dilations", [1] * spatial))
        begin, end = K.conv_padding(
            x.shape[2:], kernel, strides, dilations, node.attr("pads"), node.attr("auto_pad", "NOTSET")
        )
        y, caveat = K.mlas_conv_float(
            x, w, bias, strides=strides, dilations=dilations, pads_begin=begin, pads_end=end,
            group=int(node.attr("group", 1)),
        )  # fmt: skip
        if caveat:
            self.caveats.append(f"{node.name} (Conv): {caveat}")
        return y

    def float_matmul(self, node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """A MatMul onnxruntime left in float (int8 activations on x86, or no QuantizeLinear after it) in MLAS's
        SGEMM order. With a 2-d ``b`` onnxruntime folds ``a``'s batch dimensions into M (one GEMM), else it runs
        one GEMM per broadcast batch."""
        k, n = a.shape[-1], b.shape[-1]
        if b.ndim == 2:
            m = a.size // max(k, 1)
            y = K.mlas_sgemm(a.reshape(m, k), b).reshape(*a.shape[:-1], n)
        else:
            m = a.shape[-2]
            y = K.mlas_sgemm(a, b)
        if n == 1 and m > 1:
            self.caveats.append(f"{node.name} (MatMul): a one-column product runs MLAS's transposed M=1 SGEMM kernel, "
                                "whose summation order is not reproduced")  # fmt: skip
        elif m > 1 and k > K.sgemm_stride_k(n, k):
            self.caveats.append(f"{node.name} (MatMul): K={k} is summed in slices whose depth depends on "
                                "onnxruntime's thread count (exact for one)")  # fmt: skip
        return y

    def float_gemm(self, node: Node, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray | None:
        """A float Gemm (alpha = beta = 1, no transA) in MLAS's order: onnxruntime writes the broadcast bias into the
        output and the SGEMM adds each K slice's sum to it; with one slice and M > 1 that is ``A @ B + C`` rounded
        once per term, which is what is reproduced (None otherwise: the generic float path and its caveat)."""
        if node.attr("transA", 0) or float(node.attr("alpha", 1.0)) != 1.0 or float(node.attr("beta", 1.0)) != 1.0:
            return None
        if node.attr("transB", 0):
            b = b.T
        (m, k), n = a.shape, b.shape[1]
        if m == 1 or k > K.sgemm_stride_k(n, k):
            return None
        y = K.mlas_sgemm(a, np.ascontiguousarray(b))
        return y if c is None else (y + np.asarray(c, np.float32)).astype(np.float32)

    # -- data movement on integers ---------------------------------------------------------------------

    def try_movement(self, node: Node) -> bool:
        """Run data movement on the integers of its (lazily dequantized) data input: onnxruntime drops the DQ and Q
        around such an op where their parameters agree (the "drop" rules) and moves 8-bit values; where they do not,
        it moves floats and requantizes, which gives the same values. Concat moves all its inputs (same parameters
        only; otherwise it is QLinearConcat, :meth:`fused`), the others input 0; the rest (indices, shapes, split
        sizes) are read as they are."""
        op = get_op(node.op_type)
        if op is None or not op.has_kernel:
            return False
        data = range(len(node.inputs)) if node.op_type == "Concat" else [0]
        operands = {i: self.operand(node.inputs[i]) for i in data}
        first = operands[0]
        if not all(v is not None and v.per_tensor and first.same_params(v) for v in operands.values()):
            return False
        args = [operands[i].q if i in operands else (self.get(n) if n else None) for i, n in enumerate(node.inputs)]
        results = op.run(node, *args)
        outputs = node.outputs if node.op_type == "Split" else node.outputs[:1]  # not Dropout's mask
        for name, result in zip(outputs, results, strict=False):
            if name:
                self.set(name, QValue(np.asarray(result), first.scale, first.zero_point))
        return True

    def try_integer(self, node: Node) -> bool:
        """Data movement and MaxPool on plain integer tensors (the values between QOperator nodes)."""
        acts = [n for n in node.inputs if n and not self._is_const(n)]
        values = [self.values.get(n) for n in acts]
        if not values or not all(isinstance(v, np.ndarray) and v.dtype.kind in "iu" for v in values):
            return False
        if node.op_type == "MaxPool":
            x = values[0]
            if node.attr("ceil_mode", 0) or (len(node.outputs) > 1 and node.outputs[1]):
                raise fail(node, "MaxPool with ceil_mode or indices is not supported in the ort mode")
            spatial = x.ndim - 2
            kernel = list(node.attr("kernel_shape"))
            strides = list(node.attr("strides", [1] * spatial))
            dilations = list(node.attr("dilations", [1] * spatial))
            begin, end = K.conv_padding(
                x.shape[2:], kernel, strides, dilations, node.attr("pads"), node.attr("auto_pad", "NOTSET")
            )
            result = K.max_pool(x, kernel=kernel, strides=strides, dilations=dilations, pads_begin=begin, pads_end=end)
            self.set(node.outputs[0], result)
            return True
        if node.op_type in _MOVEMENT or node.op_type == "Concat":
            args = [self.get(n) if n else None for n in node.inputs]
            self.set(node.outputs[0], np.asarray(get_op(node.op_type).run(node, *args)[0]))
            return True
        return False

    def _is_const(self, name: str) -> bool:
        t = self.graph.tensors.get(name)
        return t is not None and t.constant

    # -- fused QDQ groups ----------------------------------------------------------------------------------

    def try_fused(self, node: Node) -> bool:
        """Run ``node`` as onnxruntime's fused integer kernel if it heads a DQ -> op [-> Relu/Clip] -> Q group.

        A Relu or Clip between the op and the QuantizeLinear is dropped where onnxruntime drops it (ReluQuantFusion,
        ClipQuantFusion): when the quantized range already implies it; otherwise the group is not fused."""
        consumer = self.sole_consumer(node.outputs[0])
        chain = []
        if consumer is not None and consumer.op_type in ("Relu", "Clip"):
            chain.append(consumer)
            consumer = self.sole_consumer(consumer.outputs[0])
        if consumer is None or consumer.op_type != "QuantizeLinear":
            return False
        y_scale, y_zp = self.qparams(consumer, 1, 2)
        if np.asarray(y_scale).size != 1:
            return False
        y_scale, y_zp = np.float32(np.asarray(y_scale).reshape(())), np.asarray(y_zp).reshape(())
        if chain and not (self.dropped_before_quantize(chain[0]) or self._clip_redundant(chain[0], y_scale, y_zp)):
            return False
        converted = consumer.outputs[0] in self.as_u8
        result = self.fused(node, y_scale, _to_u8(y_zp) if converted else y_zp)
        if result is None:
            return False
        self.set(consumer.outputs[0], _to_s8(result) if converted else result)
        self.done.update(n.name for n in [*chain, consumer])
        return True

    def _clip_bounds(self, node: Node) -> tuple[float, float] | None:
        """A Clip's constant (min, max) as float32 (missing bounds are +-FLT_MAX), or None when computed at run
        time; a Relu is (0, FLT_MAX)."""
        big = float(np.finfo(np.float32).max)
        if node.op_type == "Relu":
            return 0.0, big
        bounds = []
        for i, key, default in ((1, "min", -big), (2, "max", big)):
            if len(node.inputs) > i and node.inputs[i]:
                value = self.const(node.inputs[i])
                if value is None:
                    return None
            else:
                value = node.attr(key, default)
            bounds.append(float(np.float32(np.asarray(value).reshape(()))))
        return bounds[0], bounds[1]

    def dropped_before_quantize(self, node: Node) -> bool:
        """Whether onnxruntime's level-1 rules (ReluQuantFusion, ClipQuantFusion) delete this Relu / Clip because
        its only consumer is a QuantizeLinear whose range already (nearly) implies it: for a Relu, a zero point at
        the type's minimum; for a Clip, bounds within float32 epsilon of the quantized range."""
        consumer = self.sole_consumer(node.outputs[0])
        if consumer is None or consumer.op_type != "QuantizeLinear" or len(consumer.inputs) < 3:
            return False
        scale, zp = self.const(consumer.inputs[1]), self.const(consumer.inputs[2])
        if zp is None or zp.dtype not in (np.int8, np.uint8):
            return False
        lo_q, hi_q = K._limits(zp.dtype)
        if node.op_type == "Relu":
            return zp.size == 1 and int(zp.reshape(-1)[0]) == lo_q
        bounds = self._clip_bounds(node)
        if bounds is None or scale is None or scale.ndim != 0 or zp.ndim != 0:
            return False
        f32, eps = np.float32, np.finfo(np.float32).eps
        lower = f32(scale) * f32(lo_q - int(zp))
        upper = f32(scale) * f32(hi_q - int(zp))
        return not (eps < f32(f32(bounds[0]) - lower) or eps < f32(upper - f32(bounds[1])))

    def _clip_redundant(self, node: Node, y_scale, y_zp) -> bool:
        """The QDQ selectors' test (IsClipMadeRedundantByQ): a Relu / Clip between an op and its QuantizeLinear is
        ignored when its bounds, quantized, cover the whole integer range."""
        lo_q, hi_q = K._limits(y_zp.dtype)
        if node.op_type == "Relu":
            return int(y_zp) == lo_q
        bounds = self._clip_bounds(node)
        if bounds is None:
            return False
        q_lo, q_hi = (_float_to_int32(np.float32(b) / np.float32(y_scale)) + int(y_zp) for b in bounds)
        return q_lo <= lo_q and q_hi >= hi_q

    def fused(self, node: Node, y_scale, y_zp) -> np.ndarray | None:
        op = node.op_type
        if op == "Concat":  # every input a per-tensor DQ of the output's 8-bit type
            parts = [self.operand(n) for n in node.inputs]
            if not all(p is not None and p.per_tensor and p.q.dtype == y_zp.dtype for p in parts):
                return None
            parts = [(p.q, p.scale, p.zero_point) for p in parts]
            return K.qlinear_concat(parts, y_scale, y_zp, axis=int(node.attr("axis")))
        x = self.operand(node.inputs[0])
        if x is None or not x.per_tensor:
            return None
        xs, xzp = np.float32(np.asarray(x.scale).reshape(())), int(np.asarray(x.zero_point).reshape(()))
        out_dtype = y_zp.dtype
        if x.q.dtype != out_dtype:
            return None
        if op in ("Conv", "MatMul") and x.q.dtype == np.int8:
            return None  # x86 onnxruntime fuses these only for uint8 activations (QDQIsInt8Allowed is false)
        if op == "Conv":
            w = self.operand(node.inputs[1])
            bias = self._bias(node, 2)
            if w is None or bias is False or not w.per_tensor and w.axis != 0:
                return None  # per-channel weights must be per output channel
            spatial = x.q.ndim - 2
            kernel = list(w.q.shape[2:])
            strides = list(node.attr("strides", [1] * spatial))
            dilations = list(node.attr("dilations", [1] * spatial))
            begin, end = K.conv_padding(
                x.q.shape[2:], kernel, strides, dilations, node.attr("pads"), node.attr("auto_pad", "NOTSET")
            )
            return self.conv(
                node, self._all_const(node.inputs[1:3]), x.q, xs, xzp, w.q, w.scale, w.zero_point, y_scale, y_zp,
                bias, strides=strides, dilations=dilations, pads_begin=begin, pads_end=end,
                group=int(node.attr("group", 1)),
            )  # fmt: skip
        if op == "MatMul" and not self._is_const(node.inputs[1]):
            # between two activations (attention's Q.K^T, A.V): QLinearMatMul when both are per-tensor DQs
            b = self.operand(node.inputs[1])
            if b is None or not b.per_tensor or b.q.dtype not in (np.uint8, np.int8):
                return None
            return K.qlinear_matmul(x.q, xs, xzp, b.q, b.scale, b.zero_point, y_scale, y_zp, name=node.name)
        if op in ("Gemm", "MatMul"):
            w = self.operand(node.inputs[1])
            if w is None or not self._is_const(node.inputs[1]):
                return None
            b = w.q
            bzp = w.zero_point
            if op == "Gemm":
                if (
                    node.attr("transA", 0)
                    or float(node.attr("alpha", 1.0)) != 1.0
                    or float(node.attr("beta", 1.0)) != 1.0
                ):
                    return None
                if node.attr("transB", 0):
                    b = b.T
            bias = self._bias(node, 2) if op == "Gemm" else None
            out_axis = 0 if op == "Gemm" and node.attr("transB", 0) else w.q.ndim - 1
            if bias is False or not w.per_tensor and w.axis != out_axis or w.q.ndim != 2:
                return None  # per-channel weights must be per output column
            return self.matmul(node, x.q, xs, xzp, b, w.scale, bzp, y_scale, y_zp, bias)
        if op in ("Add", "Mul"):
            other = self.operand(node.inputs[1])
            if other is None or not other.per_tensor or other.q.dtype != out_dtype:
                return None
            if op == "Add":
                return self.add(node, x.q, xs, xzp, other.q, other.scale, other.zero_point, y_scale, y_zp)
            return K.qlinear_mul(x.q, xs, xzp, other.q, other.scale, other.zero_point, y_scale, y_zp)
        if op in ("Sigmoid", "LeakyRelu"):
            return K.qlinear_lookup(x.q, K.lookup_table(self._table_function(node), xs, xzp, y_scale, y_zp))
        if op == "GlobalAveragePool":
            return K.qlinear_global_average_pool(x.q, xs, xzp, y_scale, y_zp)
        if op in ("AveragePool", "MaxPool"):
            spatial = x.q.ndim - 2
            kernel = list(node.attr("kernel_shape"))
            strides = list(node.attr("strides", [1] * spatial))
            dilations = list(node.attr("dilations", [1] * spatial))
            if node.attr("ceil_mode", 0):
                return None
            begin, end = K.conv_padding(
                x.q.shape[2:], kernel, strides, dilations, node.attr("pads"), node.attr("auto_pad", "NOTSET")
            )
            if op == "MaxPool":
                if not x.same_params(QValue(x.q, y_scale, y_zp)) or len(node.outputs) > 1 and node.outputs[1]:
                    return None
                return K.max_pool(
                    x.q, kernel=kernel, strides=strides, dilations=dilations, pads_begin=begin, pads_end=end
                )
            if any(d != 1 for d in dilations):
                return None
            return K.qlinear_average_pool(
                x.q, xs, xzp, y_scale, y_zp, kernel=kernel, strides=strides, pads_begin=begin, pads_end=end,
                count_include_pad=int(node.attr("count_include_pad", 0)),
            )  # fmt: skip
        if op == "Softmax":
            axes = softmax_axes(node, x.q.ndim)
            if len(axes) > 1:  # before opset 13: QLinearSoftmax over the input flattened to 2-d at the axis
                rows = x.q.reshape(math.prod(x.q.shape[: axes[0]]), -1)
                return K.qlinear_softmax(rows, xs, y_scale, y_zp, axis=-1).reshape(x.q.shape)
            return K.qlinear_softmax(x.q, xs, y_scale, y_zp, axis=axes[0])
        return None

    @staticmethod
    def _table_function(node: Node) -> Callable[[np.ndarray], np.ndarray]:
        """The float32 function a QLinearSigmoid / QLinearLeakyRelu table applies to every dequantized level."""
        op = node.op_type.removeprefix("com.microsoft.").removeprefix("QLinear")
        return lambda x: _FLOAT_KERNELS[op](node, x)

    # -- prepared kernels (built once per session) ----------------------------------------------------------

    def _all_const(self, names: list[str]) -> bool:
        return all(not n or self._is_const(n) for n in names)

    def conv(self, node: Node, constant: bool, x, xs, xzp, w, ws, wzp, ys, yzp, bias, **geometry) -> np.ndarray:
        """QLinearConv of ``node``: the session's prepared kernel when the weights and bias are constants and one
        can be proven exact, else :func:`ort_kernels.qlinear_conv`."""
        kernel = None
        if constant:
            key = ("conv", x.shape, x.dtype.str, *_scalars(xzp, xs))
            kernel = self.session.prepared(
                node, key,
                lambda: PreparedConv.build(x.shape, x.dtype, xzp, xs, w, wzp, ws, ys, yzp, bias, name=node.name,
                                           work=self.session.work, **geometry),
            )  # fmt: skip
        if kernel is not None:
            return kernel(x)
        return K.qlinear_conv(x, xs, xzp, w, ws, wzp, ys, yzp, bias, name=node.name, **geometry)

    def matmul(self, node: Node, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, bias) -> np.ndarray:
        """QLinearMatMul / QGemm of ``node`` with a constant ``b`` (and bias), prepared once where provably exact."""
        key = ("matmul", a.dtype.str, *_scalars(a_zp, a_scale))
        kernel = self.session.prepared(
            node, key,
            lambda: PreparedMatMul.build(a.dtype, a_zp, a_scale, b, b_zp, b_scale, y_scale, y_zp, bias, name=node.name),
        )  # fmt: skip
        if kernel is not None:
            return kernel(a)
        return K.qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, bias, name=node.name)

    def add(self, node: Node, a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp) -> np.ndarray:
        """QLinearAdd of ``node``: a prepared table lookup for two same-shape 8-bit tensors."""
        if a.shape == b.shape and a.dtype == b.dtype == np.asarray(c_zp).dtype:
            params = (a_scale, a_zp, b_scale, b_zp, c_scale, c_zp)
            key = ("add", a.dtype.str, *_scalars(*params))
            kernel = self.session.prepared(node, key, lambda: PreparedAdd.build(a.dtype, *params))
            if kernel is not None:
                return kernel(a, b)
        return K.qlinear_add(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp)

    def _bias(self, node: Node, index: int):
        """The int32 bias of a fused conv / gemm: None when absent, False when it is not int32-quantized."""
        if len(node.inputs) <= index or not node.inputs[index]:
            return None
        b = self.operand(node.inputs[index])
        if b is None or b.q.dtype != np.int32 or np.any(np.asarray(b.zero_point) != 0):
            return False
        return b.q.reshape(-1)

    # -- QOperator models ------------------------------------------------------------------------------

    def qoperator(self, node: Node) -> np.ndarray:
        op = node.op_type.removeprefix("com.microsoft.")
        ins = node.inputs

        def c(i):
            return self.const(ins[i]) if len(ins) > i and ins[i] else None

        def v(i):
            value = self.get(ins[i])
            return value.q if isinstance(value, QValue) else np.asarray(value)

        def zp(i, like):
            z = c(i)
            return np.zeros((), like.dtype) if z is None else z

        if op == "QLinearConv":
            x, w = v(0), v(3)
            spatial = x.ndim - 2
            strides = list(node.attr("strides", [1] * spatial))
            dilations = list(node.attr("dilations", [1] * spatial))
            begin, end = K.conv_padding(
                x.shape[2:], list(w.shape[2:]), strides, dilations, node.attr("pads"), node.attr("auto_pad", "NOTSET")
            )
            bias = v(8) if len(ins) > 8 and ins[8] else None
            return self.conv(
                node, self._all_const([ins[3]] + ins[8:9]), x, c(1), int(zp(2, x)), w, c(4), zp(5, w), c(6), zp(7, x),
                bias, strides=strides, dilations=dilations, pads_begin=begin, pads_end=end,
                group=int(node.attr("group", 1)),
            )  # fmt: skip
        if op == "QLinearMatMul":
            a, b = v(0), v(3)
            return K.qlinear_matmul(a, c(1), int(zp(2, a)), b, c(4), zp(5, b), c(6), zp(7, a), name=node.name)
        if op == "QGemm":
            a, b = v(0), v(3)
            if node.attr("transA", 0) or float(node.attr("alpha", 1.0)) != 1.0:
                raise fail(node, "QGemm with transA or alpha != 1 is not supported in the ort mode")
            if node.attr("transB", 0):
                b = b.T
            bias = v(6) if len(ins) > 6 and ins[6] else None
            if len(ins) < 8 or not ins[7]:
                raise fail(node, "QGemm with a float output is not supported in the ort mode")
            if self._all_const([ins[3]] + ins[6:7]):
                return self.matmul(node, a, c(1), int(zp(2, a)), b, c(4), zp(5, b), c(7), zp(8, a), bias)
            return K.qlinear_matmul(a, c(1), int(zp(2, a)), b, c(4), zp(5, b), c(7), zp(8, a), bias, name=node.name)
        if op in ("QLinearAdd", "QLinearMul"):
            a, b = v(0), v(3)
            if op == "QLinearAdd":
                return self.add(node, a, c(1), int(zp(2, a)), b, c(4), int(zp(5, b)), c(6), zp(7, a))
            return K.qlinear_mul(a, c(1), int(zp(2, a)), b, c(4), int(zp(5, b)), c(6), zp(7, a))
        if op in ("QLinearSigmoid", "QLinearLeakyRelu"):
            x = v(0)
            return K.qlinear_lookup(x, K.lookup_table(self._table_function(node), c(1), zp(2, x), c(3), zp(4, x)))
        if op == "QLinearGlobalAveragePool":
            x = v(0)
            if node.attr("channels_last", 0):
                raise fail(node, "channels_last pooling is not supported in the ort mode")
            return K.qlinear_global_average_pool(x, c(1), int(zp(2, x)), c(3), zp(4, x))
        if op == "QLinearAveragePool":
            x = v(0)
            if node.attr("channels_last", 0) or node.attr("ceil_mode", 0):
                raise fail(node, "channels_last / ceil_mode pooling is not supported in the ort mode")
            kernel = list(node.attr("kernel_shape"))
            spatial = x.ndim - 2
            strides = list(node.attr("strides", [1] * spatial))
            begin, end = K.conv_padding(
                x.shape[2:], kernel, strides, [1] * spatial, node.attr("pads"), node.attr("auto_pad", "NOTSET")
            )
            return K.qlinear_average_pool(
                x, c(1), int(zp(2, x)), c(3), zp(4, x), kernel=kernel, strides=strides, pads_begin=begin,
                pads_end=end, count_include_pad=int(node.attr("count_include_pad", 0)),
            )  # fmt: skip
        if op == "QLinearConcat":
            y_zp = zp(1, v(2))
            parts = [(v(i), c(i + 1), zp(i + 2, y_zp)) for i in range(2, len(ins), 3)]
            return K.qlinear_concat(parts, c(0), y_zp, axis=int(node.attr("axis")))
        if op == "QLinearSoftmax":
            x = v(0)
            opset = int(node.attr("opset", 13))
            axis = int(node.attr("axis", -1 if opset >= 13 else 1)) % x.ndim
            if opset < 13:  # over the input flattened to 2-d at the axis
                rows = x.reshape(math.prod(x.shape[:axis]), -1)
                return K.qlinear_softmax(rows, c(1), c(3), zp(4, x), axis=-1).reshape(x.shape)
            return K.qlinear_softmax(x, c(1), c(3), zp(4, x), axis=axis)
        raise fail(node, f"{node.op_type} is not supported in the ort mode")
