"""Data movement: ops that rearrange, select or copy elements without arithmetic. Their cost is the bytes
they move (and nothing at all when the runtime does them in place, as reshapes)."""

from __future__ import annotations

import math

import numpy as np

from simulator.graph import Node, Tensor
from simulator.graph import Shape as Dims
from simulator.ops.registry import (
    OpDef,
    broadcast,
    constant_ints,
    fail,
    normalize_axis,
    register,
    shape_of,
)


class _Movement(OpDef):
    op_class = "data_movement"

    def ops(self, node, inputs, outputs):
        return 0


class _View(_Movement):
    """Same elements, new shape: runtimes alias the buffer."""

    in_place = True


@register
class Identity(_View):
    op_type = "Identity"

    def run(self, node, x):
        return [x]


@register
class Dropout(_View):
    """Inference-time Dropout is the identity; the optional mask output is all true."""

    op_type = "Dropout"
    max_inputs = 3

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        return [(x, inputs[0].dtype), (x, "bool")][: len(node.outputs)]

    def run(self, node, x, *_):
        return [x, np.ones(x.shape, dtype=bool)][: len(node.outputs)]


def reshape_target(node: Node, x: Dims, requested: list[int]) -> Dims:
    """ONNX Reshape: 0 copies the input dim (unless allowzero), one -1 is inferred."""
    allow_zero = bool(node.attr("allowzero", 0))
    out = [x[i] if (d == 0 and not allow_zero and i < len(x)) else d for i, d in enumerate(requested)]
    if out.count(-1) > 1:
        raise fail(node, f"shape {requested} has more than one -1")
    total = math.prod(x)
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise fail(node, f"cannot reshape {x} ({total} elements) to {requested}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total or min(out, default=0) < 0:
        raise fail(node, f"cannot reshape {x} ({total} elements) to {requested}")
    return tuple(out)


@register
class Reshape(_View):
    op_type = "Reshape"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        return [(reshape_target(node, x, constant_ints(node, inputs[1], "shape")), inputs[0].dtype)]

    def run(self, node, x, shape):
        return [x.reshape(reshape_target(node, x.shape, [int(v) for v in shape]))]


@register
class Flatten(_View):
    op_type = "Flatten"

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis = int(node.attr("axis", 1))
        axis = axis + len(x) if axis < 0 else axis
        if not 0 <= axis <= len(x):
            raise fail(node, f"axis {node.attr('axis')} is out of range for rank {len(x)}")
        return [((math.prod(x[:axis]), math.prod(x[axis:])), inputs[0].dtype)]

    def run(self, node, x):
        return [x.reshape(self.infer(node, [_shape_only(x)])[0][0])]


def _squeeze_axes(node: Node, inputs, x: Dims) -> list[int] | None:
    axes = node.attr("axes")
    if axes is None and len(inputs) > 1 and inputs[1] is not None:
        axes = constant_ints(node, inputs[1], "axes")
    return axes


@register
class Squeeze(_View):
    op_type = "Squeeze"
    max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axes = _squeeze_axes(node, inputs, x)
        if axes is None:
            return [(tuple(d for d in x if d != 1), inputs[0].dtype)]
        axes = {normalize_axis(node, a, len(x)) for a in axes}
        for a in axes:
            if x[a] != 1:
                raise fail(node, f"cannot squeeze axis {a} of {x}: its size is {x[a]}, not 1")
        return [(tuple(d for i, d in enumerate(x) if i not in axes), inputs[0].dtype)]

    def run(self, node, x, axes=None):
        return [x.reshape(self.infer(node, [_shape_only(x), _const(axes)])[0][0])]


@register
class Unsqueeze(_View):
    op_type = "Unsqueeze"
    max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axes = _squeeze_axes(node, inputs, x)
        if axes is None:
            raise fail(node, "the axes to insert are missing")
        rank = len(x) + len(axes)
        axes = sorted(normalize_axis(node, a, rank) for a in axes)
        if len(set(axes)) != len(axes):
            raise fail(node, f"axes {axes} repeat")
        out = list(x)
        for a in axes:
            out.insert(a, 1)
        return [(tuple(out), inputs[0].dtype)]

    def run(self, node, x, axes=None):
        return [x.reshape(self.infer(node, [_shape_only(x), _const(axes)])[0][0])]


@register
class Transpose(_Movement):
    op_type = "Transpose"

    def perm(self, node: Node, rank: int) -> list[int]:
        perm = node.attr("perm", list(range(rank))[::-1])
        if sorted(perm) != list(range(rank)):
            raise fail(node, f"perm {perm} is not a permutation of 0..{rank - 1}")
        return list(perm)

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        return [(tuple(x[p] for p in self.perm(node, len(x))), inputs[0].dtype)]

    def run(self, node, x):
        return [np.transpose(x, self.perm(node, x.ndim))]


@register
class Concat(_Movement):
    op_type = "Concat"
    max_inputs = 1 << 16

    def infer(self, node, inputs):
        shapes = [shape_of(node, t, f"input {i}") for i, t in enumerate(inputs)]
        rank = len(shapes[0])
        axis = normalize_axis(node, int(node.attr("axis", 1)), rank)
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != axis):
                raise fail(node, f"inputs {shapes} differ outside the concat axis {axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return [(tuple(out), inputs[0].dtype)]

    def run(self, node, *xs):
        return [np.concatenate(xs, axis=int(node.attr("axis", 1)))]


def _pad_amounts(node: Node, inputs, rank: int) -> list[int]:
    """Begin and end pads for every axis, ONNX order [b0, b1, ..., e0, e1, ...]."""
    pads = node.attr("pads")
    if pads is None:
        pads = constant_ints(node, inputs[1] if len(inputs) > 1 else None, "pads")
    axes = None
    if len(inputs) > 3 and inputs[3] is not None:
        axes = [normalize_axis(node, a, rank) for a in constant_ints(node, inputs[3], "axes")]
    axes = list(range(rank)) if axes is None else axes
    if len(pads) != 2 * len(axes):
        raise fail(node, f"{len(pads)} pad values for {len(axes)} axes")
    full = [0] * (2 * rank)
    for i, a in enumerate(axes):
        full[a], full[a + rank] = pads[i], pads[i + len(axes)]
    return full


@register
class Pad(_Movement):
    """Modes constant (value from the input or, before opset 11, the attribute), reflect (mirror without
    repeating the edge), edge and wrap; a negative pad crops."""

    op_type = "Pad"
    max_inputs = 4

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        pads = _pad_amounts(node, inputs, len(x))
        out = tuple(d + pads[i] + pads[i + len(x)] for i, d in enumerate(x))
        if min(out) < 0:
            raise fail(node, f"pads {pads} crop {x} below zero")
        return [(out, inputs[0].dtype)]

    def run(self, node, x, pads=None, value=None, axes=None):
        rank = x.ndim
        amounts = _pad_amounts(node, [_shape_only(x), _const(pads), _const(value), _const(axes)], rank)
        mode = node.attr("mode", "constant")
        modes = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}
        if mode not in modes:
            raise fail(node, f"mode {mode!r} is not one of constant, reflect, edge, wrap")
        begin, end = amounts[:rank], amounts[rank:]
        if min(amounts) < 0:
            x = x[tuple(slice(max(-b, 0), d - max(-e, 0)) for b, e, d in zip(begin, end, x.shape, strict=True))]
            begin, end = [max(b, 0) for b in begin], [max(e, 0) for e in end]
        if not any(begin) and not any(end):
            return [x]
        width = list(zip(begin, end, strict=True))
        if mode != "constant":
            if 0 in x.shape:
                raise fail(node, f"mode {mode!r} cannot pad an empty tensor {x.shape}")
            return [np.pad(x, width, mode=modes[mode])]
        fill = node.attr("value", 0.0) if value is None or value.size == 0 else value.reshape(-1)[0]
        return [np.pad(x, width, mode="constant", constant_values=np.asarray(fill).astype(x.dtype))]


