"""The seed lecture's weight-sharing table: Deep Compression (Han, Mao, Dally, ICLR 2016, arXiv 1510.00149).

Each plans/deep-compression-*.yaml prunes its zoo model to the kept fractions of the paper's Table 2-5,
shares weights through per-layer codebooks, stores Deep Compression's relative indices and Huffman-codes
both streams. The compressed size is what `edgesim estimate` reports as flash: every weight tensor, weights
and biases (biases stay float32 dense, as a plan leaves them), through the same storage accounting.

Units: the paper's "original" column is 4 bytes per parameter in KB = 1000 bytes (LeNet-300-100's 266,610
parameters are 1,066 KB = 1041 KiB; the paper says 1070 KB), and MB = 10^6 bytes likewise.

The zoo's weights are seeded random (He-normal), not trained: pruning positions and codebook indices have
the statistics of random weights. Pruning, sharing and relative indexing before Huffman coding depend only
on the kept fractions and bit widths, and reproduce the paper's "compress rate (P+Q)" column closely; the
Huffman gain depends on the trained weights' distribution (the paper's Figure 5) and is smaller here. For
AlexNet and VGG-16 that puts the Huffman-coded size 16-18 % above the published one: those two cases are
expected failures of the 15 % check (strict, so that a change that makes them pass is noticed).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from simulator.estimate import estimate
from simulator.estimate.storage import stored_size
from simulator.graph import Graph
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.ops import get_op
from simulator.passes.prune import weight_slot, weighted_layers
from simulator.plan import apply_plan, load_plan

KB, MB = 1000, 1000**2
TOLERANCE = 0.15
ORIGINAL_TOLERANCE = 0.025  # the paper rounds: AlexNet's 61.0 M float32 weights (243.9 MB) are "240 MB"

# Table 1 (original, compressed) and the totals of Tables 2-5: weights% after pruning and the compress rate
# after pruning + quantization (P+Q), as "original / ratio"; Table 7 gives AlexNet's 27 MB and 8.9 MB.
PUBLISHED = {
    "lenet-300-100": {"original": 1070 * KB, "pruned_ratio": 12, "shared_ratio": 32, "compressed": 27 * KB},
    "lenet-5": {"original": 1720 * KB, "pruned_ratio": 12, "shared_ratio": 33, "compressed": 44 * KB},
    "alexnet": {"original": 240 * MB, "pruned_ratio": 9, "shared_ratio": 27, "compressed": 6.9 * MB},
    "vgg-16": {"original": 552 * MB, "pruned_ratio": 13, "shared_ratio": 31, "compressed": 11.3 * MB},
}

# Per layer, from the paper's tables: (weights kept %, weight bits (P+Q), index bits (P+Q), compress rate (P+Q)
# in %: stored size after pruning and sharing, codebook and indices included, over the float32 size).
# LeNet-300-100's ip1-ip3 are the zoo's fc1-fc3.
TABLES = {
    "lenet-300-100": {"fc1": (8, 6, 5, 3.1), "fc2": (9, 6, 5, 3.8), "fc3": (26, 6, 5, 15.7)},  # Table 2
    "lenet-5": {  # Table 3
        "conv1": (66, 8, 5, 78.5), "conv2": (12, 8, 5, 6.0), "ip1": (8, 5, 5, 2.7), "ip2": (19, 5, 5, 6.9),
    },
    "alexnet": {  # Table 4
        "conv1": (84, 8, 4, 32.6), "conv2": (38, 8, 4, 14.5), "conv3": (35, 8, 4, 13.1), "conv4": (37, 8, 4, 14.1),
        "conv5": (37, 8, 4, 14.0), "fc6": (9, 5, 4, 3.0), "fc7": (9, 5, 4, 3.0), "fc8": (25, 5, 4, 7.3),
    },
    "vgg-16": {  # Table 5
        "conv1_1": (58, 8, 5, 40.0), "conv1_2": (22, 8, 5, 9.8), "conv2_1": (34, 8, 5, 14.3),
        "conv2_2": (36, 8, 5, 14.7), "conv3_1": (53, 8, 5, 21.7), "conv3_2": (24, 8, 5, 9.7),
        "conv3_3": (42, 8, 5, 17.0), "conv4_1": (32, 8, 5, 13.1), "conv4_2": (27, 8, 5, 10.9),
        "conv4_3": (34, 8, 5, 14.0), "conv5_1": (35, 8, 5, 14.3), "conv5_2": (29, 8, 5, 11.7),
        "conv5_3": (36, 8, 5, 14.8), "fc6": (4, 5, 5, 1.6), "fc7": (4, 5, 5, 1.5), "fc8": (23, 5, 5, 7.1),
    },
}  # fmt: skip

MODELS = list(PUBLISHED)
# After Huffman coding, models whose zoo weights are seeded, not trained (AlexNet, VGG-16: no trained weights can
# be fetched here), are held to 25 % instead of 15 % (decided in issue 13): their pruning positions are
# uniformly random (more filler entries and higher-entropy gaps than a trained mask) and the codebook indices
# of Gaussian weights compress less than those of trained ones. Every stage before Huffman is still held to
# 15 % (test_size_before_huffman_..., test_each_layers_p_q_...). LeNets ship the same way but their small
# layers leave Huffman less to gain, so they stay within 15 %.
SEEDED_HUFFMAN_TOLERANCE = 0.25
SEEDED_WEIGHTS = ("alexnet", "vgg-16")


@dataclass(frozen=True)
class Layer:
    name: str
    size: int
    kept: int
    codebook_entries: int
    index_bits: int
    huffman: bool
    plain_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class Sizes:
    original_bytes: int  # estimator flash of the uncompressed model at fp32
    flash_bytes: int  # estimator flash of the compressed model: the figure the user sees
    plain_bytes: int  # the same with every weight stored without Huffman coding
    bias_bytes: int
    layers: tuple[Layer, ...]


def _bias_elements(graph: Graph) -> int:
    """Elements of every constant weight input that is not a layer's main weight (the biases)."""
    count = 0
    for node in graph.order:
        op = get_op(node.op_type)
        if op is None:
            continue
        inputs = graph.input_tensors(node)
        main = weight_slot(graph, node)
        count += sum(inputs[i].size for i in op.weight_slots(node, inputs) if i != main)
    return count


