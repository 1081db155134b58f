"""The integer executor in ``tflm`` mode: a graph quantized by edgesim's quantize pass, run with TensorFlow
Lite Micro's reference integer arithmetic (simulator/execute/tflm_kernels.py, proven bit for bit on the
TFLite test vectors).

The graph stays NCHW as ONNX defines it, so reshapes and flattens keep ONNX semantics; kernels work in
TFLite's NHWC / OHWI layouts, and an NHWC result is held as an NCHW view of itself, so that consecutive NHWC
kernels pass activations along without transposing them. Quantization follows the TFLite int8 scheme: int8 activations
with a zero point, symmetric int8 (or narrower) weights per channel or per tensor, int32 biases at
s_in * s_w, activations fused into the producing kernel as clamps. A graph the scheme cannot run
(asymmetric weights, an op TFLM has no int8 kernel for here, a float activation between integer layers) is
an error naming the node and the reason.

TFLite's 16x8 scheme runs too: int16 activations with zero point 0 (symmetric), int8 weights, int64 biases
(the conv / fully-connected accumulators are then int64), ADD at 15 fractional bits and SOFTMAX with its
lookup tables and fixed output. TFLite's QUANTIZE / DEQUANTIZE (an imported QuantizeLinear -> DequantizeLinear
pair) run too: a float input read only by QuantizeLinear takes float feeds, and a DequantizeLinear with a
float output gives float32, so float-IO .tflite models run end to end. Weights of 4 bits or fewer take TFLM's
int4 path: packed two per byte in TFLite's layout, unpacked, then the int8 kernel.

Speed without changing a bit: a :class:`TflmSession` (``prepare_tflm``) derives each layer's constants once,
int8 elementwise ops (ADD, MUL, a standalone RELU) look their result up in a table of the kernel evaluated on
all 256^arity inputs, and integer sums run through float BLAS wherever every partial sum is provably exact
(see tflm_kernels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulator.errors import EdgesimError
from simulator.execute import fixedpoint as fp
from simulator.execute import state
from simulator.execute import tflm_activations as ta
from simulator.execute import tflm_kernels as k
from simulator.execute.exact_sums import row_sign_sums, subset_sum_bound
from simulator.execute.ort_prepared import PreparedConv, WorkBuffers
from simulator.graph import Graph, Node, QuantParams
from simulator.limits import check_tensors
from simulator.ops import get_op
from simulator.ops.registry import fail
from simulator.ops.window import window_geometry
from simulator.passes.deploy import for_deployment

INT8 = (-128, 127)
SOFTMAX_OUTPUT = QuantParams(8, np.array(1 / 256, np.float32), np.array(-128), symmetric=False)
LOGISTIC_OUTPUT = SOFTMAX_OUTPUT  # TFLite fixes both int8 outputs at 1/256, -128
#: TFLite fixes an int16 softmax output at scale 1/32768, zero point 0
SOFTMAX_OUTPUT_INT16 = QuantParams(16, np.array(1 / 32768, np.float32), np.array(0), symmetric=True)


def _activation_quant(graph: Graph, name: str, node: Node) -> QuantParams:
    q = graph.tensors[name].quant
    if q is None:
        raise fail(node, f"tensor {name!r} has no quantization; quantize activations (a plan's quantize pass) first")
    if q.per_channel:
        raise fail(node, f"tensor {name!r} is quantized per channel; TFLM activations are per tensor")
    if q.bits not in (8, 16) or not q.signed:
        raise fail(
            node, f"tensor {name!r} is quantized to {q.bits} bits; the tflm mode runs int8 or int16 (16x8) activations"
        )
    if q.bits == 16 and int(q.zero_point) != 0:
        raise fail(
            node,
            f"tensor {name!r} is int16 with zero point {int(q.zero_point)}; TFLite's 16x8 scheme needs symmetric "
            "int16 activations (zero point 0): quantize activations with symmetric: true",
        )
    return q


def _dtype(q: QuantParams) -> type:
    """The integer type an activation quantized by ``q`` is stored in (int8, or int16 for 16x8; uint8 only
    where a QUANTIZE writes it, as a model's last op)."""
    if q.bits == 8 and not q.signed:
        return np.uint8
    return np.int16 if q.bits == 16 else np.int8


def quantize_input(values: np.ndarray, q: QuantParams) -> np.ndarray:
    """Float -> int8 / int16 as TFLite's QUANTIZE does (float32 division, round half away from zero, then the
    zero point, saturating): see :func:`tflm_kernels.affine_quantize`."""
    return k.affine_quantize(values, scale=float(q.scale), zero_point=int(q.zero_point), output_dtype=_dtype(q))


def dequantize(values: np.ndarray, q: QuantParams) -> np.ndarray:
    """Integers -> float32 as TFLite's DEQUANTIZE computes it (see :func:`tflm_kernels.dequantize`)."""
    return k.dequantize(values, scale=float(q.scale), zero_point=int(q.zero_point))


def _clamp(node: Node, q: QuantParams) -> tuple[int, int]:
    """A fused Relu / Clip as the quantized activation range TFLite derives for it."""
    lo, hi = node.attr("activation", (-np.inf, np.inf))
    zp, scale = int(q.zero_point), float(q.scale)

    def level(bound: float) -> int:
        return zp + int(fp.round_half_away(bound / scale))

    return (
        max(q.qmin, level(lo)) if np.isfinite(lo) else q.qmin,
        min(q.qmax, level(hi)) if np.isfinite(hi) else q.qmax,
    )


def _weights(graph: Graph, node: Node, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(integer weights, per-output-channel scales) of a symmetric quantized weight."""
    t = graph.tensors[node.inputs[index]]
    q = t.quant
    if q is None:
        raise fail(node, "its weights are not quantized; the tflm mode runs int8 weights")
    if not q.symmetric or np.any(np.asarray(q.zero_point) != 0):
        raise fail(node, "its weights are asymmetric (non-zero zero point); TFLM runs symmetric int8 weights only")
    if q.bits > 8:
        raise fail(node, f"its weights have {q.bits} bits; TFLM runs weights of 8 bits or fewer")
    scale = np.asarray(q.scale, np.float64).reshape(-1)
    shape = [1] * len(t.shape)
    if q.axis is not None:
        shape[q.axis] = -1
    levels = _levels_float32(np.asarray(t.data), scale.reshape(shape))
    if levels is None:
        levels = np.rint(np.asarray(t.data, np.float64) / scale.reshape(shape)).astype(np.int8)
    return levels, scale


def _levels_float32(data: np.ndarray, scale: np.ndarray) -> np.ndarray | None:
    """``rint(data / scale)`` as int8 from a float32 division, when that provably equals the float64 one.

    For float32 data and scales, both quotients are correct roundings of the same exact quotient e (relative
    error 2^-24 and 2^-53), so their nearest integers agree unless e lies within |e| 2^-23 of a half-integer:
    the float32 quotients are checked to stay further than that from every half-integer (and inside int8).
    Weights on the quantization grid pass; anything else gets None and the float64 path."""
    if data.dtype != np.float32 or data.size == 0:
        return None
    scale32 = scale.astype(np.float32)
    if (
        not np.array_equal(scale32.astype(np.float64), scale)
        or not np.all(np.isfinite(scale32))
        or np.any(scale32 == 0)
    ):
        return None
    q = data / scale32
    levels = np.rint(q)
    lo, hi = float(levels.min()), float(levels.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -127 or hi > 127:
        return None
    q -= levels
    np.abs(q, out=q)
    if float(q.max()) >= 0.5 - 128 * 2.0**-20:
        return None
    return levels.astype(np.int8)


def _conv_multipliers(input_scale: float, filter_scales, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """fixedpoint.conv_per_channel_multipliers vectorised: the same float64 product and quotient per channel,
    frexp, M = round_half_away(q * 2^31) (exact here: q * 2^31 + 0.5 needs no rounding below 2^31), a
    rounding up to 2^31 folded into the exponent, shifts below -31 flushed to (0, 0)."""
    fs = np.ravel(np.asarray(filter_scales, np.float64))
    reals = (float(input_scale) * fs) / float(output_scale)
    if not np.all(np.isfinite(reals)):
        return fp.conv_per_channel_multipliers(input_scale, filter_scales, output_scale)
    q, shift = np.frexp(reals)
    v = q * float(1 << 31)
    m = np.copysign(np.floor(np.abs(v) + 0.5), v)
    shift = shift.astype(np.int64)
    up = m == float(1 << 31)
    m = np.where(up, m / 2, m).astype(np.int64)
    shift = shift + up
    flush = (reals == 0.0) | (shift < -31)
    return np.where(flush, 0, m), np.where(flush, 0, shift)


def _bias(graph: Graph, node: Node, index: int, input_scale: float, weight_scales: np.ndarray, channels: int):
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    values = np.asarray(graph.tensors[node.inputs[index]].data, np.float64)
    scales = np.broadcast_to(input_scale * weight_scales, (channels,))
    return np.rint(values / scales).astype(np.int64)


def _padding_and_stride(
    node: Node, spatial: tuple[int, ...], kernel: tuple[int, ...]
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(leading pads, strides, dilations); auto_pad resolves through the geometry shape inference uses.
    The reference kernels need only the leading pads: taps beyond the image are skipped."""
    _, begin, _, strides = window_geometry(node, spatial, kernel)
    dilations = tuple(node.attr("dilations", [1, 1]))
    return (begin[0], begin[1]), tuple(strides), dilations


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _nchw(x: np.ndarray) -> np.ndarray:
    """An NHWC kernel result as the NCHW tensor the graph holds: a transposed view, not a copy, so that the next
    NHWC kernel's :func:`_nhwc` gets the contiguous array back for free."""
    return x.transpose(0, 3, 1, 2)


def _channels_last(xs: list[np.ndarray]) -> bool:
    """Whether 4-D values are all NCHW views of contiguous NHWC arrays (see :func:`_nchw`)."""
    return all(x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous for x in xs) and not all(
        x.flags.c_contiguous for x in xs
    )


@dataclass
class _Layer:
    """A weighted layer's constants, derived once per session: the kernel, its filter in TFLite layout, the
    integer bias, the requantization and clamp parameters, and the filter's cache."""

    kernel: Callable[..., np.ndarray]
    filter: np.ndarray
    bias: np.ndarray | None
    params: dict
    cache: k.FilterCache = field(default_factory=k.FilterCache)
    nchw: _NchwConv | None = None  # the BLAS path on NCHW tensors, where it applies


class _Run:
    """State of one integer run: integer values and the quantization of every activation; what depends on the
    graph alone comes from (and goes to) the session's ``prepared`` table."""

    def __init__(self, graph: Graph, prepared: dict[str, object] | None = None, work: WorkBuffers | None = None):
        self.graph = graph
        self.work = WorkBuffers() if work is None else work
        self.values: dict[str, np.ndarray] = {}
        self.quant: dict[str, QuantParams] = {}
        self._prepared = {} if prepared is None else prepared

    def prepared(self, node: Node, build: Callable[[_Run, Node], object]):
        """``build(run, node)``, computed on the node's first run in this session."""
        if node.name not in self._prepared:
            self._prepared[node.name] = build(self, node)
        return self._prepared[node.name]

    def q(self, name: str, node: Node) -> QuantParams:
        if name not in self.quant:
            self.quant[name] = _activation_quant(self.graph, name, node)
        return self.quant[name]

    def out_q(self, node: Node) -> QuantParams:
        return self.q(node.outputs[0], node)


def _as_stored(run: _Run, node: Node, w: np.ndarray) -> np.ndarray:
    """Weights in TFLite's layout as the kernel reads them. Weights of 4 bits or fewer are stored as TFLM's
    int4 (two per byte, low nibble first, in this layout) and unpacked into int8 before the int8 kernel: they
    go through that packing here, so the packed format is what runs. TFLM has no int4 kernel for int16 input."""
    q = run.graph.tensors[node.inputs[1]].quant
    if q.bits > 4:
        return w
    if run.q(node.inputs[0], node).bits == 16:
        raise fail(node, f"its weights have {q.bits} bits; TFLM's 16x8 kernels take int8 weights, not int4")
    return k.unpack_int4(k.pack_int4(w), w.size).reshape(w.shape)


def _accumulator(run: _Run, node: Node, bias_sets_width: bool) -> str:
    """The accumulator TFLM uses: int32 for int8 input. For int16 input, CONV_2D follows the bias type (int64
    bias: int64, int32 or no bias: int32); DEPTHWISE_CONV_2D and FULLY_CONNECTED read an int64 bias always."""
    if run.q(node.inputs[0], node).bits != 16:
        return "int32"
    bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    bias_q = run.graph.tensors[bias].quant if bias else None
    if bias_q is None or bias_q.bits == 64:
        return "int64" if bias or not bias_sets_width else "int32"
    if bias_q.bits != 32 or not bias_sets_width:
        raise fail(node, f"its bias is int{bias_q.bits}; this TFLM 16x8 kernel reads an int64 bias")
    return "int32"


def _conv_layer(run: _Run, node: Node) -> _Layer:
    g = run.graph
    x_shape = g.tensors[node.inputs[0]].shape
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    w, w_scale = _weights(g, node, 1)
    groups = int(node.attr("group", 1))
    out_channels = w.shape[0]
    bias = _bias(g, node, 2, float(xq.scale), w_scale, out_channels)
    multiplier, shift = _conv_multipliers(float(xq.scale), np.broadcast_to(w_scale, (out_channels,)), float(yq.scale))
    padding, stride, dilation = _padding_and_stride(node, x_shape[2:], tuple(w.shape[2:]))
    out_shape = g.tensors[node.outputs[0]].shape
    amin, amax = _clamp(node, yq)
    depthwise = groups > 1 and groups == x_shape[1] and w.shape[1] == 1
    params = dict(
        output_multiplier=multiplier,
        output_shift=shift,
        input_zero_point=int(xq.zero_point),
        output_zero_point=int(yq.zero_point),
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_hw=tuple(out_shape[2:]),
        activation_min=amin,
        activation_max=amax,
        accumulator=_accumulator(run, node, bias_sets_width=not depthwise),
    )
    if depthwise:
        filt = w.transpose(1, 2, 3, 0)  # (C*mult, 1, kh, kw) -> [1, kh, kw, C*mult]
        layer = _Layer(k.depthwise_conv2d, np.ascontiguousarray(_as_stored(run, node, filt)), bias, params)
    else:
        layer = _Layer(k.conv2d, np.ascontiguousarray(_as_stored(run, node, w.transpose(0, 2, 3, 1))), bias, params)
    # the stored weights (through the int4 packing where TFLM packs them) back in ONNX's OIHW layout
    stored = layer.filter.transpose(3, 0, 1, 2) if depthwise else layer.filter.transpose(0, 3, 1, 2)
    layer.nchw = _NchwConv.build(run, node, stored, w_scale, bias, params)
    return layer


@dataclass
class _NchwConv:
    """An int8 conv run on the graph's NCHW tensors: the exact accumulators of onnxruntime's prepared conv
    (:class:`~simulator.execute.ort_prepared.PreparedConv`: the same sum of (x - zp_x) w, through float32 BLAS
    with a static proof over every int8 input that each partial sum is exact), then TFLM's requantization
    (``tflm_kernels._requantize_biased``: double rounding, clamps, and the int32 overflow error). The kernel
    functions of tflm_kernels remain the reference it is tested against."""

    accumulate: PreparedConv
    bias: np.ndarray  # int64, zeros for a bias-less layer
    params: dict
    channels: int
    out_hw: tuple[int, int]
    requant: k.ChannelRequant | None  # the prepared requantization, where a static bound allows it

    @staticmethod
    def build(run: _Run, node: Node, w: np.ndarray, w_scale, bias, params: dict) -> _NchwConv | None:
        """None where this path does not apply (16x8) or float32 cannot be proven exact: the NHWC kernels run
        instead. ``w`` is OIHW, as stored for TFLM (int4 weights through their packing)."""
        x_name = node.inputs[0]
        xq = run.q(x_name, node)
        if _dtype(xq) != np.int8 or params["accumulator"] != "int32":
            return None
        if not -128 <= int(params["output_zero_point"]) <= 127:
            raise EdgesimError(
                f"node {node.name!r}: output zero point {int(params['output_zero_point'])} is outside int8; "
                "the model's quantization parameters are invalid"
            )
        x_shape = run.graph.tensors[x_name].shape
        _, begin, end, strides = window_geometry(node, x_shape[2:], tuple(w.shape[2:]))
        prepared = PreparedConv.build(
            x_shape, np.int8, int(xq.zero_point), float(xq.scale), w, 0, w_scale,
            float(run.out_q(node).scale), np.int8(params["output_zero_point"]), bias,
            strides=strides, dilations=list(params["dilation"]), pads_begin=begin, pads_end=end,
            group=int(node.attr("group", 1)), name=node.name, work=run.work,
        )  # fmt: skip
        if prepared is None or tuple(prepared.out_hw) != tuple(params["output_hw"]):
            return None
        requant = dict(
            multiplier=params["output_multiplier"], shift=params["output_shift"],
            output_zero_point=params["output_zero_point"], activation_min=params["activation_min"],
            activation_max=params["activation_max"],
        )  # fmt: skip
        # every partial sum of (x - zp) w over any int8 x (see exact_sums)
        rows = w.reshape(w.shape[0], -1)
        info = np.iinfo(np.int8)
        zp = int(xq.zero_point)
        bound = subset_sum_bound(min(int(info.min) - zp, 0), max(int(info.max) - zp, 0), row_sign_sums(rows))
        channel_requant = k.ChannelRequant.build(
            bias, params["output_multiplier"], params["output_shift"], params["output_zero_point"],
            params["activation_min"], params["activation_max"], np.int8, bound, w.shape[0],
        )  # fmt: skip
        bias = np.zeros(w.shape[0], np.int64) if bias is None else bias
        return _NchwConv(prepared, bias, requant, w.shape[0], tuple(params["output_hw"]), channel_requant)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ho, wo = self.out_hw
        out = np.empty((x.shape[0], self.channels, ho, wo), np.int8)
        for i in range(x.shape[0]):
            acc, row = self.accumulate.accumulate(x[i])  # (channels, output rows * row), in work buffers
            if self.requant is not None:
                self.requant(acc, out[i], None if row == wo else row)
                continue
            # channels last for the general requantization (a transposed view), then back, dropping padding
            y = k._requantize_biased(acc.T, self.bias, **self.params, out_dtype=np.int8, kernel="conv2d")
            out[i] = y.T.reshape(self.channels, ho, row)[:, :, :wo]
        return out


def _conv(run: _Run, node: Node) -> np.ndarray:
    layer = run.prepared(node, _conv_layer)
    x = run.values[node.inputs[0]]
    if layer.nchw is not None:
        return layer.nchw(x)
    y = layer.kernel(_nhwc(x), layer.filter, layer.bias, **layer.params, filter_cache=layer.cache)
    return _nchw(y)


def _conv_transpose_layer(run: _Run, node: Node) -> _Layer:
    """TRANSPOSE_CONV: ONNX's [I, O, kh, kw] weights back to TFLite's OHWI, per-output-channel multipliers,
    the leading pads TFLite derives for the forward conv, int64 accumulators for 16x8."""
    g = run.graph
    if int(node.attr("group", 1)) != 1 or any(d != 1 for d in node.attr("dilations", [1, 1])):
        raise fail(node, "TFLite's TRANSPOSE_CONV has no groups or dilations")
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    w, w_scale = _weights(g, node, 1)
    filt = np.ascontiguousarray(w.transpose(1, 2, 3, 0))
    channels = filt.shape[0]
    bias = _bias(g, node, 2, float(xq.scale), w_scale, channels)
    multiplier, shift = _conv_multipliers(float(xq.scale), np.broadcast_to(w_scale, (channels,)), float(yq.scale))
    pads = node.attr("pads", [0, 0, 0, 0])
    amin, amax = _clamp(node, yq)
    params = dict(
        output_multiplier=multiplier, output_shift=shift, output_hw=tuple(g.tensors[node.outputs[0]].shape[2:]),
        input_zero_point=int(xq.zero_point), output_zero_point=int(yq.zero_point),
        stride=tuple(node.attr("strides", [1, 1])), padding=(int(pads[0]), int(pads[1])), activation_min=amin,
        activation_max=amax, accumulator="int64" if xq.bits == 16 else "int32", output_dtype=_dtype(yq),
    )  # fmt: skip
    return _Layer(k.transpose_conv2d, filt, bias, params)


def _conv_transpose(run: _Run, node: Node) -> np.ndarray:
    layer = run.prepared(node, _conv_transpose_layer)
    return _nchw(layer.kernel(_nhwc(run.values[node.inputs[0]]), layer.filter, layer.bias, **layer.params))


def _gemm_layer(run: _Run, node: Node) -> _Layer:
    g = run.graph
    if node.attr("transA", 0) or node.attr("alpha", 1.0) != 1.0 or node.attr("beta", 1.0) != 1.0:
        raise fail(node, "only Gemm with transA=0, alpha=beta=1 maps to TFLite's FULLY_CONNECTED")
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    w, w_scale = _weights(g, node, 1)
    if not node.attr("transB", 0):
        w = w.T
    bias = _bias(g, node, 2, float(xq.scale), w_scale, w.shape[0])
    multiplier, shift = _conv_multipliers(float(xq.scale), np.broadcast_to(w_scale, (w.shape[0],)), float(yq.scale))
    amin, amax = _clamp(node, yq)
    params = dict(
        output_multiplier=multiplier, output_shift=shift, input_zero_point=int(xq.zero_point),
        output_zero_point=int(yq.zero_point), activation_min=amin, activation_max=amax,
        accumulator=_accumulator(run, node, bias_sets_width=False),
    )  # fmt: skip
    return _Layer(k.fully_connected, np.ascontiguousarray(_as_stored(run, node, w)), bias, params)


def _gemm(run: _Run, node: Node) -> np.ndarray:
    layer = run.prepared(node, _gemm_layer)
    x = run.values[node.inputs[0]]
    y = layer.kernel(x, layer.filter, layer.bias, **layer.params, filter_cache=layer.cache)
    return y.reshape(run.graph.tensors[node.outputs[0]].shape)


def _same_quant(run: _Run, node: Node) -> None:
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    if float(xq.scale) != float(yq.scale) or int(xq.zero_point) != int(yq.zero_point):
        raise fail(node, "TFLite requires its output to share the input's scale and zero point")


def _pool(run: _Run, node: Node) -> np.ndarray:
    _same_quant(run, node)
    x = run.values[node.inputs[0]]
    yq = run.out_q(node)
    out_shape = run.graph.tensors[node.outputs[0]].shape
    amin, amax = _clamp(node, yq)
    if node.op_type == "GlobalMaxPool":  # (GlobalAveragePool runs as MEAN)
        window, padding, stride = tuple(x.shape[2:]), (0, 0), (1, 1)
    else:
        window = tuple(node.attr("kernel_shape"))
        padding, stride, dilation = _padding_and_stride(node, x.shape[2:], window)
        if dilation != (1, 1):
            raise fail(node, "dilated pooling has no TFLite kernel")
        if node.op_type == "AveragePool" and node.attr("count_include_pad", 0):
            raise fail(node, "count_include_pad=1 has no TFLite kernel (TFLite averages in-image taps only)")
    kernel = k.max_pool2d if node.op_type in ("MaxPool", "GlobalMaxPool") else k.average_pool2d
    y = kernel(_nhwc(x), window, stride=stride, padding=padding, output_hw=tuple(out_shape[2:]),
               activation_min=amin, activation_max=amax)  # fmt: skip
    return _nchw(y)


_BYTE_VALUES = np.arange(256, dtype=np.uint8).view(np.int8)  # the int8 value of each byte pattern


@dataclass
class _Elementwise:
    """An elementwise int8 kernel with its parameters bound, and the table of its result for every combination
    of int8 inputs, indexed by the inputs' byte patterns. The table is the kernel itself evaluated once on all
    256^arity inputs, so a lookup returns exactly what the kernel would; it is None where the kernel raises
    for some combination (an int32 overflow): the real inputs then run through the kernel, which raises only
    if they are the ones that overflow."""

    function: Callable[..., np.ndarray]
    table: np.ndarray | None


def _tabulate(function: Callable[..., np.ndarray], arity: int) -> _Elementwise:
    try:
        table = function(*np.meshgrid(*([_BYTE_VALUES] * arity), indexing="ij"))
    except (fp.FixedPointOverflow, ValueError):
        table = None
    return _Elementwise(function, table)


def _elementwise(run: _Run, node: Node, bind: Callable[[_Run, Node], Callable[..., np.ndarray]], arity: int):
    """Run ``bind(run, node)`` (the kernel with the node's parameters) on the node's first ``arity`` inputs,
    through its table when they are int8."""
    op = run.prepared(node, lambda r, n: _tabulate(bind(r, n), arity))
    xs = [run.values[name] if name in run.values else _constant_levels(run, node, name) for name in node.inputs[:arity]]
    if op.table is None or not all(x.dtype == np.int8 for x in xs):
        return op.function(*xs)
    if len({x.shape for x in xs}) == 1 and _channels_last(xs):  # keep NHWC results NHWC (no copies)
        return _nchw(op.table[tuple(_nhwc(x).view(np.uint8) for x in xs)])
    return op.table[tuple(x.view(np.uint8) for x in xs)]


def _constant_levels(run: _Run, node: Node, name: str) -> np.ndarray:
    """A quantized constant operand (a MUL factor, a PADV2 value) as the integers TFLite stores for it."""
    t = run.graph.tensors[name]
    if not t.constant or t.quant is None:
        raise fail(node, f"its operand {name!r} is neither an activation nor a quantized constant")
    q = run.q(name, node)
    levels = np.rint(np.asarray(t.data, np.float64) / float(q.scale)) + int(q.zero_point)
    return np.clip(levels, q.qmin, q.qmax).astype(_dtype(q))


def _add_function(run: _Run, node: Node) -> Callable[..., np.ndarray]:
    a, b = node.inputs
    aq, bq, yq = run.q(a, node), run.q(b, node), run.out_q(node)
    # int16 ADD keeps 15 fractional bits (TFLM's general-scale path), int8 20
    params = fp.add_params(float(aq.scale), float(bq.scale), float(yq.scale), left_shift=15 if yq.bits == 16 else 20)
    amin, amax = _clamp(node, yq)
    return lambda x1, x2: k.add(
        x1, x2, input1_zero_point=int(aq.zero_point), input2_zero_point=int(bq.zero_point),
        output_zero_point=int(yq.zero_point), activation_min=amin, activation_max=amax, **params,
    )  # fmt: skip


def _mul_function(run: _Run, node: Node) -> Callable[..., np.ndarray]:
    a, b = node.inputs
    aq, bq, yq = run.q(a, node), run.q(b, node), run.out_q(node)
    multiplier, shift = fp.mul_multiplier(float(aq.scale), float(bq.scale), float(yq.scale))
    amin, amax = _clamp(node, yq)
    return lambda x1, x2: k.mul(
        x1, x2, input1_zero_point=int(aq.zero_point), input2_zero_point=int(bq.zero_point),
        output_zero_point=int(yq.zero_point), output_multiplier=multiplier, output_shift=shift,
        activation_min=amin, activation_max=amax,
    )  # fmt: skip


def _relu_function(run: _Run, node: Node) -> Callable[..., np.ndarray]:
    """A Relu / Clip no kernel absorbed: TFLM's RELU rescales input to output parameters, then clamps."""
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    g = run.graph
    if node.op_type == "Relu":
        lo, hi = 0.0, np.inf
    else:
        bounds = [np.asarray(g.tensors[n].data).item() if n else None for n in (node.inputs + ["", ""])[1:3]]
        lo = bounds[0] if bounds[0] is not None else node.attr("min", -np.inf)
        hi = bounds[1] if bounds[1] is not None else node.attr("max", np.inf)
    if (lo, hi) == (0.0, 6.0):
        return _relu6_function(xq, yq)
    clamp_node = Node(node.name, node.op_type, node.inputs, node.outputs, {"activation": (lo, hi)})
    amin, amax = _clamp(clamp_node, yq)
    # TFLM divides the scales in float32, then widens the quotient to double
    multiplier, shift = fp.quantize_multiplier(float(np.float32(xq.scale) / np.float32(yq.scale)))

    def relu(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.int64) - int(xq.zero_point)
        scaled = fp.multiply_by_quantized_multiplier(x, multiplier, shift, kernel="relu") + int(yq.zero_point)
        return np.clip(scaled, amin, amax).astype(_dtype(yq))

    return relu


def _relu6_function(xq: QuantParams, yq: QuantParams) -> Callable[..., np.ndarray]:
    """TFLM's RELU6 clamps in the input's domain, between its zero point and the level of 6.0 (float32
    quotient, rounded half away, saturated), and writes those integers as they are: unlike RELU (and TFLite's
    RELU6) it does not requantize to the output's parameters, even when the converter gave the output others."""
    six_level = int(fp.round_half_away(float(np.float32(6.0) / np.float32(xq.scale)))) + int(xq.zero_point)
    low, high = int(xq.zero_point), min(max(six_level, xq.qmin), xq.qmax)
    dtype = _dtype(yq)
    return lambda x: np.clip(x, low, high).astype(dtype)


def _add(run: _Run, node: Node) -> np.ndarray:
    return _elementwise(run, node, _add_function, 2)


def _mul(run: _Run, node: Node) -> np.ndarray:
    return _elementwise(run, node, _mul_function, 2)


def _relu(run: _Run, node: Node) -> np.ndarray:
    return _elementwise(run, node, _relu_function, 1)


def _pad(run: _Run, node: Node) -> np.ndarray:
    if node.attr("mode", "constant") != "constant":
        raise fail(node, "only constant padding has a TFLite PAD kernel")
    _same_quant(run, node)
    out_shape = run.graph.tensors[node.outputs[0]].shape
    x = run.values[node.inputs[0]]
    pads = run.graph.tensors[node.inputs[1]].data.reshape(-1) if len(node.inputs) > 1 else node.attr("pads")
    rank = x.ndim
    pairs = [(int(pads[i]), int(pads[i + rank])) for i in range(rank)]
    value_name = node.inputs[2] if len(node.inputs) > 2 else ""
    pad_value = int(run.out_q(node).zero_point)
    if value_name and run.graph.tensors[value_name].quant is not None:  # PADV2: its quantized value
        pad_value = int(_constant_levels(run, node, value_name).reshape(-1)[0])
    elif value_name and np.asarray(run.graph.tensors[value_name].data).item():
        raise fail(node, "a non-zero pad value has no int8 meaning here; pad with zeros (the zero point)")
    y = k.pad(x, pairs, pad_value=pad_value)
    assert y.shape == out_shape, (y.shape, out_shape)
    return y


def _concat(run: _Run, node: Node) -> np.ndarray:
    yq = run.out_q(node)
    for name in node.inputs:
        q = run.q(name, node)
        if float(q.scale) != float(yq.scale) or int(q.zero_point) != int(yq.zero_point):
            raise fail(node, "TFLite's CONCATENATION needs every input to share the output's scale and zero point")
    parts = [run.values[n] if n in run.values else _constant_levels(run, node, n) for n in node.inputs]
    return np.concatenate(parts, axis=int(node.attr("axis", 1)))


def _softmax(run: _Run, node: Node) -> np.ndarray:
    x = run.values[node.inputs[0]]
    axis = int(node.attr("axis", -1)) % x.ndim
    if axis != x.ndim - 1:
        raise fail(node, "TFLite's SOFTMAX works on the last axis only")
    xq = run.q(node.inputs[0], node)
    if xq.bits == 16:
        return _softmax_int16(run, node, x, xq)
    # TFLite fixes an int8 softmax output at scale 1/256, zero point -128
    run.quant[node.outputs[0]] = SOFTMAX_OUTPUT
    multiplier, left_shift, diff_min = fp.softmax_int8_params(float(xq.scale))
    return k.softmax_int8(x, input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min)


def _fixed_output(run: _Run, node: Node, fixed: QuantParams, op: str) -> None:
    """Record an output TFLite fixes; a graph that quantized it otherwise would be read wrongly, so that fails."""
    name = node.outputs[0]
    given = run.graph.tensors[name].quant
    if given is not None and (
        given.per_channel or float(given.scale) != float(fixed.scale) or int(given.zero_point) != int(fixed.zero_point)
    ):
        raise fail(node, f"TFLite fixes an int8 {op} output at scale {float(fixed.scale)}, zero point "
                         f"{int(fixed.zero_point)}; tensor {name!r} is quantized otherwise")  # fmt: skip
    run.quant[name] = fixed


def _int8_only(run: _Run, node: Node, op: str) -> QuantParams:
    xq = run.q(node.inputs[0], node)
    if xq.bits != 8:
        raise fail(node, f"the tflm mode runs {op} on int8 activations only (its 16x8 kernel is not modelled)")
    return xq


def _logistic(run: _Run, node: Node) -> np.ndarray:
    xq = _int8_only(run, node, "LOGISTIC")
    _fixed_output(run, node, LOGISTIC_OUTPUT, "LOGISTIC")
    multiplier, left_shift, radius = fp.logistic_int8_params(float(xq.scale))
    return k.logistic_int8(
        run.values[node.inputs[0]], input_zero_point=int(xq.zero_point), input_multiplier=multiplier,
        input_left_shift=left_shift, input_range_radius=radius,
    )  # fmt: skip


def _hard_swish(run: _Run, node: Node) -> np.ndarray:
    xq, yq = _int8_only(run, node, "HARD_SWISH"), run.out_q(node)
    params = fp.hard_swish_params(float(xq.scale), float(yq.scale))
    return k.hard_swish_int8(
        run.values[node.inputs[0]], input_zero_point=int(xq.zero_point), output_zero_point=int(yq.zero_point),
        **params,
    )  # fmt: skip


def _mean_axes(run: _Run, node: Node, rank: int) -> tuple[tuple[int, ...], bool]:
    """(reduced axes, keepdims) of a GlobalAveragePool or ReduceMean, as TFLite's MEAN would get them."""
    if node.op_type == "GlobalAveragePool":
        return tuple(range(2, rank)), True
    given = None
    if len(node.inputs) > 1 and node.inputs[1]:
        given = [int(a) for a in np.asarray(run.graph.tensors[node.inputs[1]].data).reshape(-1)]
    axes = get_op("ReduceMean").axes(node, given, rank)
    if not axes:
        return axes, True
    if len(axes) > 2:
        raise fail(node, f"TFLM's MEAN reduces at most two axes; this one reduces {len(axes)}")
    return axes, bool(node.attr("keepdims", 1))


def _mean(run: _Run, node: Node) -> np.ndarray:
    """GlobalAveragePool and ReduceMean as TFLite's MEAN, which is what the converter emits for both (Keras'
    GlobalAveragePooling2D, tf.reduce_mean): its output has its own calibrated parameters. TFLM sums and
    truncates when they equal the input's, and requantizes the zero-point corrected sum otherwise."""
    x = run.values[node.inputs[0]]
    axes, keepdims = _mean_axes(run, node, x.ndim)
    if not axes:
        return _reshape_like(run, node)
    xq, yq = run.q(node.inputs[0], node), run.out_q(node)
    if float(xq.scale) == float(yq.scale) and int(xq.zero_point) == int(yq.zero_point):
        return k.mean_same_quant(x, axes, keepdims=keepdims)
    multiplier, shift = fp.quantize_multiplier(float(xq.scale) / float(yq.scale))
    return k.mean_requantize(
        x, axes, input_zero_point=int(xq.zero_point), output_zero_point=int(yq.zero_point),
        output_multiplier=multiplier, output_shift=shift, keepdims=keepdims,
    )  # fmt: skip


def _softmax_int16(run: _Run, node: Node, x: np.ndarray, xq: QuantParams) -> np.ndarray:
    """int16 SOFTMAX: exp and 1/(1+x) lookup tables, output fixed at scale 1/32768, zero point 0."""
    run.quant[node.outputs[0]] = SOFTMAX_OUTPUT_INT16
    multiplier, shift = fp.softmax_int16_params(float(xq.scale))
    return k.softmax_int16(x, input_multiplier=multiplier, input_shift=shift)


def _reshape_like(run: _Run, node: Node) -> np.ndarray:
    run.quant[node.outputs[0]] = run.q(node.inputs[0], node)
    return run.values[node.inputs[0]].reshape(run.graph.tensors[node.outputs[0]].shape)


def _transpose(run: _Run, node: Node) -> np.ndarray:
    run.quant[node.outputs[0]] = run.q(node.inputs[0], node)
    x = run.values[node.inputs[0]]
    return np.transpose(x, node.attr("perm", list(range(x.ndim))[::-1]))


def _linear_quant(run: _Run, node: Node) -> QuantParams:
    """The per-tensor int8 / int16 parameters a QuantizeLinear / DequantizeLinear names by its constants."""
    g = run.graph
    scale = np.asarray(g.tensors[node.inputs[1]].data)
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zp = np.asarray(g.tensors[zp_name].data) if zp_name else np.zeros((), np.uint8)
    if scale.size != 1 or zp.size != 1:
        raise fail(node, "it is quantized per channel; TFLM's QUANTIZE / DEQUANTIZE are per tensor")
    if zp.dtype not in (np.int8, np.int16, np.uint8):
        raise fail(node, f"it quantizes to {zp.dtype}; the tflm mode runs int8 or int16 (16x8) activations")
    if zp.dtype == np.int16 and int(zp) != 0:
        raise fail(node, f"it quantizes to int16 with zero point {int(zp)}; TFLite's 16x8 scheme needs zero point 0")
    return QuantParams(8 * zp.dtype.itemsize, np.asarray(scale.reshape(()), np.float32),
                       np.asarray(int(zp)), symmetric=int(zp) == 0, signed=zp.dtype != np.uint8)  # fmt: skip


def _same_params(a: QuantParams, b: QuantParams) -> bool:
    return a.bits == b.bits and float(a.scale) == float(b.scale) and int(a.zero_point) == int(b.zero_point)


def _quantize_linear(run: _Run, node: Node) -> np.ndarray:
    """TFLite's QUANTIZE: float input (a float model input) through AffineQuantize, integer input (a 16x8
    concatenation's differently scaled operand, or the first half of an imported DEQUANTIZE, whose parameters
    are the input's own so that it gives the integers back unchanged) through Requantize."""
    x = run.values[node.inputs[0]]
    yq = _linear_quant(run, node)
    if not yq.signed and (x.dtype.kind == "f" or run.q(node.inputs[0], node).bits != 8):
        raise fail(node, "it quantizes to uint8; the tflm mode runs int8 or int16 (16x8) activations (TFLM's "
                         "QUANTIZE writes uint8 from int8 only)")  # fmt: skip
    run.quant[node.outputs[0]] = yq
    if x.dtype.kind == "f":
        return k.affine_quantize(x, scale=float(yq.scale), zero_point=int(yq.zero_point), output_dtype=_dtype(yq))
    xq = run.q(node.inputs[0], node)
    # TFLM: QuantizeMultiplier(double(s_in) / double(s_out))
    multiplier, shift = run.prepared(node, lambda r, n: fp.quantize_multiplier(float(xq.scale) / float(yq.scale)))
    return k.requantize(x, multiplier=multiplier, shift=shift, input_zero_point=int(xq.zero_point),
                        output_zero_point=int(yq.zero_point), output_dtype=_dtype(yq))  # fmt: skip


def _dequantize_linear(run: _Run, node: Node) -> np.ndarray:
    """TFLite's DEQUANTIZE to float32 where the output is a float tensor. An output that carries the same
    quantization (the second half of an imported QUANTIZE: the graph holds quantized activations as the real
    values they stand for) keeps the integers, as TFLM holds them."""
    x, xq, q = run.values[node.inputs[0]], run.q(node.inputs[0], node), _linear_quant(run, node)
    if not _same_params(xq, q):
        raise fail(node, "its scale / zero point differ from its input's; TFLite's DEQUANTIZE reads its input's own")
    out_q = run.graph.tensors[node.outputs[0]].quant
    if out_q is None:
        return k.dequantize(x, scale=float(q.scale), zero_point=int(q.zero_point))
    if out_q.per_channel or not _same_params(out_q, q):
        raise fail(node, f"its output {node.outputs[0]!r} is quantized otherwise than its input; requantize with "
                         "a QuantizeLinear")  # fmt: skip
    run.quant[node.outputs[0]] = xq
    return x


def _moved(run: _Run, node: Node, values: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of a data-movement op (STRIDED_SLICE, GATHER, SPLIT, ...): TFLM copies the integers, which each
    output reads with its own parameters (the converter gives it the input's)."""
    if values and values[0].dtype.kind == "f":  # float data (a float resource variable) moves as it is
        return values
    xq = run.q(node.inputs[0], node)
    for name in node.outputs:
        given = run.graph.tensors[name].quant
        run.quant[name] = xq if given is None else _activation_quant(run.graph, name, node)
    return values


def _registry_kernel(run: _Run, node: Node) -> list[np.ndarray]:
    """Slice, Gather, Split, Identity on integers: the registry's own kernel with the node's constant inputs."""
    x = run.values[node.inputs[0]]
    rest = [np.asarray(run.graph.tensors[n].data) if n else None for n in node.inputs[1:]]
    return _moved(run, node, get_op(node.op_type).run(node, x, *rest))


def _operand_levels(run: _Run, node: Node, name: str) -> np.ndarray:
    return run.values[name] if name in run.values else _constant_levels(run, node, name)


def _matmul(run: _Run, node: Node) -> np.ndarray:
    """BATCH_MATMUL: one per-tensor multiplier from float32(s_lhs * s_rhs) / s_out (TFLite's
    GetQuantizedConvolutionMultipler), int32 accumulators for int8, int64 for 16x8 (zero points 0)."""
    a, c = node.inputs
    aq, cq, yq = run.q(a, node), run.q(c, node), run.out_q(node)
    multiplier, shift = fp.fully_connected_multiplier(float(aq.scale), float(cq.scale), float(yq.scale))
    amin, amax = _clamp(node, yq)
    return k.batch_matmul(
        _operand_levels(run, node, a), _operand_levels(run, node, c), lhs_zero_point=int(aq.zero_point),
        rhs_zero_point=int(cq.zero_point), output_zero_point=int(yq.zero_point), output_multiplier=multiplier,
        output_shift=shift, activation_min=amin, activation_max=amax, output_dtype=_dtype(yq),
    )  # fmt: skip


def _prelu(run: _Run, node: Node) -> np.ndarray:
    """PRELU with TFLM's two multipliers: s_in / s_out for x >= 0, s_in * s_alpha / s_out below (in double)."""
    x, alpha = node.inputs
    xq, aq, yq = run.q(x, node), run.q(alpha, node), run.out_q(node)
    m1, s1 = fp.quantize_multiplier(float(xq.scale) / float(yq.scale))
    m2, s2 = fp.quantize_multiplier(float(xq.scale) * float(aq.scale) / float(yq.scale))
    return ta.prelu(
        run.values[x], _operand_levels(run, node, alpha), input_zero_point=int(xq.zero_point),
        alpha_zero_point=int(aq.zero_point), output_zero_point=int(yq.zero_point), multiplier_1=m1, shift_1=s1,
        multiplier_2=m2, shift_2=s2, output_dtype=_dtype(yq),
    )  # fmt: skip


TANH_OUTPUT = QuantParams(8, np.array(1 / 128, np.float32), np.array(0), symmetric=True)


def _tanh(run: _Run, node: Node) -> np.ndarray:
    """TANH: int8 through gemmlowp's fixed-point tanh (output fixed at 1/128, zero point 0), int16 through
    the sigmoid table (output scale 2^-15, zero points 0)."""
    x, xq = run.values[node.inputs[0]], run.q(node.inputs[0], node)
    if xq.bits == 16:
        yq = run.out_q(node)
        if int(xq.zero_point) or int(yq.zero_point):
            raise fail(node, "TFLM's int16 TANH needs zero points 0")
        multiplier, shift = ta.tanh_int16_params(float(xq.scale), float(yq.scale))
        return ta.tanh_int16(x, input_multiplier=multiplier, input_left_shift=shift)
    _fixed_output(run, node, TANH_OUTPUT, "TANH")
    multiplier, left_shift, radius = ta.tanh_int8_params(float(xq.scale))
    return ta.tanh_int8(x, input_zero_point=int(xq.zero_point), input_multiplier=multiplier,
                        input_left_shift=left_shift, input_range_radius=radius)  # fmt: skip


KERNELS: dict[str, Callable[[_Run, Node], np.ndarray]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _mean,
    "GlobalMaxPool": _pool,
    "Add": _add,
    "Mul": _mul,
    "Relu": _relu,
    "Clip": _relu,
    "Pad": _pad,
    "Concat": _concat,
    "Softmax": _softmax,
    "Flatten": _reshape_like,
    "Reshape": _reshape_like,
    "Squeeze": _reshape_like,
    "Unsqueeze": _reshape_like,
    "Transpose": _transpose,
    "Sigmoid": _logistic,
    "HardSwish": _hard_swish,
    "ReduceMean": _mean,
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "Slice": _registry_kernel,
    "Gather": _registry_kernel,
    "Split": _registry_kernel,
    "Identity": _registry_kernel,
    "DepthToSpace": _registry_kernel,
    "MatMul": _matmul,
    "PRelu": _prelu,
    "Tanh": _tanh,
}
#: ops that change the activation width on purpose (TFLite's QUANTIZE / DEQUANTIZE)
_WIDTH_CHANGERS = ("QuantizeLinear", "DequantizeLinear")


class TflmSession:
    """A quantized graph prepared for tflm runs, as an interpreter is prepared once on a device: deployment
    fusion happens here, and each layer's constants (integer weights, biases, multipliers, clamps, the proof
    that its sums are exact in float32 and the BLAS-ready weights) are derived on its first run and reused by
    every later run, with one set of work buffers for the whole graph. Runs are independent (nothing of one
    input is kept), one at a time per session."""

    def __init__(self, graph: Graph):
        check_tensors(graph.tensors.values(), "the graph to run")
        self.graph = for_deployment(graph)
        self._prepared: dict[str, object] = {}
        self._work = WorkBuffers()
        self.state = state.initial_state(graph)  # resource variables (streaming models), kept between runs

    def run(
        self, feeds: dict[str, np.ndarray], keep: bool = False
    ) -> tuple[dict[str, np.ndarray], dict[str, QuantParams]]:
        """Float feeds are quantized with the input tensors' parameters (int8 feeds, int16 for 16x8, are taken
        as they are); returns the integer value of every output (every activation with ``keep``) and the
        quantization needed to read them. A model's resource variables are fed from the session's state, which
        the run's assignments then update (as TFLM keeps them between invocations)."""
        values, quant = _execute(self.graph, self._prepared, state.with_state(feeds, self.state), keep, self._work)
        self.state = state.next_state(self.graph, self.state, values)
        return values, quant


def prepare_tflm(graph: Graph) -> TflmSession:
    """A session that runs ``graph`` many times (``session.run(feeds)``) paying for its preparation once."""
    return TflmSession(graph)


def run_tflm(
    graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, QuantParams]]:
    """Run a quantized graph once with TFLM's integer arithmetic (see :meth:`TflmSession.run`)."""
    return TflmSession(graph).run(feeds, keep)


def _feed(name: str, value: np.ndarray, q: QuantParams) -> np.ndarray:
    """A feed as the input's integers: integers of the input's type pass as they are, floats are quantized."""
    dtype = _dtype(q)
    if value.dtype == dtype:
        return value
    if np.issubdtype(value.dtype, np.integer):
        raise EdgesimError(
            f"feed {name!r} holds {value.dtype}; the graph's input is {np.dtype(dtype).name} (or feed floats)"
        )
    if value.dtype.kind != "f":
        raise EdgesimError(
            f"feed {name!r} has dtype {value.dtype}; the tflm mode takes float values (quantized with the "
            f"input's parameters) or the {np.dtype(dtype).name} integers themselves"
        )
    return quantize_input(value, q)


#: ops that take float values as they are in the tflm mode: QUANTIZE, and byte copies (a float resource
#: variable of a streaming model is sliced before its QUANTIZE)
_FLOAT_READERS = ("QuantizeLinear", "Slice", "Gather", "Split", "Identity")


def _float_input(graph: Graph, name: str) -> bool:
    """Whether graph input ``name`` stays float: unquantized and read by QuantizeLinear nodes (a TFLite model
    converted with float input starts with QUANTIZE) or byte copies only."""
    readers = graph.consumers.get(name, [])
    return graph.tensors[name].quant is None and bool(readers) and all(n.op_type in _FLOAT_READERS for n in readers)


def _float_feed(name: str, value: np.ndarray) -> np.ndarray:
    if value.dtype.kind != "f":
        raise EdgesimError(f"feed {name!r} has dtype {value.dtype}; the graph's input is float32 (it starts with "
                           "a QuantizeLinear)")  # fmt: skip
    return value.astype(np.float32)


def _check_widths(run: _Run, node: Node) -> None:
    """TFLM kernels take one activation width per op (int8, or int16 for 16x8); a change of width needs a
    QUANTIZE op (QuantizeLinear, which an imported .tflite may have and edgesim's quantize pass does not add)."""
    if node.op_type in _WIDTH_CHANGERS:
        return
    names = [n for n in node.inputs if n in run.values and run.values[n].dtype.kind != "f"]
    if run.graph.tensors[node.outputs[0]].quant is not None:
        names.append(node.outputs[0])
    if not names:
        return
    widths = {run.q(n, node).bits for n in names}
    if len(widths) > 1:
        raise fail(node, "it mixes int8 and int16 activations; TFLM runs one width per op (requantize with one "
                         "activation width for the whole graph)")  # fmt: skip


def _execute(
    deployed: Graph, prepared: dict[str, object], feeds: dict[str, np.ndarray], keep: bool, work: WorkBuffers
) -> tuple[dict[str, np.ndarray], dict[str, QuantParams]]:
    run = _Run(deployed, prepared, work)
    for name in deployed.inputs:
        if name not in feeds:
            raise EdgesimError(f"no feed for input {name!r}; the graph's inputs are {', '.join(deployed.inputs)}")
        value = np.asarray(feeds[name])
        if tuple(value.shape) != deployed.tensors[name].shape:
            raise EdgesimError(
                f"feed {name!r} has shape {value.shape}; the graph expects {deployed.tensors[name].shape}"
            )
        if _float_input(deployed, name):
            run.values[name] = _float_feed(name, value)
            continue
        q = _activation_quant(deployed, name, deployed.order[0])
        run.quant[name] = q
        run.values[name] = _feed(name, value, q)
    for node in deployed.order:
        kernel = KERNELS.get(node.op_type)
        if kernel is None:
            raise fail(node, f"the tflm mode has no int8 kernel for {node.op_type}; supported: {', '.join(KERNELS)}")
        _check_widths(run, node)
        try:
            result = kernel(run, node)
            if isinstance(result, list):  # (a multi-output op: Split)
                run.values.update(zip(node.outputs, result, strict=True))
                continue
            run.values[node.outputs[0]] = result
        except fp.FixedPointOverflow as exc:  # the chip would wrap here: say which layer
            raise fail(node, str(exc)) from None
        except ValueError as exc:  # a parameter TFLM's C code checks and refuses (the device would abort)
            raise fail(node, f"TFLM refuses its parameters: {exc}") from None
        if run.values[node.outputs[0]].dtype.kind != "f":  # (a DequantizeLinear may write float32)
            run.q(node.outputs[0], node)  # (a prepared layer skips reading its output's parameters)
    names = list(run.values) if keep else list(deployed.outputs)
    return {n: np.ascontiguousarray(run.values[n]) for n in names}, {n: run.quant[n] for n in names if n in run.quant}


def run_tflm_float(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`run_tflm` with its outputs dequantized to float."""
    values, quant = run_tflm(graph, feeds)
    return {name: dequantize(values[name], quant[name]) if name in quant else values[name] for name in values}
