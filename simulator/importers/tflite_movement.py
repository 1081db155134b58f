"""TFLite's tensor-manipulation operators as converters write them (SHAPE, STRIDED_SLICE, PACK, UNPACK, GATHER,
TRANSPOSE, SPLIT, SPLIT_V, BATCH_MATMUL), imported into edgesim's ONNX-shaped graph.

Each is folded to a constant when its inputs are constants (a Keras ``Flatten`` on a dynamic batch writes
SHAPE -> STRIDED_SLICE -> PACK before its RESHAPE: with the file's static shapes all three fold away).
Otherwise an operator works in TFLite's own layout: a rank-4 activation (NCHW inside edgesim) is transposed
back to NHWC first and a rank-4 result transposed to NCHW after, so that axes, masks and permutations mean
what the file says; where an axis maps one to one (SPLIT on a rank-4 tensor) the axis is remapped instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.errors import EdgesimError

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
_BIG = 1 << 62  # an open slice end for ONNX Slice (clamped to the axis like Python's slices)


def strided_slice_plan(
    shape: tuple[int, ...], begin, end, strides, *, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
    shrink_axis_mask=0, offset=False,
) -> tuple[list[slice], list[int]]:  # fmt: skip
    """(one Python slice per input dimension, output shape) of TFLite's STRIDED_SLICE.

    The sparse spec (one entry per ``begin`` element) becomes a dense one: the ellipsis stands for as many full
    dimensions as the other entries leave (new axes after it do not consume input dimensions), a new-axis entry
    inserts a 1 into the output, a shrink entry takes one element and drops its dimension, and dimensions past
    the spec are kept whole. Begin / end masks open a side; ``offset`` makes ``end`` relative to ``begin``.
    Negative indices count from the end and out-of-range ones clamp, as in Python's slices (and TFLite's)."""
    rank, sparse = len(shape), len(begin)
    bit = [lambda m, i=i: bool((m >> i) & 1) for i in range(sparse)]
    consuming = sum(1 for i in range(sparse) if not bit[i](new_axis_mask) and not bit[i](ellipsis_mask))
    if consuming > rank:
        raise EdgesimError(f"STRIDED_SLICE spec of {sparse} entries indexes more than the input's {rank} dimensions")
    slices: list[slice] = []
    out: list[int] = []
    dim = 0
    for i in range(sparse):
        if bit[i](ellipsis_mask):
            for _ in range(rank - consuming):  # (new-axis entries consume no input dimension)
                slices.append(slice(None))
                out.append(shape[dim])
                dim += 1
            continue
        if bit[i](new_axis_mask):
            out.append(1)
            continue
        size, b, e, s = shape[dim], int(begin[i]), int(end[i]), int(strides[i])
        if s == 0:
            raise EdgesimError("STRIDED_SLICE has a stride of 0")
        if bit[i](shrink_axis_mask):
            index = b + size if b < 0 else b
            if not 0 <= index < size:
                raise EdgesimError(f"STRIDED_SLICE shrinks dimension {dim} at {b}, outside its size {size}")
            slices.append(slice(index, index + 1))
        else:
            if offset and not bit[i](end_mask):
                e = b + e
            piece = slice(None if bit[i](begin_mask) else b, None if bit[i](end_mask) else e, s)
            slices.append(piece)
            out.append(len(range(size)[piece]))
        dim += 1
    for d in range(dim, rank):
        slices.append(slice(None))
        out.append(shape[d])
    return slices, out


def _ints(b: Any, index: int, what: str) -> list[int]:
    values = b.raw(index)
    if values is None:
        raise EdgesimError(f"its {what} is computed at run time; edgesim needs it constant")
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _fold(b: Any, outs: list[int], values: list[np.ndarray]) -> None:
    for index, value in zip(outs, values, strict=True):
        b.folded[index] = np.array(value)  # (a copy that keeps a 0-d shape, unlike ascontiguousarray)


def _constant_inputs(b: Any, ins: list[int]) -> list[np.ndarray] | None:
    values = [b.raw(i) for i in ins]
    return None if any(v is None for v in values) else values


def tflite_input(b: Any, base: str, index: int) -> str:
    """An activation in TFLite's layout (NHWC for rank 4), as a node input."""
    return b.to_tflite_layout(base, b.activation(index), len(b.shape(index)))


def tflite_output(b: Any, base: str, out_index: int, suffix: str = "") -> str:
    """The name a node should write for TFLite output ``out_index``: the output itself, or for a rank-4 output a
    temporary in NHWC that a Transpose (emitted by :func:`finish_output`) turns into the NCHW tensor."""
    out = b.activation(out_index)
    if len(b.shape(out_index)) != 4:
        return out
    y = f"{base}/nhwc_out{suffix}"
    b.quant[y] = b.quant.get(out)
    return y


def finish_output(b: Any, base: str, out_index: int, y: str, suffix: str = "") -> None:
    out = b.activation(out_index)
    if y != out:
        b.node(f"{base}/to_nchw{suffix}", "Transpose", [y], out, perm=list(NHWC_TO_NCHW))


