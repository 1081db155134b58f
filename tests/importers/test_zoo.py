"""The built-in model zoo (models/*.yaml) against published parameter and MAC counts.

Conventions (see /work/shared/reference/model-counts.md):

* MAC = one multiply-accumulate of a Conv / Gemm / MatMul; pooling, activations and adds count none.
* params = edgesim's convention, batch norm folded: every weight plus one bias per conv / dense output channel.
  torchvision instead counts BN gamma and beta (2 per BN channel) and its BN-followed convs have no bias;
  folding turns each BN channel's 2 parameters into 1 bias, so params_folded = params_torchvision - bn_channels.

Every expected figure is also derived by hand below from the published architecture (layer lists of
``conv(...)`` / ``dense(...)`` terms with the spatial sizes written out), independently of edgesim's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from simulator.importers import load_model
from simulator.importers.yamlspec import read_spec
from simulator.importers.zoo import zoo_entries, zoo_names, zoo_path
from simulator.summary import count

Term = tuple[int, int]  # (params, MACs) of one layer


def conv(cin: int, cout: int, k: int | tuple[int, int], hw: int | tuple[int, int], groups: int = 1) -> Term:
    """A conv with bias (or with a folded BN) producing an ``hw`` output: k*k*cin/groups*cout weights, each
    used once per output pixel."""
    kh, kw = (k, k) if isinstance(k, int) else k
    h, w = (hw, hw) if isinstance(hw, int) else hw
    weights = cout * (cin // groups) * kh * kw
    return weights + cout, weights * h * w


def dw(channels: int, k: int, hw: int | tuple[int, int]) -> Term:
    """A depthwise conv (one k x k filter per channel) with bias."""
    return conv(channels, channels, k, hw, groups=channels)


def dense(fin: int, fout: int) -> Term:
    """A fully connected layer with bias (or a folded BN)."""
    return fin * fout + fout, fin * fout


# ---- hand derivations, from each model's published architecture ---------------------------------------------


def lenet_5() -> list[Term]:
    # 28 -conv5-> 24 -pool2-> 12 -conv5-> 8 -pool2-> 4; 50 * 4 * 4 = 800 features
    return [conv(1, 20, 5, 24), conv(20, 50, 5, 8), dense(800, 500), dense(500, 10)]


def lenet_300_100() -> list[Term]:
    return [dense(784, 300), dense(300, 100), dense(100, 10)]


def digits_mlp() -> list[Term]:
    return [dense(64, 300), dense(300, 100), dense(100, 10)]


def digits_cnn() -> list[Term]:
    # 3x3 pad 1 convs keep the size: 8x8, pool to 4x4, conv, pool to 2x2; 32 * 2 * 2 = 128 features
    return [conv(1, 16, 3, 8), conv(16, 32, 3, 4), dense(32 * 2 * 2, 10)]


def cmsis_cifar10() -> list[Term]:
    # 5x5 convs with pad 2 keep the size; Caffe's 3/2 pooling rounds up: ceil((32 - 3) / 2) + 1 = 16, then 8, 4
    return [conv(3, 32, 5, 32), conv(32, 32, 5, 16), conv(32, 64, 5, 8), dense(64 * 4 * 4, 10)]


def resnet_8() -> list[Term]:
    # stem and stack 1 at 32x32, stack 2 at 16x16, stack 3 at 8x8; the 1x1 shortcut convs have a bias
    return [
        conv(3, 16, 3, 32),
        conv(16, 16, 3, 32), conv(16, 16, 3, 32),
        conv(16, 32, 3, 16), conv(32, 32, 3, 16), conv(16, 32, 1, 16),
        conv(32, 64, 3, 8), conv(64, 64, 3, 8), conv(32, 64, 1, 8),
        dense(64, 10),
    ]  # fmt: skip


def ds_cnn() -> list[Term]:
    # 'same' stride 2 on 49x10: ceil(49 / 2) x ceil(10 / 2) = 25 x 5
    blocks = [dw(64, 3, (25, 5)), conv(64, 64, 1, (25, 5))] * 4
    return [conv(1, 64, (10, 4), (25, 5)), *blocks, dense(64, 12)]


def fc_autoencoder() -> list[Term]:
    return [
        dense(640, 128), dense(128, 128), dense(128, 128), dense(128, 128), dense(128, 8),
        dense(8, 128), dense(128, 128), dense(128, 128), dense(128, 128), dense(128, 640),
    ]  # fmt: skip


# MobileNetV1 body, Howard et al. Table 1: (pointwise output channels, depthwise stride) of the 13 blocks
MOBILENET_V1_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)


def mobilenet_v1(alpha: float, resolution: int, classes: int) -> list[Term]:
    channels, hw = int(32 * alpha), resolution // 2  # the stride-2 stem conv
    terms = [conv(3, channels, 3, hw)]
    for cout, stride in MOBILENET_V1_BLOCKS:
        hw //= stride  # all sizes here divide evenly, so 'same' padding gives in / stride
        terms += [dw(channels, 3, hw), conv(channels, int(cout * alpha), 1, hw)]
        channels = int(cout * alpha)
    return [*terms, dense(channels, classes)]


# MobileNetV2, Sandler et al. Table 2: expansion t, output channels c, repeats n, first stride s
MOBILENET_V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                         (6, 320, 1, 1)]  # fmt: skip


def mobilenet_v2() -> tuple[list[Term], int]:
    """Layer terms, and the number of BN channels (one BN after every conv)."""
    terms, bn = [conv(3, 32, 3, 112)], 32
    cin, hw = 32, 112
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            hidden = cin * t
            if t != 1:
                terms.append(conv(cin, hidden, 1, hw))  # expand
                bn += hidden
            hw //= s if i == 0 else 1
            terms += [dw(hidden, 3, hw), conv(hidden, c, 1, hw)]  # depthwise, project
            bn += hidden + c
            cin = c
    terms += [conv(320, 1280, 1, 7), dense(1280, 1000)]
    return terms, bn + 1280


def squeezenet_1_1() -> list[Term]:
    # conv1 3x3/2 unpadded: (224 - 3) // 2 + 1 = 111; ceil-mode max pools 3/2: 111 -> 55 -> 27 -> 13
    # fire(squeeze s, expands e): 1x1 cin -> s, then 1x1 s -> e and 3x3 (pad 1) s -> e, concatenated to 2e
    def fire(cin: int, s: int, e: int, hw: int) -> list[Term]:
        return [conv(cin, s, 1, hw), conv(s, e, 1, hw), conv(s, e, 3, hw)]

    return [
        conv(3, 64, 3, 111),
        *fire(64, 16, 64, 55), *fire(128, 16, 64, 55),
        *fire(128, 32, 128, 27), *fire(256, 32, 128, 27),
        *fire(256, 48, 192, 13), *fire(384, 48, 192, 13), *fire(384, 64, 256, 13), *fire(512, 64, 256, 13),
        conv(512, 1000, 1, 13),
    ]  # fmt: skip


def resnet_18() -> tuple[list[Term], int]:
    """Layer terms, and the number of BN channels (bn1, two per basic block, one per downsample)."""
    terms, bn = [conv(3, 64, 7, 112)], 64  # conv1 7x7/2 pad 3: 224 -> 112; maxpool 3/2 pad 1: -> 56
    cin, hw = 64, 56
    for stage, c in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            hw //= stride
            terms += [conv(cin, c, 3, hw), conv(c, c, 3, hw)]
            bn += 2 * c
            if stride == 2:
                terms.append(conv(cin, c, 1, hw))  # downsample
                bn += c
            cin = c
    return [*terms, dense(512, 1000)], bn


def alexnet() -> list[Term]:
    # conv1 11x11/4 pad 2: (224 + 4 - 11) // 4 + 1 = 55; maxpool 3/2: 27; conv2 keeps 27; maxpool: 13; conv3-5
    # keep 13; maxpool: 6, so 256 * 6 * 6 = 9216 features
    return [
        conv(3, 64, 11, 55), conv(64, 192, 5, 27), conv(192, 384, 3, 13), conv(384, 256, 3, 13), conv(256, 256, 3, 13),
        dense(9216, 4096), dense(4096, 4096), dense(4096, 1000),
    ]  # fmt: skip


def vgg_16() -> list[Term]:
    # Simonyan and Zisserman Table 1, config D; 3x3 pad 1 convs keep the size, each 2x2 max pool halves it
    terms, cin, hw = [], 3, 224
    for block in [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]:
        for c in block:
            terms.append(conv(cin, c, 3, hw))
            cin = c
        hw //= 2
    return [*terms, dense(512 * 7 * 7, 4096), dense(4096, 4096), dense(4096, 1000)]


# ---- the published figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    source: str
    params: int  # exactly as published, in the convention below
    macs: int | str  # exact, or a rounded figure like "0.30 G"
    derive: Callable[[], list[Term] | tuple[list[Term], int]]
    torchvision: bool = False  # params count BN gamma/beta and no conv bias: folded = params - BN channels

    def hand(self) -> tuple[list[Term], int]:
        """The hand-derived layer terms and BN channel count (0 if the figure is already BN-free / folded)."""
        derived = self.derive()
        return derived if isinstance(derived, tuple) else (derived, 0)

    def folded_params(self) -> int:
        _, bn_channels = self.hand()
        return self.params - bn_channels if self.torchvision else self.params


MLPERF_TINY = "mlcommons/tiny reference model"
PUBLISHED: dict[str, Published] = {
    "lenet-5": Published("Caffe examples/mnist lenet; Han et al., Deep Compression, Table 2", 431_080, "2.29 M",
                         lenet_5),
    "lenet-300-100": Published("784-300-100-10 dense; Han et al., Deep Compression, Table 1", 266_610, 266_200,
                               lenet_300_100),
    "digits-mlp": Published("trained here by scripts/train_digits.py: 64-300-100-10 dense", 50_610, 50_200,
                            digits_mlp),
    "digits-cnn": Published("trained here by scripts/train_digits.py: conv 16, conv 32, dense 10", 6_090, 84_224,
                            digits_cnn),
    "cmsis-cifar10": Published("ARM-software/ML-examples cmsisnn-cifar10 (cifar10_m7 prototxt, parameter.h)",
                               89_578, 12_298_240, cmsis_cifar10),
    "resnet-8": Published(f"{MLPERF_TINY} pretrainedResnet_quant.tflite (BN folded)", 77_706, 12_501_632,
                          resnet_8),
    "ds-cnn": Published(f"{MLPERF_TINY} kws_ref_model.tflite (BN folded)", 22_604, 2_656_768, ds_cnn),
    "mobilenet-v1-0.25-vww": Published(f"{MLPERF_TINY} vww_96_int8.tflite (BN folded)", 210_850, 7_489_664,
                                       lambda: mobilenet_v1(0.25, 96, 2)),
    "fc-autoencoder": Published(f"{MLPERF_TINY} ad01_int8.tflite (BN folded)", 265_864, 264_192, fc_autoencoder),
    "mobilenet-v2": Published("torchvision model page, mobilenet_v2 (IMAGENET1K_V1)", 3_504_872, "0.30 G",
                              mobilenet_v2, torchvision=True),
    "resnet-18": Published("torchvision model page, resnet18 (IMAGENET1K_V1)", 11_689_512, "1.81 G", resnet_18,
                           torchvision=True),
    "alexnet": Published("torchvision model page, alexnet (IMAGENET1K_V1)", 61_100_840, "0.71 G", alexnet),
    # no batch norm, biases everywhere: torchvision's count is already edgesim's
    "squeezenet-1.1": Published("torchvision model page, squeezenet1_1 (IMAGENET1K_V1)", 1_235_496, "0.35 G",
                                squeezenet_1_1),
    "vgg-16": Published("torchvision model page, vgg16 (IMAGENET1K_V1)", 138_357_544, "15.47 G", vgg_16),
}  # fmt: skip

# The exact MACs behind each rounded published figure, as the hand derivations above give them (written out so
# that a change to a derivation shows up as a diff here).
EXACT_MACS = {
    "lenet-5": 2_293_000,  # 20*25*24*24 + 50*20*25*8*8 + 800*500 + 500*10
    "mobilenet-v2": 300_774_272,
    "resnet-18": 1_814_073_344,
    "alexnet": 714_188_480,
    "squeezenet-1.1": 349_151_936,
    "vgg-16": 15_470_264_320,
}
# The folded parameter counts of the torchvision models: published - BN channels
EXACT_FOLDED_PARAMS = {
    "mobilenet-v2": 3_504_872 - 17_056,
    "resnet-18": 11_689_512 - 4_800,  # BN channels: 64 + 2 * 2 * (64 + 128 + 256 + 512) + (128 + 256 + 512)
}

UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}


def rounds_to(value: int, figure: str) -> bool:
    """Whether ``value`` rounds to a published figure like "0.30 G" (to the decimals it is given with)."""
    number, unit = figure.split()
    decimals = len(number.partition(".")[2])
    return round(value / UNITS[unit], decimals) == float(number)


def load(name: str):
    # by path: load_model(name) does not resolve a zoo name containing a dot (see test_load_by_zoo_name)
    return load_model(name)


# ---- tests --------------------------------------------------------------------------------------------------


def test_every_zoo_model_is_in_the_table():
    assert set(zoo_names()) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_hand_derivation_matches_published(name):
    """The hand derivation reproduces the published figures (this needs no edgesim code)."""
    published = PUBLISHED[name]
    terms, _ = published.hand()
    params, macs = sum(p for p, _ in terms), sum(m for _, m in terms)
    assert params == published.folded_params()
    if name in EXACT_FOLDED_PARAMS:
        assert params == EXACT_FOLDED_PARAMS[name]
    if isinstance(published.macs, int):
        assert macs == published.macs
    else:
        assert rounds_to(macs, published.macs), (macs, published.macs)
        assert macs == EXACT_MACS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_edgesim_counts_match_published(name):
    published = PUBLISHED[name]
    counts = count(load(name))
    assert counts.params == published.folded_params()
    exact_macs = published.macs if isinstance(published.macs, int) else EXACT_MACS[name]
    assert counts.macs == exact_macs
    if isinstance(published.macs, str):
        assert rounds_to(counts.macs, published.macs)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_per_layer_counts_match_hand_derivation(name):
    """Layer by layer, in order, the weighted layers match the hand derivation's terms."""
    terms, _ = PUBLISHED[name].hand()
    layers = [(layer.params, layer.macs) for layer in count(load(name)).layers if layer.params]
    assert layers == terms


