"""Sliding-window geometry shared by convolution and pooling: output sizes and padding, as ONNX defines them."""

from __future__ import annotations

import numpy as np

from simulator.graph import Node, Shape
from simulator.ops.registry import fail


def window_geometry(
    node: Node,
    spatial: Shape,
    kernel: Shape,
    *,
    ceil_mode: bool = False,
) -> tuple[Shape, list[int], list[int], list[int]]:
    """(output spatial shape, begin pads, end pads, strides) for a window op over ``spatial``.

    Handles strides, dilations, explicit pads and auto_pad (SAME_UPPER / SAME_LOWER / VALID) as in the ONNX
    Conv and Pool specs, including the ceil_mode rule that a window may not start in the end padding.
    """
    rank = len(spatial)
    if len(kernel) != rank:
        raise fail(node, f"kernel {tuple(kernel)} does not match the {rank} spatial dims of its input")
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    pads = list(node.attr("pads", [0] * (2 * rank)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank:
        raise fail(node, "strides, dilations or pads do not match the number of spatial dims")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise fail(node, "strides, dilations and kernel sizes must be positive")
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    begin, end, out = [], [], []
    for i in range(rank):
        size, k, s = spatial[i], effective[i], strides[i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // s)  # ceil in integers: a float quotient overflows on huge dims
            total = max((o - 1) * s + k - size, 0)
            small, large = total // 2, total - total // 2
            b, e = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        elif auto_pad == "VALID":
            b = e = 0
            o = (size - k) // s + 1
        elif auto_pad in ("NOTSET", ""):
            b, e = pads[i], pads[i + rank]
            span = size + b + e - k
            if ceil_mode:
                o = -(-span // s) + 1
                if (o - 1) * s >= size + b:
                    o -= 1
            else:
                o = span // s + 1
        else:
            raise fail(node, f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        if o < 1:
            raise fail(
                node,
                f"the window ({k}) is larger than the padded input ({size + b + e}) along spatial dim {i}",
            )
        begin.append(b)
        end.append(e)
        out.append(o)
    return tuple(out), begin, end, strides


def transposed_geometry(
    node: Node, spatial: Shape, kernel: Shape
) -> tuple[Shape, list[int], list[int], list[int], list[int]]:
    """(output spatial shape, begin pads, end pads, strides, dilations) of a ConvTranspose over ``spatial``.

    The full (uncropped) output along an axis is ``stride * (in - 1) + output_padding + (k - 1) * dilation + 1``;
    pads crop it. With ``output_shape`` or auto_pad SAME_*, the pads are derived as the ONNX spec says:
    ``total = full - out``, split evenly, the odd element at the end for SAME_UPPER and at the start otherwise.
    A negative pad widens the output (those positions receive only the bias).
    """
    rank = len(spatial)
    if len(kernel) != rank:
        raise fail(node, f"kernel {tuple(kernel)} does not match the {rank} spatial dims of its input")
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    output_padding = list(node.attr("output_padding", [0] * rank))
    pads = list(node.attr("pads", [0] * (2 * rank)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    explicit = node.attr("output_shape")
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank or len(output_padding) != rank:
        raise fail(node, "strides, dilations, pads or output_padding do not match the number of spatial dims")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise fail(node, "strides, dilations and kernel sizes must be positive")
    if auto_pad not in ("NOTSET", "", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise fail(node, f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    if explicit is not None:
        explicit = [int(v) for v in list(explicit)[-rank:]]
        if len(explicit) != rank:
            raise fail(node, f"output_shape {list(node.attr('output_shape'))} has fewer than {rank} spatial dims")
    begin, end, out = [], [], []
    for i in range(rank):
        full = strides[i] * (spatial[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
        if explicit is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = explicit[i] if explicit is not None else spatial[i] * strides[i]
            total = full - o
            small, large = total // 2, total - total // 2
            b, e = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        elif auto_pad == "VALID":
            b = e = 0
            o = full
        else:
            b, e = pads[i], pads[i + rank]
            o = full - b - e
        if o < 1:
            raise fail(node, f"output spatial dim {i} would be {o}")
        begin.append(b)
        end.append(e)
        out.append(o)
    return tuple(out), begin, end, strides, dilations


def sliding_windows(
    node: Node,
    x: np.ndarray,
    kernel: Shape,
    *,
    pad_value: float = 0,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, list[int]]:
    """A read-only view ``(N, C, *out, *kernel)`` of the (dilated, strided) windows of an N x C x spatial
    input, padded with ``pad_value`` as :func:`window_geometry` says; also the begin pads.

    The input is copied once when it needs padding (also beyond the end pads, where ceil_mode lets the last
    window run past them); the windows themselves are a strided view, so im2col costs one copy at most.
    """
    rank = x.ndim - 2
    out, begin, _, strides = window_geometry(node, x.shape[2:], kernel, ceil_mode=ceil_mode)
    dilations = list(node.attr("dilations", [1] * rank))
    span = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out, strides, kernel, dilations, strict=True)]
    # only the part of the padded input some window reads: a begin pad (a negative one crops), then up to
    # the last window's end
    if min(begin) < 0:
        x = x[(slice(None), slice(None), *(slice(max(-b, 0), None) for b in begin))]
    lead = [max(b, 0) for b in begin]
    trail = [max(n - size - b, 0) for n, size, b in zip(span, x.shape[2:], lead, strict=True)]
    if any(lead) or any(trail):
        x = np.pad(x, [(0, 0), (0, 0), *zip(lead, trail, strict=True)], constant_values=pad_value)
    axes = tuple(range(2, 2 + rank))
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    windows = np.lib.stride_tricks.sliding_window_view(x, extent, axes)
    index = (
        slice(None),
        slice(None),
        *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
        *(slice(None, None, d) for d in dilations),
    )
    return windows[index], begin


def window_counts(node: Node, spatial: Shape, kernel: Shape, *, include_pad: bool, ceil_mode: bool) -> np.ndarray:
    """Taps of each window that fall on the input (or on input and explicit padding with ``include_pad``),
    shape ``out``: AveragePool's divisor. Positions past the end pads (ceil_mode) never count."""
    out, begin, end, strides = window_geometry(node, spatial, kernel, ceil_mode=ceil_mode)
    dilations = list(node.attr("dilations", [1] * len(spatial)))
    counts = np.ones((), dtype=np.int64)
    for o, b, e, s, k, d, size in zip(out, begin, end, strides, kernel, dilations, spatial, strict=True):
        taps = np.arange(o)[:, None] * s - b + np.arange(k)[None, :] * d  # input coordinate of every tap
        low, high = (-b, size + e) if include_pad else (0, size)
        per_axis = ((taps >= low) & (taps < high)).sum(axis=1)
        counts = np.multiply.outer(counts, per_axis)
    return counts
