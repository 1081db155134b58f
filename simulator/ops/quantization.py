"""QuantizeLinear and DequantizeLinear. A DequantizeLinear of a constant (a QDQ model's weight) folds into a
float constant that keeps its quantization parameters, so the weight is counted at its stored width."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator.graph import QuantParams, Tensor
from simulator.ops.registry import OpDef, register, shape_of


def stored_integers(quant: QuantParams | None) -> np.ndarray | None:
    """The integer values a folded DequantizeLinear constant was stored as, if the importer saw them (the
    float constant alone cannot give back an int32 bias above 2^24 exactly)."""
    return None if quant is None else quant.integers


def _per_axis(node, scale: np.ndarray, rank: int) -> tuple[int | None, tuple[int, ...]]:
    """Channel axis (None for per-tensor) and the shape that broadcasts scale against the data."""
    if scale.ndim == 0 or scale.size == 1:
        return None, ()
    axis = int(node.attr("axis", 1)) % rank
    shape = [1] * rank
    shape[axis] = -1
    return axis, tuple(shape)


def dequantized(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, shape=()) -> np.ndarray:
    """``(q - zero_point) * scale`` in float64, with a per-axis scale / zero point reshaped to ``shape`` (a
    shape that broadcasts against ``q``; () keeps them as given). Float64 holds every int8/int32 product
    exactly, so the float reference of a QLinear op differs from integer arithmetic only in the requantize."""
    scale = np.asarray(scale, np.float64)
    zp = np.zeros((), np.float64) if zero_point is None else np.asarray(zero_point, np.float64)
    if shape and scale.size > 1:
        scale = scale.reshape(shape)
    if shape and zp.size > 1:
        zp = zp.reshape(shape)
    return (q.astype(np.float64) - zp) * scale


def requantized(y: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """``saturate(round_half_to_even(y / scale) + zero_point)`` in the zero point's integer dtype (ONNX
    QuantizeLinear, per tensor)."""
    dtype = np.asarray(zero_point).dtype
    info = np.iinfo(dtype)
    q = np.rint(y / np.float64(np.asarray(scale).reshape(()))) + np.asarray(zero_point, np.float64).reshape(())
    return np.clip(q, info.min, info.max).astype(dtype)


@register
class QuantizeLinear(OpDef):
    op_type = "QuantizeLinear"
    op_class = "quantization"
    min_inputs, max_inputs = 2, 3

    def _dtype(self, node, inputs) -> str:
        if len(inputs) > 2 and inputs[2] is not None:
            return inputs[2].dtype
        return "uint8"

    def infer(self, node, inputs):
        return [(shape_of(node, inputs[0], "input"), self._dtype(node, inputs))]

    def run(self, node, x, scale, zero_point=None):
        dtype = np.dtype("uint8" if zero_point is None else zero_point.dtype)
        axis, shape = _per_axis(node, np.asarray(scale), x.ndim)
        if axis is not None:
            scale = scale.reshape(shape)
            zero_point = None if zero_point is None else zero_point.reshape(shape)
        zp = 0 if zero_point is None else zero_point.astype(np.int64)
        info = np.iinfo(dtype)
        q = np.rint(x / scale) + zp  # ONNX rounds half to even
        return [np.clip(q, info.min, info.max).astype(dtype)]


@register
class DequantizeLinear(OpDef):
    op_type = "DequantizeLinear"
    op_class = "quantization"
    min_inputs, max_inputs = 2, 3

    def infer(self, node, inputs):
        return [(shape_of(node, inputs[0], "input"), inputs[1].dtype)]

    def run(self, node, x, scale, zero_point=None):
        axis, shape = _per_axis(node, np.asarray(scale), x.ndim)
        if axis is not None:
            scale = scale.reshape(shape)
            zero_point = None if zero_point is None else zero_point.reshape(shape)
        zp = 0 if zero_point is None else zero_point.astype(np.int64)
        return [((x.astype(np.int64) - zp) * scale).astype(scale.dtype)]

    def folded_tensor(self, node, inputs, name, value):
        q, scale = inputs[0], np.asarray(inputs[1].data)
        zero_point = np.asarray(inputs[2].data) if len(inputs) > 2 and inputs[2] is not None else None
        zp = np.zeros_like(scale, dtype=np.int64) if zero_point is None else zero_point.astype(np.int64)
        axis, _ = _per_axis(node, scale, len(q.shape))
        dtype = np.dtype(q.dtype)
        if not np.issubdtype(dtype, np.integer):
            return Tensor.from_array(name, value)
        quant = QuantParams(
            bits=8 * dtype.itemsize,
            scale=scale.reshape(-1) if axis is not None else scale.reshape(()),
            zero_point=zp.reshape(-1) if axis is not None else zp.reshape(()),
            symmetric=bool(np.all(zp == 0)) and np.issubdtype(dtype, np.signedinteger),
            axis=axis,
            signed=bool(np.issubdtype(dtype, np.signedinteger)),
        )
        return Tensor.from_array(name, value, quant=replace(quant, integers=np.asarray(q.data)))