def test_mobilenet_v2_cross_checks():
    # TF-slim's mobilenet_v1/v2 tables: MobileNetV2 1.0/224 has 300 M MACs (exact: 300.77 M) and 3.47 M
    # parameters, which is the count without BN and without conv biases: folded - BN channels
    terms, bn_channels = mobilenet_v2()
    assert abs(sum(m for _, m in terms) - 300e6) / 300e6 < 0.003
    assert round((sum(p for p, _ in terms) - bn_channels) / 1e6, 2) == 3.47


def test_mobilenet_v1_derivation_reproduces_tf_slim():
    # the helper behind mobilenet-v1-0.25-vww gives TF-slim's 569 M MACs for MobileNetV1 1.0 at 224 (1001 classes)
    assert round(sum(m for _, m in mobilenet_v1(1.0, 224, 1001)) / 1e6) == 569


def test_torchvision_bn_channels():
    # independent tallies of the published channel lists
    assert mobilenet_v2()[1] == 17_056
    assert resnet_18()[1] == 4_800


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_weights_are_deterministic(name):
    first, second = load(name), load(name)
    node = next(n for n in first.order if n.op_type in ("Conv", "Gemm"))  # only the first layer is materialised
    w1, w2 = first.tensors[node.inputs[1]].data, second.tensors[node.inputs[1]].data
    assert w1.shape == tuple(first.tensors[node.inputs[1]].shape)
    assert np.array_equal(w1, w2)
    assert np.all(np.isfinite(w1)) and np.std(w1) > 0


def test_seeds_differ_between_models():
    specs = {name: read_spec(zoo_path(name)) for name in zoo_names()}
    seeds = {name: spec["seed"] for name, spec in specs.items() if "weights" not in spec}  # trained: no seed
    assert len(set(seeds.values())) == len(seeds), seeds


def test_every_layer_is_named():
    """Plans select layers by name, so no spec relies on the generated names."""
    for name in zoo_names():
        for layer in read_spec(zoo_path(name))["layers"]:
            assert "name" in layer, (name, layer)


def test_zoo_entries_describe_every_model():
    entries = {entry.name: entry for entry in zoo_entries()}
    assert set(entries) == set(PUBLISHED)
    for name, entry in entries.items():
        spec = read_spec(entry.path)
        assert spec["name"] == name
        assert entry.description and entry.description == spec["description"]
        assert entry.source and entry.source == spec["source"]
        assert entry.input_shape == tuple(spec["inputs"][0]["shape"])
        assert entry.input_shape[0] == 1  # batch size 1


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_load_by_zoo_name(name):
    assert load_model(name).name == name
