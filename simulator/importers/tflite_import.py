"""``.tflite`` (quantized or float) -> op graph, through the ``tflite`` package (the TFLite schema's flatbuffer
bindings).

The graph edgesim builds is ONNX-shaped and NCHW, so the importer changes layouts on the way in:

* rank-4 activations, NHWC in TFLite, become NCHW tensors. **Graph feeds are NCHW**: a TFLite input ``x`` of
  shape [N, H, W, C] is fed as ``x.transpose(0, 3, 1, 2)``, and a rank-4 output comes back NCHW.
  ``graph.metadata["tflite_layout"]`` records, for every graph input and output, the permutation that takes
  the TFLite tensor to edgesim's (``[0, 3, 1, 2]`` for rank 4, identity otherwise), and
  ``graph.metadata["file_layout"]`` the same for every rank-4 file tensor: ``edgesim run`` converts at its
  boundary with it (simulator/execute/layout.py), so its users feed and get NHWC;
* tensor-manipulation operators (SHAPE, STRIDED_SLICE, PACK, UNPACK, GATHER, TRANSPOSE, SPLIT, SPLIT_V,
  BATCH_MATMUL) work in TFLite's layout or fold to constants (see tflite_movement.py); DEQUANTIZE of a
  constant (FLOAT16 or int8 weights of a float model) folds to a float32 constant;
* resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE): a read becomes an extra graph input, an
  assignment an extra graph output, and the CALL_ONCE init subgraph's values the initial state
  (``graph.metadata["tflite_variables"]``, run by simulator/execute/state.py);
* CONV_2D filters, OHWI, become OIHW; DEPTHWISE_CONV_2D filters [1, H, W, C*m] become a grouped Conv
  (group = C) with OIHW filters [C*m, 1, H, W]; SAME padding becomes explicit pads (the extra row/column at
  the end, as TFLite puts it);
* FULLY_CONNECTED becomes Gemm(transB=1); TFLite flattens NHWC, so a rank-4 input goes through a Transpose
  back to NHWC before the flatten (and a RESHAPE of a rank-4 tensor likewise), which keeps values in line;
* fused activations become separate Relu / Clip nodes (edgesim's deployment pass fuses them back);
* MUL's constant operand (the converter keeps one when no conv absorbs it) is reshaped to broadcast in
  NCHW; PAD / PADV2 become a constant-mode Pad (PADV2's value a quantized scalar constant);
* QUANTIZE / DEQUANTIZE (float input / output, 16x8 requantization) become a QuantizeLinear ->
  DequantizeLinear pair with the integer side's parameters (see :func:`_quantize`);
* every tensor keeps its quantization (QuantParams; a per-channel axis is remapped to the new layout).
  Weights become float constants holding the dequantized values and their QuantParams, as the ONNX QDQ
  import does; int32 biases likewise (float64, so that the integer executor reads them back exactly).
  INT4 weights (two per byte, low nibble first) are unpacked and keep ``bits=4``; 16x8 models bring int16
  activations and int64 biases.

An operator edgesim cannot import is a one-line error naming the op and the operator index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, QuantParams, Tensor
from simulator.importers import tflite_movement as mv

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)

#: TensorType -> numpy dtype of the stored values
_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 17: "int8"}
INT4 = 17  # TensorType INT4: stored packed two per byte, read unpacked into int8
RESOURCE = 13  # TensorType RESOURCE: a VAR_HANDLE's handle to a resource variable
_CLAMPS = {1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}  # RELU, RELU_N1_TO_1, RELU6


def _tflite():
    try:
        import tflite
    except ImportError:  # pragma: no cover - depends on the environment
        raise EdgesimError("reading .tflite models needs the `tflite` package (pip install tflite)") from None
    return tflite


class _Builder:
    """Walks one subgraph and emits edgesim nodes and tensors."""

    def __init__(self, tfl: Any, model: Any, data: bytes, subgraph: int = 0):
        self.tfl = tfl
        self.model = model
        self.data = data
        self.sg = model.Subgraphs(subgraph)
        self.folded: dict[int, np.ndarray] = {}  # tensor index -> values computed at import (constant folding)
        self.variables: dict[str, dict[str, Any]] = {}  # resource variable -> its read / assigned tensors
        self.handles: dict[int, str] = {}  # VAR_HANDLE output tensor -> variable name
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.quant: dict[str, QuantParams] = {}  # activation quantization, attached after shape inference
        self.expected: dict[str, tuple[int, ...]] = {}  # edgesim shape each TFLite activation must have
        self.names: dict[int, str] = {}
        self.op_names: dict[int, str] = {
            v: k for k, v in vars(tfl.BuiltinOperator).items() if isinstance(v, int) and not k.startswith("_")
        }
        used: set[str] = set()
        for i in range(self.sg.TensorsLength()):
            raw = self.sg.Tensors(i).Name()
            name = raw.decode("utf-8", "replace") if raw else f"tensor_{i}"
            if name in used:
                name = f"{name}#{i}"
            used.add(name)
            self.names[i] = name

    # -- tensors ---------------------------------------------------------------------------------------

    def t(self, index: int) -> Any:
        return self.sg.Tensors(index)

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.t(index).ShapeAsNumpy()) if self.t(index).ShapeLength() else ()

    def dtype(self, index: int) -> str:
        code = self.t(index).Type()
        if code not in _TYPES:
            raise EdgesimError(f"tensor {self.names[index]!r} has TFLite type {code}, which edgesim does not read")
        return _TYPES[code]

    def qparams(self, index: int, new_axis: int | None = None) -> QuantParams | None:
        q = self.t(index).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scale = q.ScaleAsNumpy().astype(np.float32)
        zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros_like(scale, np.int64)
        dtype = np.dtype(self.dtype(index))
        per_channel = scale.size > 1
        if per_channel and new_axis is None:
            raise EdgesimError(
                f"tensor {self.names[index]!r} is quantized per channel where edgesim expects per tensor"
            )
        return QuantParams(
            bits=4 if self.t(index).Type() == INT4 else 8 * dtype.itemsize,
            scale=scale if per_channel else scale.reshape(()),
            zero_point=zp if per_channel else zp.reshape(()),
            symmetric=bool(np.all(zp == 0)),
            axis=new_axis if per_channel else None,
            signed=bool(np.issubdtype(dtype, np.signedinteger)),
        )

    def raw(self, index: int) -> np.ndarray | None:
        """The constant values of a tensor (None for an activation)."""
        if index in self.folded:
            return self.folded[index]
        if self.t(index).Type() == RESOURCE:
            return None
        buffer_index = self.t(index).Buffer()
        if buffer_index <= 0 or buffer_index >= self.model.BuffersLength():
            return None
        buf = self.model.Buffers(buffer_index)
        if buf.DataLength():
            payload = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:  # models over 2 GB keep buffers after the flatbuffer
            payload = self.data[buf.Offset() : buf.Offset() + buf.Size()]
        else:
            return None
        dtype = np.dtype(self.dtype(index)).newbyteorder("<")
        shape = self.shape(index)
        if self.t(index).Sparsity() is not None:  # stored non-zeros: decoded as DENSIFY does
            from simulator.importers.tflite_sparse import densify

            stored = np.frombuffer(payload, dtype).astype(dtype.newbyteorder("="))
            return densify(self.tfl, self.t(index).Sparsity(), stored, shape)
        if self.t(index).Type() == INT4:
            return self.int4(index, payload, shape)
        if len(payload) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise EdgesimError(f"constant {self.names[index]!r} holds {len(payload)} bytes, not a {shape} {dtype}")
        return np.frombuffer(payload, dtype).reshape(shape).astype(dtype.newbyteorder("="))

    def int4(self, index: int, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """An INT4 constant: ceil(n / 2) bytes, unpacked as TFLM does before its int8 kernels."""
        from simulator.execute.tflm_kernels import unpack_int4

        count = int(np.prod(shape, dtype=np.int64))
        if len(payload) != (count + 1) // 2:
            raise EdgesimError(
                f"constant {self.names[index]!r} holds {len(payload)} bytes, not a {shape} int4 packed two per byte"
            )
        return unpack_int4(np.frombuffer(payload, np.uint8), count).reshape(shape)

    def activation(self, index: int) -> str:
        """Name of an activation tensor (edgesim layout), registering its quantization and expected shape."""
        name = self.names[index]
        if self.raw(index) is not None:
            raise EdgesimError(f"tensor {name!r} is a constant where the importer expects an activation")
        if name not in self.expected:
            shape = self.shape(index)
            self.expected[name] = tuple(shape[i] for i in NHWC_TO_NCHW) if len(shape) == 4 else shape
            q = self.qparams(index)
            if q is not None:
                self.quant[name] = q
        return name

    def weight(self, index: int, perm: tuple[int, ...] | None, axis_map: dict[int, int]) -> str:
        """A quantized weight as a float constant of the dequantized values, transposed by ``perm``."""
        name = self.names[index]
        if name in self.tensors:
            return name
        values = self.raw(index)
        if values is None:
            raise EdgesimError(f"weight {name!r} is not a constant; edgesim imports constant weights only")
        q = self.t(index).Quantization()
        if values.dtype == np.float32:
            self.tensors[name] = Tensor.from_array(name, values if perm is None else values.transpose(perm))
            return name
        quant = self.qparams(index, axis_map.get(q.QuantizedDimension()) if q is not None else None)
        if quant is None:
            raise EdgesimError(f"weight {name!r} is an integer tensor without quantization parameters")
        return self._dequantized(name, values if perm is None else values.transpose(perm), quant)

    def _dequantized(self, name: str, values: np.ndarray, quant: QuantParams) -> str:
        """Stored integers in edgesim's layout as the float32 constant they stand for, keeping ``quant``."""
        scale, zp = quant.broadcast(values.ndim)
        deq = ((values.astype(np.float64) - zp) * scale).astype(np.float32)
        self.tensors[name] = Tensor.from_array(name, deq, quant=quant)
        return name

    def bias(self, index: int, x_index: int, w_index: int) -> str:
        """An int32 bias as float64 values. TFLite defines its scale as s_in * s_w; the values are computed
        with that product in float64, so that the integer executor, which divides by it, gets back exactly
        the stored integers (the product kept in the file is rounded to float32)."""
        name = self.names[index]
        values = self.raw(index)
        if values is None:
            raise EdgesimError(f"bias {name!r} is not a constant")
        if values.dtype == np.float32:
            self.tensors[name] = Tensor.from_array(name, values)
            return name
        quant = self.qparams(index, 0)
        if quant is None:
            raise EdgesimError(f"bias {name!r} is an integer tensor without quantization parameters")
        xq, wq = self.qparams(x_index), self.qparams(w_index, 0)
        scale = np.asarray(quant.scale, np.float64)
        if xq is not None and wq is not None:
            product = float(xq.scale) * np.asarray(wq.scale, np.float64)
            if np.allclose(product, scale, rtol=1e-6, atol=0):
                scale = np.broadcast_to(product, scale.shape) if scale.ndim else product.reshape(scale.shape)
        deq = (values.astype(np.float64) - np.asarray(quant.zero_point, np.float64)) * scale
        self.tensors[name] = Tensor.from_array(name, deq, quant=quant)
        return name

    def operand(self, index: int, rank: int) -> str:
        """An elementwise op's operand: an activation, or a quantized constant (a MUL factor, a PADV2 value) as
        its dequantized float32 values with its QuantParams, reshaped to broadcast against a rank-``rank``
        activation in edgesim's layout (TFLite broadcasts NHWC from the right: leading 1s, then NCHW)."""
        values = self.raw(index)
        if values is None:
            return self.activation(index)
        name = self.names[index]
        if name in self.tensors:
            return name
        if values.ndim > rank:
            raise EdgesimError(f"constant {name!r} of shape {values.shape} has more dimensions than its partner")
        values = values.reshape((1,) * (rank - values.ndim) + values.shape)
        values = values.transpose(NHWC_TO_NCHW) if rank == 4 else values
        return self._constant(name, index, values)

    def _constant(self, name: str, index: int, values: np.ndarray) -> str:
        """A constant operand in edgesim's layout: float values as they are (float16 widened to float32),
        quantized integers as the float32 values they stand for, keeping their QuantParams."""
        if values.dtype.kind == "f":
            self.tensors[name] = Tensor.from_array(name, values.astype(np.float32))
            return name
        quant = self.qparams(index)
        if quant is None:
            raise EdgesimError(f"constant {name!r} is an integer tensor without quantization parameters")
        return self._dequantized(name, values, quant)

    def operand_tflite(self, base: str, index: int, k: int) -> str:
        """An operand in TFLite's own layout: an activation (transposed back to NHWC when rank 4) or a constant
        as it is stored (dequantized to float32 with its QuantParams where it is quantized)."""
        values = self.raw(index)
        if values is None:
            return self.to_tflite_layout(f"{base}/in{k}", self.activation(index), len(self.shape(index)))
        name = self.names[index]
        return name if name in self.tensors else self._constant(name, index, values)

    def make_node(self, name: str, op_type: str, inputs: list[str], outputs: list[str], **attrs: Any) -> Node:
        return Node(name, op_type, inputs, outputs, attrs)

    def tensor_from_array(self, name: str, values: np.ndarray) -> Tensor:
        return Tensor.from_array(name, values)

    def constant_ints(self, name: str, values: list[int]) -> str:
        self.tensors[name] = Tensor.from_array(name, np.asarray(values, np.int64))
        return name

    # -- nodes -----------------------------------------------------------------------------------------

    def node(self, name: str, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(Node(name, op_type, inputs, [output], attrs))
        return output

    def fused(self, base: str, y: str, out_index: int, activation: int) -> None:
        """The op's result ``y`` -> the TFLite output tensor, through a Relu / Clip for a fused activation."""
        out = self.activation(out_index)
        if activation == 0:
            self.rename(y, out)
            return
        if activation not in _CLAMPS:
            raise EdgesimError(f"fused activation {activation} (TANH / SIGN_BIT) is not supported")
        self.quant[y] = self.quant.get(out)  # the clamp keeps the output's scale
        lo, hi = _CLAMPS[activation]
        self.clamp(f"{base}/{'relu' if hi is None else 'clip'}", y, out, lo, hi)

    def clamp(self, name: str, x: str, out: str, lo: float, hi: float | None) -> None:
        """Relu, or Clip with its bounds as float constants (ONNX opset 11 and later)."""
        if hi is None:
            self.node(name, "Relu", [x], out)
            return
        bounds = [self.float_constant(f"{name}_{key}", value) for key, value in (("min", lo), ("max", hi))]
        self.node(name, "Clip", [x, *bounds], out)

    def float_constant(self, name: str, value: float) -> str:
        self.tensors[name] = Tensor.from_array(name, np.asarray(value, np.float32))
        return name

    def rename(self, old: str, new: str) -> None:
        last = self.nodes[-1]
        assert last.outputs == [old]
        last.outputs = [new]

    def to_tflite_layout(self, base: str, x: str, rank: int) -> str:
        """NCHW -> NHWC for a rank-4 activation (a no-op otherwise)."""
        if rank != 4:
            return x
        y = f"{base}/nhwc"
        self.quant[y] = self.quant.get(x)
        return self.node(f"{base}/to_nhwc", "Transpose", [x], y, perm=list(NCHW_TO_NHWC))


def _same_pads(size: int, kernel: int, stride: int, dilation: int, padding: int) -> tuple[int, int]:
    """(begin, end) padding of one spatial axis: TFLite's SAME puts the odd extra at the end."""
    if padding == 1:  # VALID
        return 0, 0
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _options(tfl: Any, op: Any, cls: Any) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _convert(b: _Builder, i: int, op: Any, kind: str) -> None:
    tfl = b.tfl
    ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
    outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
    base = f"{kind.lower()}_{i}"
    tmp = f"{base}/out"

    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        depthwise = kind == "DEPTHWISE_CONV_2D"
        opts = _options(tfl, op, tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)
        x = b.activation(ins[0])
        _, h, w, c = b.shape(ins[0])
        fshape = b.shape(ins[1])
        if depthwise:  # [1, kh, kw, C*m] -> [C*m, 1, kh, kw]
            weight = b.weight(ins[1], (3, 0, 1, 2), {3: 0})
            group = c
        else:  # OHWI -> OIHW
            weight = b.weight(ins[1], (0, 3, 1, 2), {0: 0})
            if c % fshape[3]:
                raise EdgesimError(f"filter depth {fshape[3]} does not divide the input's {c} channels")
            group = c // fshape[3]
        kh, kw = fshape[1], fshape[2]
        sh, sw = opts.StrideH(), opts.StrideW()
        dh, dw = opts.DilationHFactor() or 1, opts.DilationWFactor() or 1
        top, bottom = _same_pads(h, kh, sh, dh, opts.Padding())
        left, right = _same_pads(w, kw, sw, dw, opts.Padding())
        inputs = [x, weight]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(b.bias(ins[2], ins[0], ins[1]))
        b.node(base, "Conv", inputs, tmp, group=group, kernel_shape=[kh, kw], strides=[sh, sw],
               dilations=[dh, dw], pads=[top, left, bottom, right])  # fmt: skip
        b.fused(base, tmp, outs[0], opts.FusedActivationFunction())
        return

    if kind == "FULLY_CONNECTED":
        opts = _options(tfl, op, tfl.FullyConnectedOptions)
        if opts is not None and opts.WeightsFormat() != 0:
            raise EdgesimError("shuffled FULLY_CONNECTED weights are not supported")
        x = b.activation(ins[0])
        units, depth = b.shape(ins[1])
        rank = len(b.shape(ins[0]))
        out_shape = b.shape(outs[0])
        keep = len(out_shape) != 2  # keep_num_dims: [..., depth] -> [..., units]
        if keep and (opts is None or not opts.KeepNumDims() or b.shape(ins[0])[-1] != depth):
            raise EdgesimError(f"FULLY_CONNECTED gives rank {len(out_shape)} without keep_num_dims over the last axis")
        if rank != 2 or b.shape(ins[0])[1] != depth:
            x = b.to_tflite_layout(base, x, rank)
            flat = f"{base}/flat"
            b.quant[flat] = b.quant.get(x)
            x = b.node(f"{base}/flatten", "Reshape", [x, b.constant_ints(f"{base}/flat_shape", [-1, depth])], flat)
        weight = b.weight(ins[1], None, {0: 0})
        inputs = [x, weight]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(b.bias(ins[2], ins[0], ins[1]))
        activation = opts.FusedActivationFunction() if opts is not None else 0
        if not keep:
            b.node(base, "Gemm", inputs, tmp, transB=1)
            b.fused(base, tmp, outs[0], activation)
            return
        flat_out = f"{base}/flat_out"
        b.quant[flat_out] = b.quant.get(b.activation(outs[0]))
        b.node(base, "Gemm", inputs, flat_out, transB=1)
        shaped = mv.tflite_output(b, base, outs[0])
        b.quant[tmp] = b.quant.get(b.activation(outs[0]))
        b.node(f"{base}/unflatten", "Reshape", [flat_out, b.constant_ints(f"{base}/out_shape", list(out_shape))],
               tmp if activation else shaped)  # fmt: skip
        if activation:
            lo, hi = _CLAMPS.get(activation, (None, None))
            if lo is None:
                raise EdgesimError(f"fused activation {activation} (TANH / SIGN_BIT) is not supported")
            b.clamp(f"{base}/{'relu' if hi is None else 'clip'}", tmp, shaped, lo, hi)
        mv.finish_output(b, base, outs[0], shaped)
        return

    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        opts = _options(tfl, op, tfl.Pool2DOptions)
        x = b.activation(ins[0])
        _, h, w, _ = b.shape(ins[0])
        kh, kw, sh, sw = opts.FilterHeight(), opts.FilterWidth(), opts.StrideH(), opts.StrideW()
        top, bottom = _same_pads(h, kh, sh, 1, opts.Padding())
        left, right = _same_pads(w, kw, sw, 1, opts.Padding())
        attrs: dict[str, Any] = dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[top, left, bottom, right])
        if kind == "AVERAGE_POOL_2D":
            attrs["count_include_pad"] = 0
        b.node(base, "MaxPool" if kind == "MAX_POOL_2D" else "AveragePool", [x], tmp, **attrs)
        b.fused(base, tmp, outs[0], opts.FusedActivationFunction())
        return

    if kind == "ADD":
        opts = _options(tfl, op, tfl.AddOptions)
        constant = b.raw(ins[0]) is not None or b.raw(ins[1]) is not None
        if b.shape(ins[0]) != b.shape(ins[1]) and not constant:
            raise EdgesimError(f"ADD of shapes {b.shape(ins[0])} and {b.shape(ins[1])} (broadcasting) is not supported")
        rank = len(b.shape(outs[0]))
        b.node(base, "Add", [b.operand(ins[0], rank), b.operand(ins[1], rank)], tmp)
        b.fused(base, tmp, outs[0], opts.FusedActivationFunction() if opts is not None else 0)
        return

    if kind == "MUL":
        opts = _options(tfl, op, tfl.MulOptions)
        rank = len(b.shape(outs[0]))
        b.node(base, "Mul", [b.operand(ins[0], rank), b.operand(ins[1], rank)], tmp)
        b.fused(base, tmp, outs[0], opts.FusedActivationFunction() if opts is not None else 0)
        return

    if kind in ("PAD", "PADV2"):
        _pad(b, base, ins, outs)
        return

    if kind == "SOFTMAX":
        opts = _options(tfl, op, tfl.SoftmaxOptions)
        if opts is not None and opts.Beta() != 1.0:
            raise EdgesimError(f"SOFTMAX with beta {opts.Beta()} is not supported (only beta = 1)")
        x = b.activation(ins[0])
        rank = len(b.shape(ins[0]))
        if rank == 4:  # softmax over channels: last axis of NHWC
            x = b.to_tflite_layout(base, x, 4)
            y = f"{base}/nhwc_out"
            b.quant[y] = b.quant.get(b.activation(outs[0]))
            b.node(base, "Softmax", [x], y, axis=-1)
            b.node(f"{base}/to_nchw", "Transpose", [y], b.activation(outs[0]), perm=list(NHWC_TO_NCHW))
        else:
            b.node(base, "Softmax", [x], b.activation(outs[0]), axis=-1)
        return

    if kind == "RESHAPE":
        x = b.activation(ins[0])
        in_rank, out_shape = len(b.shape(ins[0])), b.shape(outs[0])
        x = b.to_tflite_layout(base, x, in_rank)
        out = b.activation(outs[0])
        target = b.constant_ints(f"{base}/shape", list(out_shape))
        if len(out_shape) == 4:
            y = f"{base}/nhwc_out"
            b.quant[y] = b.quant.get(out)
            b.node(base, "Reshape", [x, target], y)
            b.node(f"{base}/to_nchw", "Transpose", [y], out, perm=list(NHWC_TO_NCHW))
        else:
            b.node(base, "Reshape", [x, target], out)
        return

    if kind in ("RELU", "RELU6", "RELU_N1_TO_1"):
        x, out = b.activation(ins[0]), b.activation(outs[0])
        b.clamp(base, x, out, *_CLAMPS[{"RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}[kind]])
        return

    if kind in ("LOGISTIC", "HARD_SWISH", "TANH"):
        op_type = {"LOGISTIC": "Sigmoid", "HARD_SWISH": "HardSwish", "TANH": "Tanh"}[kind]
        b.node(base, op_type, [b.activation(ins[0])], b.activation(outs[0]))
        return

    if kind == "PRELU":
        rank = len(b.shape(outs[0]))
        b.node(base, "PRelu", [b.activation(ins[0]), b.operand(ins[1], rank)], b.activation(outs[0]))
        return

    if kind in ("TRANSPOSE_CONV", "CUSTOM (Convolution2DTransposeBias)"):
        _transpose_conv(b, base, op, kind, ins, outs)
        return

    if kind == "RESIZE_BILINEAR":
        _resize_bilinear(b, base, _options(tfl, op, tfl.ResizeBilinearOptions), ins, outs)
        return

    if kind in _MOVEMENT:
        _MOVEMENT[kind](b, base, op, ins, outs)
        return

    if kind in ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"):
        _variable_op(b, op, kind, ins, outs)
        return

    if kind == "MEAN":
        _mean(b, base, ins, outs)
        return

    if kind in ("QUANTIZE", "DEQUANTIZE"):
        _quantize(b, base, ins, outs, kind)
        return

    if kind == "DEPTH_TO_SPACE":  # NHWC depth-to-space is ONNX's DCR order on NCHW
        opts = _options(tfl, op, tfl.DepthToSpaceOptions)
        b.node(base, "DepthToSpace", [b.activation(ins[0])], b.activation(outs[0]), blocksize=opts.BlockSize(),
               mode="DCR")  # fmt: skip
        return

    if kind == "DENSIFY":  # a sparse constant: decoded at import (see tflite_sparse.py)
        values = b.raw(ins[0])
        if values is None:
            raise EdgesimError("DENSIFY of a computed tensor; edgesim decodes sparse constants only")
        b.folded[outs[0]] = values
        return

    if kind == "CONCATENATION":
        opts = _options(tfl, op, tfl.ConcatenationOptions)
        rank = len(b.shape(outs[0]))
        xs = [b.operand(i, rank) for i in ins]  # (a constant operand keeps its quantization)
        axis = opts.Axis() % rank
        b.node(base, "Concat", xs, tmp, axis=NHWC_TO_NCHW.index(axis) if rank == 4 else axis)
        b.fused(base, tmp, outs[0], opts.FusedActivationFunction())
        return

    raise KeyError(kind)


def _mean(b: _Builder, base: str, ins: list[int], outs: list[int]) -> None:
    """MEAN -> ReduceMean. On a rank-4 input the NHWC axes map to NCHW ones when the kept dimensions come out
    in TFLite's order anyway (keep_dims, or channels or both H and W reduced); otherwise the reduction runs on
    the input transposed back to NHWC."""
    axes_data = b.raw(ins[1])
    if axes_data is None:
        raise EdgesimError("MEAN with computed axes is not supported; its axes must be a constant")
    x = b.activation(ins[0])
    rank = len(b.shape(ins[0]))
    axes = sorted({int(a) % rank for a in np.asarray(axes_data).reshape(-1)})
    keep = len(b.shape(outs[0])) == rank  # keep_dims, read off the output's rank
    out = b.activation(outs[0])
    kept = [d for d in range(rank) if d not in axes]
    if rank == 4 and (keep or [d for d in NHWC_TO_NCHW if d in kept] == kept):
        axes = sorted(NHWC_TO_NCHW.index(a) for a in axes)
    else:
        x = b.to_tflite_layout(base, x, rank)
    b.node(base, "ReduceMean", [x], out, axes=axes, keepdims=int(keep))


def _quantize(b: _Builder, base: str, ins: list[int], outs: list[int], kind: str) -> None:
    """QUANTIZE / DEQUANTIZE -> QuantizeLinear then DequantizeLinear with the integer side's parameters.

    Quantized activations are held as the real values they stand for (float tensors with QuantParams), so in
    that view QUANTIZE rounds its input onto the output's grid (from float, or requantizing between integer
    grids) and DEQUANTIZE changes nothing: the QuantizeLinear / DequantizeLinear pair says exactly that to the
    float executor and the estimator, and the tflm executor runs TFLite's QUANTIZE at the QuantizeLinear (its
    integers) and DEQUANTIZE at a DequantizeLinear whose output is float."""
    values = b.raw(ins[0])
    if kind == "DEQUANTIZE" and values is not None:  # FLOAT16 or int8 weights of a float model: fold
        if values.dtype.kind == "f":
            b.folded[outs[0]] = values.astype(np.float32)
            return
        q = b.qparams(ins[0], 0)
        if q is None:
            raise EdgesimError(f"tensor {b.names[ins[0]]!r} has no quantization parameters")
        axis = b.t(ins[0]).Quantization().QuantizedDimension() if q.per_channel else None
        scale, zp = np.asarray(q.scale, np.float64), np.asarray(q.zero_point, np.float64)
        if axis is not None:
            shape = [1] * values.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        b.folded[outs[0]] = ((values.astype(np.float64) - zp) * scale).astype(np.float32)
        return
    x, y = b.activation(ins[0]), b.activation(outs[0])
    integer = outs[0] if kind == "QUANTIZE" else ins[0]
    q = b.qparams(integer)
    if q is None:
        raise EdgesimError(f"tensor {b.names[integer]!r} has no quantization parameters")
    scale = b.float_constant(f"{base}/scale", float(q.scale))
    zero_point = f"{base}/zero_point"
    b.tensors[zero_point] = Tensor.from_array(zero_point, np.asarray(int(q.zero_point), b.dtype(integer)))
    ints = f"{base}/int"
    b.quant[ints] = q
    b.node(f"{base}/quantize", "QuantizeLinear", [x, scale, zero_point], ints)
    b.node(f"{base}/dequantize", "DequantizeLinear", [ints, scale, zero_point], y)


def _pad(b: _Builder, base: str, ins: list[int], outs: list[int]) -> None:
    """PAD / PADV2 with constant paddings -> Pad (constant mode): TFLite's [rank, 2] (before, after) rows,
    NHWC for rank 4, become ONNX's [begins..., ends...] in NCHW order; PADV2's value is a quantized constant."""
    paddings = b.raw(ins[1])
    if paddings is None:
        raise EdgesimError("PAD with computed paddings is not supported; its paddings must be a constant")
    rank = len(b.shape(ins[0]))
    rows = np.asarray(paddings, np.int64).reshape(rank, 2)
    if rank == 4:
        rows = rows[list(NHWC_TO_NCHW)]
    inputs = [b.activation(ins[0]), b.constant_ints(f"{base}/pads", [*rows[:, 0].tolist(), *rows[:, 1].tolist()])]
    if len(ins) > 2 and ins[2] >= 0:
        if b.raw(ins[2]) is None or int(np.prod(b.shape(ins[2]), dtype=np.int64)) != 1:
            raise EdgesimError("PADV2's constant_values must be a constant holding one value")
        inputs.append(b.operand(ins[2], len(b.shape(ins[2]))))
    b.node(base, "Pad", inputs, b.activation(outs[0]), mode="constant")


def _transpose_conv(b: _Builder, base: str, op: Any, kind: str, ins: list[int], outs: list[int]) -> None:
    """TRANSPOSE_CONV (inputs: output shape, filter, input, optional bias) and mediapipe's custom
    Convolution2DTransposeBias (input, filter, bias; its custom options are TfLiteTransposeConvParams as raw
    int32s: padding (1 SAME, 2 VALID), stride_w, stride_h) -> ConvTranspose. The [O, kh, kw, I] filter becomes
    ONNX's [I, O, kh, kw]; SAME pads as TFLite computes them for the forward conv whose input the output is."""
    if kind == "TRANSPOSE_CONV":
        opts = _options(b.tfl, op, b.tfl.TransposeConvOptions)
        padding, sw, sh = opts.Padding(), opts.StrideW(), opts.StrideH()
        activation = opts.FusedActivationFunction() if hasattr(opts, "FusedActivationFunction") else 0
        x_index, w_index, bias_index = ins[2], ins[1], ins[3] if len(ins) > 3 and ins[3] >= 0 else None
    else:
        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        if len(raw) < 12:
            raise EdgesimError(f"Convolution2DTransposeBias has {len(raw)} bytes of options, not 12")
        tflite_padding, sw, sh = (int(v) for v in np.frombuffer(raw[:12], "<i4"))
        padding = {1: 0, 2: 1}.get(tflite_padding, -1)  # TfLitePadding -> the schema's Padding (SAME 0, VALID 1)
        if padding < 0:
            raise EdgesimError(f"Convolution2DTransposeBias has padding {tflite_padding}, neither SAME nor VALID")
        activation, x_index, w_index, bias_index = 0, ins[0], ins[1], ins[2]
    _, out_h, out_w, _ = b.shape(outs[0])
    _, in_h, in_w, _ = b.shape(x_index)
    _, kh, kw, _ = b.shape(w_index)
    pads, extra = [], []  # (begin, end) crops of the full scatter, and output_padding where it is too short
    for size_in, size_out, k, s in ((in_h, out_h, kh, sh), (in_w, out_w, kw, sw)):
        total = (size_in - 1) * s + k - size_out
        pads.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
        extra.append(max(-total, 0))
    inputs = [b.activation(x_index), b.weight(w_index, (3, 0, 1, 2), {0: 1})]
    if bias_index is not None:
        inputs.append(b.bias(bias_index, x_index, w_index))
    tmp = f"{base}/out"
    b.node(base, "ConvTranspose", inputs, tmp, kernel_shape=[kh, kw], strides=[sh, sw],
           pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]], output_padding=extra)  # fmt: skip
    b.fused(base, tmp, outs[0], activation)


def _resize_bilinear(b: _Builder, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    """RESIZE_BILINEAR -> Resize (linear) on NCHW: align_corners, half_pixel_centers (TF's half-pixel rule is
    ONNX's half_pixel, with the source coordinate clamped at 0) or neither (asymmetric)."""
    size = b.raw(ins[1])
    if size is None:
        raise EdgesimError("RESIZE_BILINEAR with a computed size is not supported; its size must be a constant")
    n, h, w, c = b.shape(ins[0])
    oh, ow = (int(v) for v in np.asarray(size).reshape(-1))
    if opts is not None and opts.AlignCorners():
        mode = "align_corners"
    elif opts is not None and opts.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    sizes = b.constant_ints(f"{base}/sizes", [n, c, oh, ow])
    b.tensors[f"{base}/roi"] = Tensor.from_array(f"{base}/roi", np.zeros(0, np.float32))
    b.tensors[f"{base}/scales"] = Tensor.from_array(f"{base}/scales", np.zeros(0, np.float32))
    b.node(base, "Resize", [b.activation(ins[0]), f"{base}/roi", f"{base}/scales", sizes], b.activation(outs[0]),
           mode="linear", coordinate_transformation_mode=mode)  # fmt: skip


def _variable_op(b: _Builder, op: Any, kind: str, ins: list[int], outs: list[int]) -> None:
    """Resource variables, as TFLM keeps them between calls: a READ_VARIABLE's result is a graph input fed
    from the variable's state, an ASSIGN_VARIABLE's value a graph output that becomes the next state; the
    initial state is what the CALL_ONCE init subgraph assigns (see :func:`_init_variables`)."""
    tfl = b.tfl
    if kind == "VAR_HANDLE":
        opts = _options(tfl, op, tfl.VarHandleOptions)
        raw = opts.SharedName() if opts is not None else None
        b.handles[outs[0]] = raw.decode("utf-8", "replace") if raw else b.names[outs[0]]
        return
    if kind == "CALL_ONCE":
        table = op.BuiltinOptions()
        position = table.Offset(4) if table is not None else 0
        from flatbuffers.number_types import Int32Flags

        index = table.Get(Int32Flags, position + table.Pos) if position else 0  # CallOnceOptions.init_subgraph_index
        _init_variables(b, index)
        return
    handle = b.handles.get(ins[0])
    if handle is None:
        raise EdgesimError(f"{kind} reads tensor {b.names[ins[0]]!r}, which no VAR_HANDLE made")
    var = b.variables.setdefault(handle, {})
    if kind == "READ_VARIABLE":
        if "assign" in var:
            b.node(f"read_{handle}", "Identity", [var["assign"]], b.activation(outs[0]))
            return
        if "read" in var:
            b.node(f"read_{handle}_{outs[0]}", "Identity", [var["read"]], b.activation(outs[0]))
            return
        var["read"] = b.activation(outs[0])
        var["read_index"] = outs[0]
        return
    if b.raw(ins[1]) is not None:
        raise EdgesimError(f"ASSIGN_VARIABLE of a constant to {handle!r} outside the init subgraph")
    var["assign"] = b.activation(ins[1])
    var["assign_index"] = ins[1]


def _init_variables(b: _Builder, subgraph: int) -> None:
    """The CALL_ONCE init subgraph: VAR_HANDLEs and ASSIGN_VARIABLEs of constants, read at import time."""
    if not 0 < subgraph < b.model.SubgraphsLength():
        raise EdgesimError(f"CALL_ONCE names subgraph {subgraph}, which the model does not have")
    init = _Builder(b.tfl, b.model, b.data, subgraph)
    for i in range(init.sg.OperatorsLength()):
        op = init.sg.Operators(i)
        code = b.model.OperatorCodes(op.OpcodeIndex())
        kind = b.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if kind == "VAR_HANDLE":
            _variable_op(init, op, kind, ins, outs)
        elif kind == "ASSIGN_VARIABLE":
            values = init.raw(ins[1])
            if values is None:
                raise EdgesimError(f"init subgraph {subgraph} assigns a computed value; edgesim reads constant ones")
            b.variables.setdefault(init.handles[ins[0]], {})["initial"] = values
        else:
            raise EdgesimError(f"init subgraph {subgraph} holds {kind}; edgesim reads VAR_HANDLE / ASSIGN_VARIABLE")


def _movement(convert: Any, options: str | None) -> Any:
    def run(b: _Builder, base: str, op: Any, ins: list[int], outs: list[int]) -> None:
        opts = _options(b.tfl, op, getattr(b.tfl, options)) if options else None
        convert(b, base, *([opts] if options else []), ins, outs)

    return run


_MOVEMENT = {
    "SHAPE": _movement(mv.convert_shape, None),
    "STRIDED_SLICE": _movement(mv.convert_strided_slice, "StridedSliceOptions"),
    "PACK": _movement(mv.convert_pack, "PackOptions"),
    "UNPACK": _movement(mv.convert_unpack, "UnpackOptions"),
    "GATHER": _movement(mv.convert_gather, "GatherOptions"),
    "TRANSPOSE": _movement(mv.convert_transpose, None),
    "SPLIT": lambda b, base, op, ins, outs: mv.convert_split(b, base, "SPLIT", ins, outs),
    "SPLIT_V": lambda b, base, op, ins, outs: mv.convert_split(b, base, "SPLIT_V", ins, outs),
    "BATCH_MATMUL": _movement(mv.convert_batch_matmul, "BatchMatMulOptions"),
}

SUPPORTED = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "ADD", "SOFTMAX",
    "RESHAPE", "RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "HARD_SWISH", "TANH", "PRELU", "MEAN", "CONCATENATION",
    "MUL", "PAD", "PADV2", "QUANTIZE", "DEQUANTIZE", "RESIZE_BILINEAR", *_MOVEMENT, "VAR_HANDLE", "READ_VARIABLE",
    "ASSIGN_VARIABLE", "CALL_ONCE", "TRANSPOSE_CONV", "CUSTOM (Convolution2DTransposeBias)", "DENSIFY",
    "DEPTH_TO_SPACE",
)  # fmt: skip


def read_tflite(data: bytes, name: str) -> Graph:
    """The raw op graph of a .tflite flatbuffer (shapes of inputs and constants only, quantization kept in
    ``graph.metadata["tflite_quant"]`` until :func:`load_tflite` attaches it after shape inference)."""
    tfl = _tflite()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise EdgesimError("not a TFLite flatbuffer (no TFL3 identifier); check the file is a complete .tflite model")
    try:
        model = tfl.Model.GetRootAsModel(data, 0)
        b = _Builder(tfl, model, data)
        sg = b.sg
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            kind = b.op_names.get(builtin, f"builtin {builtin}")
            if builtin == tfl.BuiltinOperator.CUSTOM:
                raw = code.CustomCode()
                kind = f"CUSTOM ({raw.decode('utf-8', 'replace') if raw else '?'})"
            if kind not in SUPPORTED:
                first = int(op.OutputsAsNumpy()[0]) if op.OutputsLength() else -1
                writes = f" (writing {b.names[first]!r})" if first in b.names else ""
                raise EdgesimError(f"operator {i}{writes} is {kind}, which the TFLite importer does not support; "
                                   f"supported: {', '.join(SUPPORTED)}")  # fmt: skip
            try:
                _convert(b, i, op, kind)
            except EdgesimError as exc:
                raise EdgesimError(f"operator {i} ({kind}): {exc}") from None
        inputs = [int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
        outputs = [int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        variables = _state(b)
        inputs += [v["read_index"] for v in b.variables.values() if "read_index" in v]
        outputs += [v["assign_index"] for v in b.variables.values() if v.get("assign_index") not in outputs]
        layout: dict[str, dict[str, list[int]]] = {"inputs": {}, "outputs": {}}
        for kind, indices in (("inputs", inputs), ("outputs", outputs)):
            for index in indices:
                rank = len(b.shape(index))
                layout[kind][b.activation(index)] = list(NHWC_TO_NCHW) if rank == 4 else list(range(rank))
        for index in inputs:
            tname = b.names[index]
            b.tensors[tname] = Tensor(tname, b.expected[tname], "float32")
    except EdgesimError:
        raise
    except Exception as exc:  # a corrupt flatbuffer fails in many ways (IndexError, struct.error, ...)
        reason = (str(exc).splitlines() or [""])[0]
        raise EdgesimError(
            f"not a valid TFLite model (corrupt or truncated flatbuffer: {reason}); re-export it"
        ) from None
    metadata = {
        "source": f"TFLite flatbuffer {name}.tflite (schema v{model.Version()}), imported NHWC -> NCHW",
        # edgesim tensor = TFLite tensor.transpose(perm); feeds are NCHW
        "tflite_layout": layout,
        "tflite_quant": b.quant,
        "tflite_shapes": b.expected,
        # every rank-4 file tensor: edgesim value = file value.transpose(perm) (see execute/layout.py)
        "file_layout": {name: list(NHWC_TO_NCHW) for name, shape in b.expected.items() if len(shape) == 4},
        # resource variables: edgesim input (read) -> edgesim output (assigned) and initial values, TFLite layout
        "tflite_variables": variables,
    }
    graph = Graph(name, b.nodes, b.tensors, [b.names[i] for i in inputs],
                  [b.names[i] for i in outputs], metadata=metadata)  # fmt: skip
    return graph


def _state(b: _Builder) -> dict[str, dict[str, Any]]:
    """Each resource variable the main subgraph reads as {read, assign, initial}: the graph input its READ
    writes, the graph output its ASSIGN takes (None if never assigned) and the CALL_ONCE initial value."""
    state = {}
    for name, var in b.variables.items():
        if "read" not in var:
            continue
        if "initial" not in var:
            raise EdgesimError(f"resource variable {name!r} is read but never initialised (no CALL_ONCE assigns it)")
        expected = b.shape(var["read_index"])
        if tuple(var["initial"].shape) != tuple(expected):
            raise EdgesimError(
                f"resource variable {name!r} starts with shape {var['initial'].shape}, read as {expected}"
            )
        state[name] = {"read": var["read"], "assign": var.get("assign"), "initial": var["initial"]}
    return state


def load_tflite(path: Path) -> Graph:
    """Read a .tflite file into a shape-inferred NCHW op graph whose tensors carry their quantization."""
    from simulator.passes.infer_shapes import infer_shapes

    graph = read_tflite(Path(path).read_bytes(), Path(path).stem)
    quant: dict[str, QuantParams | None] = graph.metadata.pop("tflite_quant")
    expected: dict[str, tuple[int, ...]] = graph.metadata.pop("tflite_shapes")
    graph = infer_shapes(graph)
    tensors = dict(graph.tensors)
    for name, t in tensors.items():
        if name in expected and t.shape != expected[name]:
            raise EdgesimError(f"tensor {name!r}: the imported graph gives shape {t.shape}, the model {expected[name]}")
        q = quant.get(name)
        if q is not None and not t.constant:
            tensors[name] = graph.copy_tensor(name, quant=q)
    return graph.replace(tensors=tensors)