def _unary(b: Any, base: str, op_type: str, x_index: int, out_index: int, extra: list[str], **attrs: Any) -> None:
    x = tflite_input(b, base, x_index)
    y = tflite_output(b, base, out_index)
    b.node(base, op_type, [x, *extra], y, **attrs)
    finish_output(b, base, out_index, y)


def convert_shape(b: Any, base: str, ins: list[int], outs: list[int]) -> None:
    """SHAPE: the file's static shape of the input, in TFLite's order."""
    dtype = np.int64 if b.t(outs[0]).Type() == 4 else np.int32
    _fold(b, outs, [np.asarray(b.shape(ins[0]), dtype)])


def convert_strided_slice(b: Any, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    masks = dict(
        begin_mask=opts.BeginMask(), end_mask=opts.EndMask(), ellipsis_mask=opts.EllipsisMask(),
        new_axis_mask=opts.NewAxisMask(), shrink_axis_mask=opts.ShrinkAxisMask(),
        offset=bool(opts.Offset()) if hasattr(opts, "Offset") else False,
    ) if opts is not None else {}  # fmt: skip
    begin, end = _ints(b, ins[1], "begin"), _ints(b, ins[2], "end")
    strides = _ints(b, ins[3], "strides") if len(ins) > 3 and ins[3] >= 0 else [1] * len(begin)
    shape = b.shape(ins[0])
    slices, out_shape = strided_slice_plan(shape, begin, end, strides, **masks)
    if tuple(out_shape) != tuple(b.shape(outs[0])) and b.shape(outs[0]):
        raise EdgesimError(f"the slice gives shape {tuple(out_shape)}, the model says {b.shape(outs[0])}")
    values = b.raw(ins[0])
    if values is not None:
        _fold(b, outs, [values[tuple(slices)].reshape(out_shape)])
        return
    starts, ends, steps = [], [], []
    for s in slices:
        step = 1 if s.step is None else s.step
        starts.append((_BIG if step < 0 else 0) if s.start is None else s.start)
        ends.append((-_BIG if step < 0 else _BIG) if s.stop is None else s.stop)
        steps.append(step)
    rank = len(shape)
    sliced = [len(range(d)[s]) for d, s in zip(shape, slices, strict=True)]
    if rank == 4 and len(out_shape) == 4 and sliced == list(out_shape):  # axes map one to one: slice NCHW
        order = list(NHWC_TO_NCHW)
        inputs = [b.activation(ins[0])] + [
            b.constant_ints(f"{base}/{key}", [values_[a] for a in order])
            for key, values_ in (("starts", starts), ("ends", ends), ("steps", steps))
        ]
        b.node(base, "Slice", [inputs[0], inputs[1], inputs[2], b.constant_ints(f"{base}/axes", [0, 1, 2, 3]),
                               inputs[3]], b.activation(outs[0]))  # fmt: skip
        return
    x = tflite_input(b, base, ins[0])
    consts = [b.constant_ints(f"{base}/{key}", v) for key, v in (("starts", starts), ("ends", ends))]
    axes = b.constant_ints(f"{base}/axes", list(range(rank)))
    if sliced == list(out_shape):
        y = tflite_output(b, base, outs[0])
        b.node(base, "Slice", [x, *consts, axes, b.constant_ints(f"{base}/steps", steps)], y)
    else:  # shrink / new axes: a Reshape after the slice
        mid = f"{base}/sliced"
        b.quant[mid] = b.quant.get(b.activation(ins[0]))
        b.node(base, "Slice", [x, *consts, axes, b.constant_ints(f"{base}/steps", steps)], mid)
        y = tflite_output(b, base, outs[0])
        b.node(f"{base}/reshape", "Reshape", [mid, b.constant_ints(f"{base}/shape", list(out_shape))], y)
    finish_output(b, base, outs[0], y)


def convert_pack(b: Any, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    """PACK: stack along a new axis (Unsqueeze each input, then Concat); constants fold."""
    rank = len(b.shape(ins[0])) + 1
    axis = (opts.Axis() if opts is not None else 0) % rank
    values = _constant_inputs(b, ins)
    if values is not None:
        _fold(b, outs, [np.stack(values, axis=axis)])
        return
    parts = []
    for k, index in enumerate(ins):
        x = b.operand_tflite(base, index, k)
        part = f"{base}/part{k}"
        b.quant[part] = b.quant.get(x)
        parts.append(b.node(f"{base}/unsqueeze{k}", "Unsqueeze", [x, b.constant_ints(f"{base}/axis{k}", [axis])], part))
    y = tflite_output(b, base, outs[0])
    b.node(base, "Concat", parts, y, axis=axis)
    finish_output(b, base, outs[0], y)


def convert_unpack(b: Any, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    """UNPACK: Split into size-1 pieces along the axis, each squeezed."""
    shape = b.shape(ins[0])
    axis = (opts.Axis() if opts is not None else 0) % len(shape)
    values = b.raw(ins[0])
    if values is not None:
        _fold(b, outs, [np.take(values, k, axis=axis) for k in range(shape[axis])])
        return
    x = tflite_input(b, base, ins[0])
    pieces = [f"{base}/piece{k}" for k in range(len(outs))]
    for p in pieces:
        b.quant[p] = b.quant.get(x)
    b.nodes.append(b.make_node(base, "Split", [x], pieces, axis=axis, num_outputs=len(outs)))
    for k, (piece, out_index) in enumerate(zip(pieces, outs, strict=True)):
        y = tflite_output(b, base, out_index, str(k))
        b.node(f"{base}/squeeze{k}", "Squeeze", [piece, b.constant_ints(f"{base}/axes{k}", [axis])], y)
        finish_output(b, base, out_index, y, str(k))


def convert_gather(b: Any, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    """GATHER with constant indices (batch_dims 0); a constant table with constant indices folds."""
    if opts is not None and opts.BatchDims():
        raise EdgesimError(f"GATHER with batch_dims {opts.BatchDims()} is not supported (only 0)")
    rank = len(b.shape(ins[0]))
    axis = (opts.Axis() if opts is not None else 0) % rank
    indices = b.raw(ins[1])
    if indices is None:
        raise EdgesimError("GATHER with run-time indices is not supported; its indices must be a constant")
    values = b.raw(ins[0])
    if values is not None:
        _fold(b, outs, [np.take(values, indices, axis=axis)])
        return
    name = f"{base}/indices"
    b.tensors[name] = b.tensor_from_array(name, np.asarray(indices, np.int64))
    _unary(b, base, "Gather", ins[0], outs[0], [name], axis=axis)


def convert_transpose(b: Any, base: str, ins: list[int], outs: list[int]) -> None:
    """TRANSPOSE: the file's permutation composed with the layout changes on either side, as one Transpose."""
    perm = _ints(b, ins[1], "permutation")
    values = b.raw(ins[0])
    if values is not None:
        _fold(b, outs, [np.transpose(values, perm)])
        return
    first = list(NCHW_TO_NHWC) if len(perm) == 4 else list(range(len(perm)))
    combined = [first[p] for p in perm]
    if len(perm) == 4:
        combined = [combined[p] for p in NHWC_TO_NCHW]
    b.node(base, "Transpose", [b.activation(ins[0])], b.activation(outs[0]), perm=combined)


def convert_split(b: Any, base: str, kind: str, ins: list[int], outs: list[int]) -> None:
    """SPLIT (axis, value) and SPLIT_V (value, size_splits, axis) -> Split with explicit sizes."""
    if kind == "SPLIT":
        axis_index, x_index = ins[0], ins[1]
        rank = len(b.shape(x_index))
        axis = _ints(b, axis_index, "axis")[0] % rank
        sizes = [b.shape(x_index)[axis] // len(outs)] * len(outs)
    else:
        x_index, axis_index = ins[0], ins[2]
        rank = len(b.shape(x_index))
        axis = _ints(b, axis_index, "axis")[0] % rank
        sizes = _ints(b, ins[1], "size_splits")
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = b.shape(x_index)[axis] - (sum(sizes) + 1)
    values = b.raw(x_index)
    if values is not None:
        _fold(b, outs, np.split(values, np.cumsum(sizes)[:-1], axis=axis))
        return
    split = b.constant_ints(f"{base}/split", sizes)
    if rank == 4:  # every piece stays rank 4: remap the axis
        outputs = [b.activation(o) for o in outs]
        b.nodes.append(b.make_node(base, "Split", [b.activation(x_index), split], outputs,
                                   axis=NHWC_TO_NCHW.index(axis)))  # fmt: skip
        return
    b.nodes.append(b.make_node(base, "Split", [b.activation(x_index), split], [b.activation(o) for o in outs],
                               axis=axis))  # fmt: skip


def convert_batch_matmul(b: Any, base: str, opts: Any, ins: list[int], outs: list[int]) -> None:
    """BATCH_MATMUL -> MatMul, adj_x / adj_y as Transposes of the last two axes; rank-4 operands in TFLite's
    layout (the product is over TFLite's last two axes)."""
    operands = []
    for k, (index, adjoint) in enumerate(
        zip(ins[:2], (opts.AdjX(), opts.AdjY()) if opts is not None else (False, False), strict=True)
    ):
        x = b.operand_tflite(base, index, k)
        if adjoint:
            rank = len(b.shape(index))
            perm = [*range(rank - 2), rank - 1, rank - 2]
            y = f"{base}/adjoint{k}"
            b.quant[y] = b.quant.get(x)
            x = b.node(f"{base}/adjoint{k}", "Transpose", [x], y, perm=perm)
        operands.append(x)
    y = tflite_output(b, base, outs[0])
    b.node(base, "MatMul", operands, y)
    finish_output(b, base, outs[0], y)
