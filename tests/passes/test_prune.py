"""Pruning passes on hand-checkable cases: exact sparsity, global thresholds, N:M groups, channel removal."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Tensor
from simulator.importers import load_model
from simulator.passes.prune import (
    is_n_m,
    prune_channels,
    prune_n_m,
    prune_unstructured,
    sparsity_of,
    weighted_layers,
)
from simulator.summary import count


def _two_layer(w1: np.ndarray, w2: np.ndarray) -> Graph:
    """x -> Gemm(w1) -> Gemm(w2), weights (out, in) with transB."""
    tensors = {
        "x": Tensor("x", (1, w1.shape[1])),
        "w1": Tensor.from_array("w1", w1.astype(np.float32)),
        "w2": Tensor.from_array("w2", w2.astype(np.float32)),
        "h": Tensor("h", (1, w1.shape[0])),
        "y": Tensor("y", (1, w2.shape[0])),
    }
    nodes = [
        Node("fc1", "Gemm", ["x", "w1"], ["h"], {"transB": 1}),
        Node("fc2", "Gemm", ["h", "w2"], ["y"], {"transB": 1}),
    ]
    return Graph("g", nodes, tensors, ["x"], ["y"])


def test_unstructured_keeps_the_largest_magnitudes_exactly():
    w1 = np.arange(1, 21, dtype=np.float32).reshape(4, 5) * np.where(np.arange(20) % 2, -1, 1).reshape(4, 5)
    g = _two_layer(w1, np.ones((3, 4)))
    pruned = prune_unstructured(g, weighted_layers(g)[:1], 0.5)
    mask = pruned.tensors["w1"].mask
    # |w| = 1..20: the ten largest (11..20) survive
    assert np.array_equal(mask.reshape(-1), np.arange(20) >= 10)
    assert np.array_equal(pruned.tensors["w1"].data, np.where(mask, w1, 0))
    assert sparsity_of(pruned.tensors["w1"]) == 0.5
    # the input graph is untouched
    assert g.tensors["w1"].mask is None and g.tensors["w1"].data[0, 0] == 1


def test_ties_at_the_threshold_are_broken_by_position():
    g = _two_layer(np.ones((2, 4)), np.ones((1, 2)))
    mask = prune_unstructured(g, weighted_layers(g)[:1], 0.75).tensors["w1"].mask
    assert mask.reshape(-1).tolist() == [True, True, False, False, False, False, False, False]


def test_global_threshold_spans_layers():
    g = _two_layer(np.full((2, 2), 10.0), np.full((1, 2), 1.0))
    pruned = prune_unstructured(g, weighted_layers(g), 1 / 3, scope="global")
    # six weights, two pruned: both come from fc2 (magnitude 1 < 10)
    assert sparsity_of(pruned.tensors["w1"]) == 0.0
    assert sparsity_of(pruned.tensors["w2"]) == 1.0


def test_pruning_again_keeps_earlier_zeros():
    g = _two_layer(np.arange(1, 9, dtype=np.float32).reshape(2, 4), np.ones((1, 2)))
    once = prune_unstructured(g, weighted_layers(g)[:1], 0.25)
    twice = prune_unstructured(once, weighted_layers(once)[:1], 0.5)
    assert twice.tensors["w1"].mask.reshape(-1).tolist() == [False] * 4 + [True] * 4


def test_n_m_keeps_two_of_every_four_along_the_input():
    w = np.array([[4, 1, 3, 2, 0.5, 0.1, 0.2, 0.3]], dtype=np.float32)
    g = _two_layer(w, np.ones((1, 1)))
    mask = prune_n_m(g, weighted_layers(g)[:1], 2, 4).tensors["w1"].mask
    assert mask.tolist() == [[True, False, True, False, True, False, False, True]]
    assert is_n_m(mask, 1, 2, 4) and not is_n_m(np.ones((1, 8), bool), 1, 2, 4)


def test_n_m_refuses_a_dimension_it_cannot_tile():
    g = _two_layer(np.ones((2, 6)), np.ones((1, 2)))
    with pytest.raises(EdgesimError, match="layer 'fc1': its input dimension \\(6\\) is not a multiple of 4"):
        prune_n_m(g, weighted_layers(g)[:1], 2, 4)


def test_channel_pruning_shrinks_lenet5():
    g = load_model("lenet-5")
    layers = {n.name: n for n in g.order}
    pruned = prune_channels(g, [layers["conv1"], layers["conv2"]], 0.5)
    counts = {layer.name: layer for layer in count(pruned).layers}
    # conv1 keeps 10 of 20 filters; conv2 keeps 25 of 50 and reads 10 channels; ip1 reads 25 * 4 * 4
    assert counts["conv1"].params == 10 * 25 + 10
    assert counts["conv2"].params == 25 * 10 * 25 + 25
    assert counts["ip1"].params == 400 * 500 + 500
    assert counts["conv2"].macs == 8 * 8 * 25 * 10 * 25
    assert pruned.tensors["ip1"].shape == (1, 500)


def test_channel_pruning_keeps_the_largest_l1_filters():
    w1 = np.array([[1, 1], [5, 5], [0.1, 0.1], [3, -3]], dtype=np.float32)  # L1: 2, 10, 0.2, 6
    w2 = np.arange(8, dtype=np.float32).reshape(2, 4)
    g = _two_layer(w1, w2)
    pruned = prune_channels(g, weighted_layers(g)[:1], 0.5)
    fc1 = pruned.order[0]
    fc2 = pruned.order[1]
    assert np.array_equal(pruned.tensors[fc1.inputs[1]].data, w1[[1, 3]])
    assert np.array_equal(pruned.tensors[fc2.inputs[1]].data, w2[:, [1, 3]])
    assert pruned.tensors["h"].shape == (1, 2)


def test_channel_pruning_follows_a_depthwise_conv():
    g = load_model("mobilenet-v1-0.25-vww")
    layers = {n.name: n for n in g.order}
    pruned = prune_channels(g, [layers["conv1"]], 0.25)
    shapes = {n.name: pruned.tensors[n.outputs[0]].shape for n in pruned.order}
    # conv1 has 8 filters; 6 remain, and the depthwise conv after it filters those 6 channels
    assert shapes["conv1"] == (1, 6, 48, 48)
    assert pruned.tensors[pruned.node("block1.depthwise").inputs[1]].shape == (6, 1, 3, 3)
    assert pruned.node("block1.depthwise").attrs["group"] == 6
    assert pruned.tensors[pruned.node("block1.pointwise").inputs[1]].shape[1] == 6


def test_channel_pruning_refuses_a_residual_add():
    g = load_model("resnet-8")
    layer = next(n for n in g.order if n.name == "stage1.block1.conv2")
    with pytest.raises(EdgesimError, match="'stage1.block1.add' \\(Add\\).*cannot follow"):
        prune_channels(g, [layer], 0.5)