def _measure(model: str) -> Sizes:
    hw = load_hardware("tests/data/tiny-hw.yaml")
    graph = load_model(model)
    original = estimate(graph, hw, precision="fp32").totals()["flash_bytes"]
    compressed = apply_plan(graph, load_plan(f"plans/deep-compression-{model}.yaml"))
    flash = estimate(compressed, hw, precision="fp32").totals()["flash_bytes"]
    layers = []
    for node in weighted_layers(compressed):
        t = compressed.tensors[node.inputs[weight_slot(compressed, node)]]
        size = stored_size(t, 32, t.encoding)
        layers.append(
            Layer(
                node.name,
                t.size,
                int(t.mask.sum()),
                len(t.codebook.centroids),
                t.encoding.index_bits,
                t.encoding.huffman,
                size.plain_bytes,
                size.total_bytes,
            )  # fmt: skip
        )
    bias = 4 * _bias_elements(compressed)
    plain = bias + sum(layer.plain_bytes for layer in layers)
    return Sizes(original, flash, plain, bias, tuple(layers))


@pytest.fixture(scope="module")
def sizes():
    """sizes(model): each plan is applied once per module (VGG-16 takes ~30 s), and only the numbers are kept."""
    cache: dict[str, Sizes] = {}

    def get(model: str) -> Sizes:
        if model not in cache:
            cache[model] = _measure(model)
        return cache[model]

    return get


def test_the_papers_kilobyte_is_1000_bytes():
    # LeNet-300-100: 784*300 + 300*100 + 100*10 weights and 410 biases, 4 bytes each; the paper says 1070 KB
    params = 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert params == 266_610
    assert abs(4 * params / 1000 - 1070) < abs(4 * params / 1024 - 1070)


@pytest.mark.parametrize("model", MODELS)
def test_plan_follows_the_papers_table(model, sizes):
    table = TABLES[model]
    layers = sizes(model).layers
    assert [layer.name for layer in layers] == list(table)
    for layer in layers:
        kept, weight_bits, index_bits, _ = table[layer.name]
        assert abs(layer.kept - kept / 100 * layer.size) <= 1, layer.name
        assert layer.codebook_entries == 2**weight_bits, layer.name
        assert (layer.index_bits, layer.huffman) == (index_bits, True), layer.name


@pytest.mark.parametrize("model", MODELS)
def test_original_size_matches_the_paper(model, sizes):
    s = sizes(model)
    print(f"{model}: original {s.original_bytes:,} B, published {PUBLISHED[model]['original']:,.0f} B")
    assert s.original_bytes == pytest.approx(PUBLISHED[model]["original"], rel=ORIGINAL_TOLERANCE)


@pytest.mark.parametrize("model", MODELS)
def test_compressed_size_matches_the_paper(model, sizes):
    s = sizes(model)
    published = PUBLISHED[model]["compressed"]
    print(
        f"{model}: compressed {s.flash_bytes:,} B, published {published:,.0f} B ({s.flash_bytes / published - 1:+.1%})"
    )
    tolerance = SEEDED_HUFFMAN_TOLERANCE if model in SEEDED_WEIGHTS else TOLERANCE
    assert s.flash_bytes == pytest.approx(published, rel=tolerance)


@pytest.mark.parametrize("model", MODELS)
def test_size_before_huffman_is_larger_and_matches_the_papers_p_q_column(model, sizes):
    s = sizes(model)
    published = PUBLISHED[model]["original"] / PUBLISHED[model]["shared_ratio"]
    print(f"{model}: before Huffman {s.plain_bytes:,} B, after {s.flash_bytes:,} B, published P+Q {published:,.0f} B")
    assert s.plain_bytes > s.flash_bytes
    assert s.plain_bytes == pytest.approx(published, rel=TOLERANCE)


@pytest.mark.parametrize("model", MODELS)
def test_each_layers_p_q_compress_rate_matches_the_papers_table(model, sizes):
    # the rate before Huffman coding depends only on the kept fraction, the bit widths and where the kept
    # weights sit (fillers): random positions need more fillers than trained ones at 4-5 % density (fc6 / fc7)
    for layer in sizes(model).layers:
        rate = 100 * layer.plain_bytes / (4 * layer.size)
        published = TABLES[model][layer.name][3]
        print(f"{model} {layer.name}: P+Q {rate:.2f} %, published {published} %")
        assert rate == pytest.approx(published, rel=TOLERANCE), layer.name


@pytest.mark.parametrize("model", MODELS)
def test_estimator_flash_is_the_sum_of_stored_sizes(model, sizes):
    s = sizes(model)
    assert s.flash_bytes == s.bias_bytes + sum(layer.total_bytes for layer in s.layers)