#: Resize modes edgesim's float kernel implements
RESIZE_MODES = ("nearest", "linear", "cubic")
RESIZE_COORDINATES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_inputs(inputs: list) -> tuple:
    """(roi, scales, sizes) from Resize's inputs: opset 10 has (X, scales), later opsets (X, roi, scales, sizes)."""
    if len(inputs) == 2:
        return None, inputs[1], None
    padded = [*inputs, None, None, None][1:4]
    return tuple(padded)


def resize_targets(
    node: Node, x: Dims, scales: list[float] | None, sizes: list[int] | None
) -> tuple[list[int], list[float]]:
    """(output shape, scale per axis) of a Resize: sizes win over scales; with sizes the scale is out / in,
    or, under keep_aspect_ratio_policy not_larger / not_smaller, one scale for all resized axes."""
    rank = len(x)
    axes = [normalize_axis(node, a, rank) for a in node.attr("axes", list(range(rank)))]
    out, scale = list(x), [1.0] * rank
    if sizes:
        if len(sizes) != len(axes):
            raise fail(node, f"{len(sizes)} sizes for {len(axes)} axes")
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if any(s < 1 for s in sizes) or any(x[a] < 1 for a in axes):
            raise fail(node, f"sizes {list(sizes)} of input {list(x)}: every resized dim needs a positive size")
        ratios = [s / x[a] for a, s in zip(axes, sizes, strict=True)]
        if policy in ("not_larger", "not_smaller"):
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                scale[a] = common
                out[a] = int(common * x[a] + 0.5)
        elif policy == "stretch":
            for a, s, r in zip(axes, sizes, ratios, strict=True):
                out[a], scale[a] = s, r
        else:
            raise fail(node, f"keep_aspect_ratio_policy {policy!r} is not one of stretch, not_larger, not_smaller")
    elif scales:
        if len(scales) != len(axes):
            raise fail(node, f"{len(scales)} scales for {len(axes)} axes")
        for a, s in zip(axes, scales, strict=True):
            if not (s > 0 and math.isfinite(s)):  # also NaN
                raise fail(node, f"scale {s} along axis {a} is not a positive finite number")
            out[a], scale[a] = int(math.floor(x[a] * s)), s
    else:
        raise fail(node, "neither scales nor sizes is given")
    return out, scale


