"""Pow, Sqrt, Equal, Not, Size and Split against onnxruntime: dtypes (Pow keeps the base's type, Equal and
Not give bool, Size int64), broadcasting, and Split's three ways of sizing its parts."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

from simulator.importers.onnx_import import onnx_to_graph
from simulator.ops import get_op
from simulator.passes.infer_shapes import infer_shapes
from tests.helpers import make_model, tensor_info


def _check(op, feeds, consts=None, attrs=None, n_out=1, opset=18):
    consts = consts or {}
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, [*feeds, *consts], outs, name="node", **(attrs or {}))
    infos = [tensor_info(k, list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype)) for k, v in feeds.items()]
    model = make_model([node], infos, [helper.make_empty_tensor_value_info(o) for o in outs], consts, opset)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    graph = infer_shapes(onnx_to_graph(model, "m")[0])
    [node] = graph.order
    got = get_op(op).run(node, *[{**feeds, **consts}[n] for n in node.inputs])
    for name, g, e in zip(outs, got, expected, strict=True):
        assert (
            (g.shape, g.dtype) == (e.shape, e.dtype) == (graph.tensors[name].shape, np.dtype(graph.tensors[name].dtype))
        )
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=2e-7)  # an ulp: powf is not always correctly rounded
        else:
            np.testing.assert_array_equal(g, e)


rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 4)).astype(np.float32)


def test_pow_keeps_the_base_type_with_an_integer_exponent():
    _check("Pow", {"x": X}, {"e": np.array(2, np.int64)})
    _check("Pow", {"x": np.abs(X)}, {"e": np.array([0.5, 1.0, 3.0, -1.0], np.float32)})


def test_sqrt_equal_not():
    _check("Sqrt", {"x": np.abs(X)})
    ints = rng.integers(0, 3, (2, 3, 4)).astype(np.int64)
    _check("Equal", {"a": ints}, {"b": np.array([0, 1, 2, 1], np.int64)})
    _check("Not", {"b": ints == 1})


def test_size_folds_to_the_element_count():
    graph = infer_shapes(onnx_to_graph(make_model(
        [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Mul", ["x", "nf"], ["y"]),
         helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT)],
        [tensor_info("x", [2, 3, 4])], [helper.make_empty_tensor_value_info("y")]), "m")[0])  # fmt: skip
    [mul] = graph.nodes
    assert mul.op_type == "Mul" and float(graph.tensors[mul.inputs[1]].data) == 24.0


@pytest.mark.parametrize(
    ("consts", "attrs", "n_out", "opset"),
    [
        ({"s": np.array([1, 3], np.int64)}, {"axis": 2}, 2, 18),
        ({}, {"axis": 1, "num_outputs": 2}, 2, 18),  # 3 in 2 parts: ceil(3 / 2) = 2, then the rest, 1
        ({}, {"axis": 1, "split": [2, 1]}, 2, 11),
        ({}, {"axis": 0}, 2, 13),
    ],
)
def test_split_sizes(consts, attrs, n_out, opset):
    _check("Split", {"x": X}, consts, attrs, n_out, opset)
