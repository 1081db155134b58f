"""Weight sharing: exact 1-D k-means on tiny inputs, and the codebook the pass stores."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.importers import load_model
from simulator.passes.prune import prune_unstructured, weighted_layers
from simulator.passes.share import kmeans_1d, share_weights


def test_two_clusters_by_hand():
    centroids, index = kmeans_1d(np.array([0.0, 1.0, 9.0, 10.0]), 2)
    assert centroids.tolist() == [0.5, 9.5]
    assert index.tolist() == [0, 0, 1, 1]


def test_linear_init_converges_to_the_cluster_means():
    # linear init at 1 and 12; first assignment {1,2,3} {10,11,12}; means 2 and 11; stable
    centroids, index = kmeans_1d(np.array([1, 2, 3, 10, 11, 12.0]), 2, "linear")
    assert centroids.tolist() == [2.0, 11.0] and index.tolist() == [0, 0, 0, 1, 1, 1]


def test_inits_differ_where_lloyd_has_several_fixed_points():
    values = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 100.0])
    linear, _ = kmeans_1d(values, 2, "linear")
    # linear init (0, 100) separates the outlier: means 6/7 and 100
    assert linear.tolist() == pytest.approx([6 / 7, 100.0])
    density, _ = kmeans_1d(values, 3, "density")
    random, _ = kmeans_1d(values, 3, "random", seed=1)
    assert len(density) == len(random) == 3


def test_random_init_is_seeded():
    values = np.random.default_rng(0).standard_normal(1000)
    a, _ = kmeans_1d(values, 8, "random", seed=3)
    b, _ = kmeans_1d(values, 8, "random", seed=3)
    assert np.array_equal(a, b)


def test_unknown_init():
    with pytest.raises(EdgesimError, match="init must be one of linear, density, random"):
        kmeans_1d(np.zeros(3), 2, "kmeans++")


def test_share_pass_stores_codebook_and_keeps_pruned_zeros():
    g = load_model("lenet-300-100")
    fc1 = weighted_layers(g)[:1]
    pruned = prune_unstructured(g, fc1, 0.9)
    shared = share_weights(pruned, fc1, 4)
    t = shared.tensors["fc1.weight"]
    assert len(t.codebook.centroids) == 16 and t.codebook.index_bits == 4
    assert np.array_equal(t.mask, pruned.tensors["fc1.weight"].mask)
    assert np.all(t.data[~t.mask] == 0)
    kept = t.data[t.mask]
    assert len(np.unique(kept)) <= 16
    assert np.allclose(kept, t.codebook.centroids[t.codebook.indices[t.mask]])
    # each kept weight maps to its nearest centroid
    original = pruned.tensors["fc1.weight"].data[t.mask]
    nearest = np.abs(original[:, None] - t.codebook.centroids[None, :]).argmin(axis=1)
    assert np.array_equal(t.codebook.indices[t.mask], nearest)
