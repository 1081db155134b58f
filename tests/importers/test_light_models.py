"""Real architectures bundled in the onnx wheel (weights are ConstantOfShape fills, folded on import).

Two independent checks per model:
- published counts where the ONNX file matches a published architecture (sources in PUBLISHED), and
- a second implementation: onnx's own C++ shape inference gives every tensor's shape, from which MACs of
  Conv/Gemm and the folded parameter count are computed here without any edgesim code.
"""

from __future__ import annotations

import math

import onnx
import pytest

from simulator.importers.onnx_import import load_onnx
from simulator.summary import count
from tests.helpers import LIGHT_DIR

MODELS = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
]

# ResNet-50: 53 BN layers; their channels (stem 64; per bottleneck width, width, 4*width; plus one
# projection BN of 4*width per stage) are what torchvision counts twice (gamma, beta) and folding counts once.
_RESNET50_BN = 64 + sum(n * (w + w + 4 * w) + 4 * w for n, w in ((3, 64), (4, 128), (6, 256), (3, 512)))
# DenseNet-121: the BNs that directly follow a conv (norm0 after conv0: 64; norm2 after each of the 58 dense
# layers' 1x1 bottleneck convs: 4 * growth 32 = 128) fold into that conv; the others stay standalone.
_DENSENET121_FOLDED_BN = 64 + 58 * 128

# (params, MACs, source); MACs None where the published figure is for a different input size or variant.
PUBLISHED = {
    # torchvision resnet50: 25,557,032 params (BN gamma/beta counted, convs without bias), 4.09 GFLOPS (= MACs)
    "resnet50": (25_557_032 - _RESNET50_BN, 4.09e9, "torchvision ResNet50_Weights.IMAGENET1K_V1"),
    # torchvision vgg19: 143,667,240 params, 19.63 GFLOPS (= MACs)
    "vgg19": (143_667_240, 19.63e9, "torchvision VGG19_Weights.IMAGENET1K_V1"),
    # torchvision squeezenet1_1: 1,235,496 params, 0.35 GFLOPS (= MACs)
    "squeezenet": (1_235_496, 0.35e9, "torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1"),
    # torchvision densenet121: 7,978,856 params, 2.83 GFLOPS (= MACs)
    "densenet121": (7_978_856 - _DENSENET121_FOLDED_BN, 2.83e9, "torchvision DenseNet121_Weights.IMAGENET1K_V1"),
    # Caffe BVLC AlexNet (grouped conv2/4/5): 60,965,224 params; its 724 M MACs are at 227x227, this file is 224
    "bvlc_alexnet": (60_965_224, None, "BVLC Caffe models/bvlc_alexnet deploy.prototxt"),
}


def _independent_counts(path) -> tuple[int, int]:
    """(params, MACs) from onnx's shape inference, folding convention: every Conv/Gemm has one bias per
    output channel (its own, or one folded in from the BN / Mul / Add after it); standalone BNs count 2 per
    channel; a standalone per-channel Mul/Add counts 1 per channel."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path), data_prop=True)
    g = model.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    producer = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    params = macs = 0
    absorbed = set()
    for n in g.node:
        if n.op_type in ("Conv", "Gemm"):
            w = shapes[n.input[1]]
            out = shapes[n.output[0]]
            params += math.prod(w) + (w[0] if n.op_type == "Conv" else out[1])
            if n.op_type == "Conv":
                macs += math.prod(out) * math.prod(w[1:])
            else:
                macs += math.prod(out) * shapes[n.input[0]][1]
            # the chain of per-channel affine ops right after it folds in
            x = n.output[0]
            while len(consumers.get(x, [])) == 1 and consumers[x][0].op_type in ("BatchNormalization", "Mul", "Add"):
                nxt = consumers[x][0]
                absorbed.add(id(nxt))
                x = nxt.output[0]
    for n in g.node:
        if id(n) in absorbed:
            continue
        if n.op_type == "BatchNormalization":
            params += 2 * shapes[n.input[1]][0]
            # a Caffe Scale layer (Mul, Add) after a standalone BN merges into it
            x = n.output[0]
            while len(consumers.get(x, [])) == 1 and consumers[x][0].op_type in ("Mul", "Add"):
                absorbed.add(id(consumers[x][0]))
                x = consumers[x][0].output[0]
        elif n.op_type in ("Mul", "Add") and n.input[1] not in producer:
            params += math.prod(shapes[n.input[1]])
    return params, macs


@pytest.mark.parametrize("name", MODELS)
def test_counts_match_a_second_implementation(name):
    path = LIGHT_DIR / f"light_{name}.onnx"
    counts = count(load_onnx(path))
    params, macs = _independent_counts(path)
    assert counts.params == pytest.approx(params, rel=0.005)
    assert counts.macs == pytest.approx(macs, rel=0.005)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_published_figures(name):
    params, macs, _source = PUBLISHED[name]
    counts = count(load_onnx(LIGHT_DIR / f"light_{name}.onnx"))
    assert counts.params == pytest.approx(params, rel=0.005)
    if macs is not None:
        assert counts.macs == pytest.approx(macs, rel=0.005)


def test_alexnet_224_macs_by_hand():
    # BVLC AlexNet fed 224x224: conv1 11x11/4 -> 54x54; pool 3/2 -> 26; conv2 (2 groups) 26x26; pool -> 12;
    # conv3-5 at 12x12 (conv4, conv5 grouped); final pool pads to 6x6 = 9216 features.
    expected = (
        54 * 54 * 96 * 11 * 11 * 3
        + 26 * 26 * 256 * 5 * 5 * 48
        + 12 * 12 * 384 * 3 * 3 * 256
        + 12 * 12 * 384 * 3 * 3 * 192
        + 12 * 12 * 256 * 3 * 3 * 192
        + 9216 * 4096
        + 4096 * 4096
        + 4096 * 1000
    )
    assert count(load_onnx(LIGHT_DIR / "light_bvlc_alexnet.onnx")).macs == expected


def test_resnet50_exact_folded_params():
    # 25,557,032 (torchvision) - 26,560 BN channels counted twice there, once after folding
    assert _RESNET50_BN == 26_560
    assert count(load_onnx(LIGHT_DIR / "light_resnet50.onnx")).params == 25_530_472
