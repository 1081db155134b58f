"""Sliding-window geometry shared by convolution and pooling: output sizes and padding, as ONNX defines them."""

from __future__ import annotations

import math

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
            o = math.ceil(size / s)
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