def _source_coordinates(node: Node, mode: str, size_in: int, size_out: int, scale: float, roi) -> np.ndarray:
    """Where each output position samples the input (ONNX coordinate_transformation_mode).

    In float32, in the order (and, where it mixes in doubles, the precision) ONNX Runtime evaluates the
    formulas: other roundings differ in the last bits, which moves nearest-neighbour picks that land exactly
    on a pixel (asymmetric 3 / 0.6 is 5 in float32 and 4.9999... in float64).
    """
    f = np.float32
    x = np.arange(size_out, dtype=f)
    scale, half = f(scale), f(0.5)
    if mode == "half_pixel":
        return (x + half) / scale - half
    if mode == "half_pixel_symmetric":  # onnxruntime: the offset in float32, the rest in float64
        adjustment = f(size_out) / (scale * f(size_in))
        offset = f(size_in) / f(2) * (f(1) - adjustment)
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5).astype(f)
    if mode == "pytorch_half_pixel":
        return (x + half) / scale - half if size_out > 1 else np.zeros(size_out, f)
    if mode == "align_corners":
        return x * f(size_in - 1) / f(size_out - 1) if size_out > 1 else np.zeros(size_out, f)
    if mode == "asymmetric":
        return x / scale
    start, end = f(roi[0]), f(roi[1])
    if size_out > 1:
        return start * f(size_in - 1) + x * (end - start) * f(size_in - 1) / f(size_out - 1)
    return np.full(size_out, half * (start + end) * f(size_in - 1), dtype=f)


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 from floor(x); t = x - floor(x)."""
    d = np.stack([t + 1, t, 1 - t, 2 - t], axis=-1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _resize_taps(node: Node, coords: np.ndarray, size_in: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(input index per output position and tap, weight per tap or None for nearest)."""
    if mode == "nearest":
        nearest = node.attr("nearest_mode", "round_prefer_floor")
        if nearest == "round_prefer_floor":
            index = np.ceil(coords - 0.5)
        elif nearest == "round_prefer_ceil":
            index = np.floor(coords + 0.5)
        elif nearest == "floor":
            index = np.floor(coords)
        elif nearest == "ceil":
            index = np.ceil(coords)
        else:
            raise fail(node, f"nearest_mode {nearest!r} is not one of {', '.join(NEAREST_MODES)}")
        return np.clip(index, 0, size_in - 1).astype(np.int64)[:, None], None
    if mode == "linear":
        coords = np.clip(coords, 0, size_in - 1)
        base = np.floor(coords)
        t = coords - base
        offsets, weights = np.array([0, 1]), np.stack([1 - t, t], axis=-1)
    else:
        base = np.floor(coords)
        offsets, weights = (
            np.array([-1, 0, 1, 2]),
            _cubic_weights(coords - base, float(node.attr("cubic_coeff_a", -0.75))),
        )
    index = base.astype(np.int64)[:, None] + offsets[None, :]
    if mode == "cubic" and node.attr("exclude_outside", 0):
        weights = np.where((index >= 0) & (index < size_in), weights, 0.0)
        weights = weights / weights.sum(axis=1, keepdims=True)
    return np.clip(index, 0, size_in - 1), weights


