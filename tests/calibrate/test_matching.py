"""Matching a tool's per-layer rows to edgesim's deployed layers: by name, by order and op type, by type."""

from __future__ import annotations

from simulator.calibrate.formats import LayerProfile, LayerTiming
from simulator.calibrate.matching import compatible, match
from simulator.estimate import prepare
from simulator.importers import load_model


def _layers(model: str):
    return [(w.node.name, w.node.op_type, w.counts.op_class) for w in prepare(load_model(model)).work]


def test_tool_op_types():
    assert compatible("CONV_2D", "Conv", "conv") and not compatible("CONV_2D", "Conv", "depthwise")
    assert compatible("DEPTHWISE_CONV_2D", "Conv", "depthwise")
    assert compatible("Conv2D", "Conv", "depthwise")  # X-CUBE-AI reports depthwise convolutions as Conv2D
    assert compatible("FULLY_CONNECTED", "Gemm", "matmul") and compatible("Dense", "MatMul", "matmul")
    assert compatible("ADD", "Add", "elementwise") and not compatible("ADD", "Mul", "elementwise")
    assert not compatible("SOFTMAX", "Conv", "conv")


def test_order_alignment_skips_what_the_tool_does_not_list():
    layers = _layers("ds-cnn")
    rows = [LayerTiming("", t, 1.0) for t in ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED")]
    pairs, how = match(LayerProfile("x", tuple(rows)), layers)
    assert how == "order"
    assert [layers[idx[0]][0] for _, idx in pairs] == ["conv1", "block1.depthwise", "block1.pointwise", "fc"]


def test_fused_names_cover_every_layer_they_name():
    layers = _layers("resnet-18")
    rows = [
        LayerTiming("Reformatting CopyNode for Input Tensor 0 to conv1", "", 0.05),
        LayerTiming("conv1 + relu1", "", 1.0),
        LayerTiming("stage1.block1.conv2 + stage1.block1.add + stage1.block1.relu2", "", 0.7),
        LayerTiming("PWN(maxpool)", "", 0.2),
    ]
    pairs, how = match(LayerProfile("trtexec", tuple(rows)), layers)
    names = {r.name: [layers[i][0] for i in idx] for r, idx in pairs}
    assert how == "name" and len(pairs) == 3
    assert names["stage1.block1.conv2 + stage1.block1.add + stage1.block1.relu2"] == [
        "stage1.block1.conv2",
        "stage1.block1.add",
    ]
    assert names["PWN(maxpool)"] == ["maxpool"]


def test_per_type_rows_claim_every_layer_of_their_type():
    layers = _layers("ds-cnn")
    rows = (LayerTiming("", "CONV_2D", 6.6), LayerTiming("", "DEPTHWISE_CONV_2D", 6.0))
    pairs, how = match(LayerProfile("tflm", rows, by_type=True), layers)
    assert how == "type"
    assert [layers[i][0] for i in pairs[0][1]] == ["conv1"] + [f"block{k}.pointwise" for k in range(1, 5)]
    assert [layers[i][0] for i in pairs[1][1]] == [f"block{k}.depthwise" for k in range(1, 5)]
