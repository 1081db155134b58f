"""Selection by computed indices: TopK (detection post-processing, beam search), GatherND, ScatterND
(YOLO heads written by older exporters), OneHot. Their output shapes depend only on shapes and on constant
inputs (TopK's k, OneHot's depth), so the costs are static."""

from __future__ import annotations

import numpy as np

from simulator.ops.registry import OpDef, constant_ints, fail, normalize_axis, register, shape_of


@register
class TopK(OpDef):
    """The k largest (or smallest) values along an axis and their int64 indices; ties keep the lower index
    first, as onnxruntime does. One comparison per input element."""

    op_type = "TopK"
    op_class = "elementwise"
    min_inputs = max_inputs = 2

    def _k(self, node, inputs, x) -> tuple[int, int]:
        axis = normalize_axis(node, int(node.attr("axis", -1)), len(x))
        [k] = constant_ints(node, inputs[1], "k")
        if not 0 <= k <= x[axis]:
            raise fail(node, f"k={k} is outside 0..{x[axis]} along axis {axis}")
        return axis, k

    def infer(self, node, inputs):
        x = shape_of(node, inputs[0], "input")
        axis, k = self._k(node, inputs, x)
        out = (*x[:axis], k, *x[axis + 1 :])
        return [(out, inputs[0].dtype), (out, "int64")][: len(node.outputs)]

    def ops(self, node, inputs, outputs):
        return inputs[0].size

    def run(self, node, x, k):
        axis = normalize_axis(node, int(node.attr("axis", -1)), x.ndim)
        k = int(np.asarray(k).reshape(-1)[0])
        key = -x if node.attr("largest", 1) else x
        order = np.argsort(key, axis=axis, kind="stable")
        index = np.take(order, np.arange(k), axis=axis)
        return [np.take_along_axis(x, index, axis=axis), index.astype(np.int64)][: len(node.outputs)]


def _gather_nd_shape(node, data, indices) -> tuple[int, ...]:
    batch = int(node.attr("batch_dims", 0))
    last = indices[-1]
    if batch + last > len(data):
        raise fail(node, f"indices of depth {last} after {batch} batch dims do not fit data of rank {len(data)}")
    return (*indices[:-1], *data[batch + last :])


@register
class GatherND(OpDef):
    op_type = "GatherND"
    op_class = "data_movement"
    min_inputs = max_inputs = 2

    def infer(self, node, inputs):
        data, indices = shape_of(node, inputs[0], "data"), shape_of(node, inputs[1], "indices")
        return [(_gather_nd_shape(node, data, indices), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, data, indices):
        batch = int(node.attr("batch_dims", 0))
        out_shape = _gather_nd_shape(node, data.shape, indices.shape)
        lead = int(np.prod(data.shape[:batch], dtype=np.int64))
        flat_data = data.reshape(lead, *data.shape[batch:])
        flat_idx = indices.reshape(lead, -1, indices.shape[-1])
        flat_idx = np.where(flat_idx < 0, flat_idx + np.array(data.shape[batch : batch + indices.shape[-1]]), flat_idx)
        picked = [flat_data[b][tuple(flat_idx[b].T)] for b in range(lead)]
        return [np.asarray(picked).reshape(out_shape)]


@register
class ScatterND(OpDef):
    """A copy of data with the slices the indices name replaced by (or, with ``reduction``, combined with)
    the updates, in index order."""

    op_type = "ScatterND"
    op_class = "data_movement"
    min_inputs = max_inputs = 3

    def infer(self, node, inputs):
        return [(shape_of(node, inputs[0], "data"), inputs[0].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, data, indices, updates):
        out = np.array(data, copy=True)
        reduction = node.attr("reduction", "none")
        combine = {"none": None, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}
        if reduction not in combine:
            raise fail(node, f"reduction {reduction!r} is not one of {', '.join(combine)}")
        flat_idx = indices.reshape(-1, indices.shape[-1])
        flat_upd = updates.reshape(len(flat_idx), *data.shape[indices.shape[-1] :])
        for index, update in zip(flat_idx, flat_upd, strict=True):
            where = tuple(int(i) for i in index)
            out[where] = update if combine[reduction] is None else combine[reduction](out[where], update)
        return [out]


@register
class OneHot(OpDef):
    """indices -> a new axis of ``depth`` entries holding values[1] at the index and values[0] elsewhere."""

    op_type = "OneHot"
    op_class = "data_movement"
    min_inputs = max_inputs = 3

    def infer(self, node, inputs):
        indices = shape_of(node, inputs[0], "indices")
        [depth] = constant_ints(node, inputs[1], "depth")
        axis = normalize_axis(node, int(node.attr("axis", -1)), len(indices) + 1)
        return [((*indices[:axis], depth, *indices[axis:]), inputs[2].dtype)]

    def ops(self, node, inputs, outputs):
        return 0

    def run(self, node, indices, depth, values):
        depth = int(np.asarray(depth).reshape(-1)[0])
        axis = normalize_axis(node, int(node.attr("axis", -1)), indices.ndim + 1)
        index = np.where(indices < 0, indices + depth, indices).astype(np.int64)
        hot = np.expand_dims(index, axis) == np.arange(depth).reshape(
            [-1 if i == axis else 1 for i in range(indices.ndim + 1)]
        )
        return [np.where(hot, values[1], values[0]).astype(values.dtype)]