@register
class Resize(_Movement):
    """Opset 10: (X, scales). Opset 11+: (X, roi, scales, sizes); sizes win when given.

    The float kernel resizes one axis at a time (nearest, linear and cubic are separable), for any rank, with
    every coordinate_transformation_mode and nearest_mode of opset 19; opset 10 is asymmetric and, for
    nearest, rounds down when upsampling. Antialiased downsampling is refused.
    """

    op_type = "Resize"
    max_inputs = 4

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        _, scales_t, sizes_t = _resize_inputs(inputs)
        sizes = scales = None
        if sizes_t is not None and sizes_t.shape != (0,):
            sizes = constant_ints(node, sizes_t, "sizes")
        elif scales_t is not None and scales_t.shape != (0,):
            if not scales_t.constant:
                raise fail(node, "its scales are computed at run time; export the model with static shapes")
            scales = [float(v) for v in np.asarray(scales_t.data).reshape(-1)]
        out, _ = resize_targets(node, x, scales, sizes)
        return [(tuple(out), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        # interpolation: a few multiply-adds per output element (linear), none for nearest
        return 0 if node.attr("mode", "nearest") == "nearest" else 4 * outputs[0].size

    def run(self, node, x, *rest):
        opset10 = len(rest) == 1
        roi, scales, sizes = _resize_inputs([x, *rest])

        def given(v):
            return None if v is None or v.size == 0 else v.reshape(-1)

        sizes, scales = given(sizes), given(scales)
        out, scale = resize_targets(
            node,
            x.shape,
            None if scales is None else [float(v) for v in scales],
            None if sizes is None else [int(v) for v in sizes],
        )
        mode = node.attr("mode", "nearest")
        coordinates = "asymmetric" if opset10 else node.attr("coordinate_transformation_mode", "half_pixel")
        if mode not in RESIZE_MODES:
            raise fail(node, f"mode {mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if coordinates not in RESIZE_COORDINATES:
            raise fail(
                node,
                f"coordinate_transformation_mode {coordinates!r} is not one of {', '.join(RESIZE_COORDINATES)}",
            )
        if node.attr("antialias", 0) and mode != "nearest" and min(scale) < 1:
            raise fail(node, "antialiased downsampling (antialias=1 with a scale below 1) has no float kernel yet")
        rank = x.ndim
        axes = [normalize_axis(node, a, rank) for a in node.attr("axes", list(range(rank)))]
        roi = given(roi)
        if coordinates == "tf_crop_and_resize":
            if roi is None or roi.size != 2 * len(axes):
                raise fail(node, f"tf_crop_and_resize needs a roi of {2 * len(axes)} values")
            roi_of = {a: (float(roi[i]), float(roi[i + len(axes)])) for i, a in enumerate(axes)}
        y = x if mode == "nearest" else x.astype(np.float64)
        for a in axes:
            if out[a] == x.shape[a] and scale[a] == 1.0 and coordinates != "tf_crop_and_resize":
                continue
            coords = _source_coordinates(
                node,
                coordinates,
                x.shape[a],
                out[a],
                scale[a],
                roi_of[a] if coordinates == "tf_crop_and_resize" else None,
            )
            if opset10 and mode == "nearest":
                # ONNX Runtime's opset-10 rule: round down when upsampling, up when downsampling
                coords = np.floor(coords) if scale[a] >= 1 else np.ceil(coords)
            index, weights = _resize_taps(node, coords, x.shape[a], mode)
            shape = [1] * rank
            shape[a] = out[a]
            if weights is None:
                y = np.take(y, index[:, 0], axis=a)
            else:
                y = sum(np.take(y, index[:, j], axis=a) * weights[:, j].reshape(shape) for j in range(index.shape[1]))
            if coordinates == "tf_crop_and_resize":
                outside = (coords < 0) | (coords > x.shape[a] - 1)
                y = np.where(outside.reshape(shape), node.attr("extrapolation_value", 0.0), y)
        if np.issubdtype(x.dtype, np.integer) and mode != "nearest":
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(y), info.min, info.max)
        return [np.asarray(y).astype(x.dtype, copy=False)]


def slice_ranges(node: Node, x: Dims, starts, ends, axes, steps) -> list[slice]:
    rank = len(x)
    axes = list(range(len(starts))) if axes is None else [normalize_axis(node, a, rank) for a in axes]
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise fail(node, "starts, ends, axes and steps differ in length")
    if 0 in steps:
        raise fail(node, "a slice step is 0")
    slices = [slice(None)] * rank
    for a, b, e, s in zip(axes, starts, ends, steps, strict=True):
        # Python's slice clamping is ONNX's (starts/ends clamped to the axis, huge values allowed)
        slices[a] = slice(b, e, s)
    return slices


@register
class Slice(_Movement):
    op_type = "Slice"
    max_inputs = 5

    def _slices(self, node, inputs, x):
        if node.attr("starts") is not None:  # opset < 10
            starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
        else:

            def opt(i, what):
                return constant_ints(node, inputs[i], what) if len(inputs) > i and inputs[i] is not None else None

            starts, ends = opt(1, "starts"), opt(2, "ends")
            axes, steps = opt(3, "axes"), opt(4, "steps")
        if starts is None or ends is None:
            raise fail(node, "it needs starts and ends (inputs 1 and 2 from opset 10, attributes before)")
        return slice_ranges(node, x, starts, ends, axes, steps)

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        slices = self._slices(node, inputs, x)
        return [(tuple(len(range(d)[s]) for d, s in zip(x, slices, strict=True)), inputs[0].dtype)]

    def run(self, node, x, *rest):
        inputs = [_shape_only(x), *(_const(r) for r in rest)]
        return [x[tuple(self._slices(node, inputs, x.shape))]]


@register
class Gather(_Movement):
    op_type = "Gather"
    # an embedding table (constant data, run-time indices) is a parameter
    weight_inputs = (0,)
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "data")
        idx = shape_of(node, inputs[1], "indices")
        axis = normalize_axis(node, int(node.attr("axis", 0)), len(x))
        return [((*x[:axis], *idx, *x[axis + 1 :]), inputs[0].dtype)]

    def weight_slots(self, node, inputs):
        return [] if inputs[1].constant else super().weight_slots(node, inputs)

    def run(self, node, x, indices):
        return [np.take(x, indices, axis=int(node.attr("axis", 0)))]


@register
class Shape(_Movement):
    """Known whenever the input's shape is, so it always folds to a constant."""

    op_type = "Shape"

    def infer(self, node, inputs):
        return [((len(self._dims(node, inputs[0].shape)),), "int64")]

    def _dims(self, node: Node, shape: Dims) -> list[int]:
        start, end = node.attr("start", 0), node.attr("end")
        return list(shape[slice(start, end)])

    def fold(self, node, inputs):
        shape = shape_of(node, inputs[0], "input")
        return [np.array(self._dims(node, shape), dtype=np.int64)]

    def run(self, node, x):
        return [np.array(self._dims(node, x.shape), dtype=np.int64)]


@register
class Size(_Movement):
    """The element count of the input as an int64 scalar: known whenever its shape is, so it always folds."""

    op_type = "Size"

    def infer(self, node, inputs):
        return [((), "int64")]

    def fold(self, node, inputs):
        return [np.array(math.prod(shape_of(node, inputs[0], "input")), dtype=np.int64)]

    def run(self, node, x):
        return [np.array(x.size, dtype=np.int64)]


@register
class Cast(_Movement):
    op_type = "Cast"

    def dtype(self, node: Node) -> str:
        to = node.attr("to")
        if isinstance(to, int):
            from onnx.helper import tensor_dtype_to_np_dtype

            return np.dtype(tensor_dtype_to_np_dtype(to)).name
        return np.dtype(to).name

    def infer(self, node, inputs):
        return [(shape_of(node, inputs[0], "input"), self.dtype(node))]

    def run(self, node, x):
        return [x.astype(self.dtype(node))]


@register
class Expand(_Movement):
    op_type = "Expand"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        return [(broadcast(node, [x, tuple(constant_ints(node, inputs[1], "shape"))]), inputs[0].dtype)]

    def run(self, node, x, shape):
        return [x * np.ones([int(v) for v in shape], dtype=x.dtype)]


def _split_sizes(node: Node, inputs, x: Dims, outputs: int) -> tuple[int, list[int]]:
    """(axis, size of each piece): the ``split`` input (opset 13) or attribute, else ``num_outputs`` (opset 18)
    or the number of outputs, equal pieces with a smaller last one when the axis does not divide."""
    axis = normalize_axis(node, int(node.attr("axis", 0)), len(x))
    split = node.attr("split")
    if split is None and len(inputs) > 1 and inputs[1] is not None:
        split = constant_ints(node, inputs[1], "split")
    if split is not None:
        if len(split) != outputs or sum(split) != x[axis] or min(split, default=0) < 0:
            raise fail(node, f"split {list(split)} does not cut axis {axis} of {x} into {outputs} pieces")
        return axis, [int(s) for s in split]
    pieces = int(node.attr("num_outputs", outputs))
    size = -(-x[axis] // pieces)
    sizes = [min(size, max(x[axis] - i * size, 0)) for i in range(pieces)]
    return axis, sizes


@register
class Split(_Movement):
    op_type = "Split"
    max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis, sizes = _split_sizes(node, inputs, x, len(node.outputs))
        return [((*x[:axis], s, *x[axis + 1 :]), inputs[0].dtype) for s in sizes]

    def run(self, node, x, split=None):
        axis, sizes = _split_sizes(node, [_shape_only(x), _const(split)], x.shape, len(node.outputs))
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@register
class Tile(_Movement):
    op_type = "Tile"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        repeats = constant_ints(node, inputs[1], "repeats")
        if len(repeats) != len(x) or min(repeats, default=0) < 0:
            raise fail(node, f"repeats {repeats} do not fit an input of rank {len(x)}")
        return [(tuple(d * r for d, r in zip(x, repeats, strict=True)), inputs[0].dtype)]

    def run(self, node, x, repeats):
        return [np.tile(x, [int(r) for r in repeats])]


@register
class Range(_Movement):
    """start, start + delta, ... up to (not including) limit; all three are scalars. Folds when they are
    constant; a range whose length is only known at run time cannot be costed."""

    op_type = "Range"
    min_inputs = max_inputs = 3

    def infer(self, node, inputs):
        for t, what in zip(inputs, ("start", "limit", "delta"), strict=True):
            constant_ints(node, t, what)  # refuses run-time bounds with the usual hint
        return [((_range_count(node, *(t.data for t in inputs)),), inputs[0].dtype)]

    def run(self, node, start, limit, delta):
        start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
        count = _range_count(node, start, limit, delta)
        return [(start + np.arange(count, dtype=start.dtype) * delta).astype(start.dtype)]


def _range_count(node: Node, start, limit, delta) -> int:
    """ONNX's element count max(ceil((limit - start) / delta), 0); the shape a folded Range is checked by."""
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    if delta == 0:
        raise fail(node, "delta is 0, so the range never reaches its limit")
    with np.errstate(all="ignore"):
        steps = np.ceil((limit - start) / delta)
    if not np.isfinite(steps):
        raise fail(node, f"start {start}, limit {limit}, delta {delta} give no finite length")
    return max(int(steps), 0)


@register
class GatherElements(_Movement):
    """out[i][j][k] = data[index[i][j][k]][j][k] along ``axis``; the output has the indices' shape."""

    op_type = "GatherElements"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        shape_of(node, inputs[0], "data")
        return [(shape_of(node, inputs[1], "indices"), inputs[0].dtype)]

    def run(self, node, x, indices):
        axis = normalize_axis(node, int(node.attr("axis", 0)), x.ndim)
        indices = np.where(indices < 0, indices + x.shape[axis], indices)
        return [np.take_along_axis(x, indices, axis=axis)]


def _shape_only(x: np.ndarray) -> Tensor:
    """A Tensor describing a concrete array, so kernels can reuse their op's shape logic."""
    return Tensor("", tuple(x.shape), x.dtype.name)


def _const(value: np.ndarray | None) -> Tensor | None:
    return None if value is None else Tensor.from_array("", np.asarray(value))
