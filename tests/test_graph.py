"""The op graph: deterministic order, structural errors, value semantics of replace(), lazy constants."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, QuantParams, Tensor


def _diamond(order):
    """x -> a, x -> b, (a, b) -> c, with the nodes listed in ``order``."""
    nodes = {
        "a": Node("a", "Relu", ["x"], ["ta"]),
        "b": Node("b", "Relu", ["x"], ["tb"]),
        "c": Node("c", "Add", ["ta", "tb"], ["tc"]),
    }
    return Graph("g", [nodes[n] for n in order], {"x": Tensor("x", (1, 4))}, ["x"], ["tc"])


def test_order_is_topological_with_ties_in_file_order():
    assert [n.name for n in _diamond("abc").order] == ["a", "b", "c"]
    assert [n.name for n in _diamond("bac").order] == ["b", "a", "c"]
    # a consumer listed before its producers still runs after them
    assert [n.name for n in _diamond("cba").order] == ["b", "a", "c"]


def test_edges_carry_tensor_names():
    g = _diamond("abc").nx_graph
    assert sorted((u, v, k) for u, v, k in g.edges(keys=True)) == [("a", "c", "ta"), ("b", "c", "tb")]


def test_cycle_is_reported_with_its_nodes():
    nodes = [Node("p", "Relu", ["q_out"], ["p_out"]), Node("q", "Relu", ["p_out"], ["q_out"])]
    with pytest.raises(EdgesimError, match="cycle") as exc:
        Graph("g", nodes, {}, [], ["p_out"]).order
    assert "p" in str(exc.value) and "q" in str(exc.value)


def test_undefined_input_is_reported():
    with pytest.raises(EdgesimError, match="'ghost'"):
        Graph("g", [Node("n", "Relu", ["ghost"], ["y"])], {}, [], ["y"]).order


def test_two_producers_of_one_tensor():
    nodes = [Node("m", "Relu", ["x"], ["y"]), Node("n", "Relu", ["x"], ["y"])]
    with pytest.raises(EdgesimError, match="written by both 'm' and 'n'"):
        Graph("g", nodes, {"x": Tensor("x", (1,))}, ["x"], ["y"]).order


def test_duplicate_node_names():
    nodes = [Node("n", "Relu", ["x"], ["y"]), Node("n", "Relu", ["y"], ["z"])]
    with pytest.raises(EdgesimError, match="two nodes are named 'n'"):
        Graph("g", nodes, {"x": Tensor("x", (1,))}, ["x"], ["z"])


def test_replace_builds_a_new_graph_and_drops_unused_tensors():
    g = _diamond("abc")
    g.tensors["unused"] = Tensor.from_array("unused", np.zeros(3))
    h = g.replace(nodes=[n for n in g.nodes if n.name != "b"] + [Node("b2", "Relu", ["x"], ["tb"])])
    assert "unused" not in h.tensors and "unused" in g.tensors
    assert [n.name for n in g.order] == ["a", "b", "c"]
    assert [n.name for n in h.order] == ["a", "b2", "c"]


def test_lazy_constant_is_materialised_once():
    calls = []

    def factory():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    t = Tensor("w", (2, 3), "float32", constant=True, factory=factory)
    assert t.size == 6 and t.nbytes == 24 and calls == []
    assert t.data.sum() == 15 and t.data.shape == (2, 3)
    assert calls == [1]


def test_activation_has_no_values():
    with pytest.raises(ValueError):
        Tensor("x", (1,)).data


def test_quantized_tensor_counts_its_stored_width():
    q = QuantParams(bits=4, scale=np.array(0.1), zero_point=np.array(0))
    t = Tensor("w", (8, 8), "float32", constant=True, quant=q)
    assert t.stored_bits == 4 and (q.qmin, q.qmax) == (-8, 7)
    assert QuantParams(bits=8, scale=np.array(1.0), zero_point=np.array(128), signed=False).qmax == 255
