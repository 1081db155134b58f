"""PP-OCRv4's text detector quantized by onnxruntime's ``quantize_static`` runs in the ort mode bit for bit as
onnxruntime runs it. paddle2onnx writes the Conv biases as Constant nodes, which the quantizer leaves in float32:
onnxruntime quantizes them itself when it loads the model (WeightBiasQuantization), and so must the ort mode (it
used to keep the float biases: 130 of the 9,216 outputs of the first input here were off by one level)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from simulator.execute.ort_exec import run_ort
from simulator.importers.onnx_import import load_onnx
from tests.helpers import quantize_with_onnxruntime

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

_SHAPE = (1, 3, 96, 96)  # a small page keeps calibration and both runs to seconds


def _at_shape(path, shape) -> onnx.ModelProto:
    """The model with its dynamic input bound to ``shape`` (and no stale value_info), for quantize_static."""
    model = onnx.load(str(path))
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, shape, strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = size
    del model.graph.value_info[:]
    return model


@pytest.mark.parametrize("activations", ["QUInt8", "QInt8"])
def test_quantized_detector_equals_onnxruntime(tmp_path, rapidocr_models, activations):
    model = _at_shape(rapidocr_models["ch_PP-OCRv4_det_infer"], _SHAPE)
    path = quantize_with_onnxruntime(model, tmp_path / "det.onnx", "QDQ", activations, count=2)
    quantized = onnx.load(str(path))
    producers = {o: n.op_type for n in quantized.graph.node for o in n.output}
    float_biases = [n for n in quantized.graph.node if n.op_type == "Conv" and producers.get(n.input[-1]) == "Constant"]
    assert len(float_biases) > 40  # the case under test: QDQ Convs whose bias the quantizer left in float
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = load_onnx(path)
    name = graph.inputs[0]
    for seed in range(2):
        feeds = {name: np.random.default_rng(seed).uniform(-1, 1, _SHAPE).astype(np.float32)}
        got, want = run_ort(graph, feeds)[graph.outputs[0]], session.run(None, feeds)[0]
        assert np.array_equal(got, want), f"seed {seed}: {int(np.count_nonzero(got != want))} values differ"


def test_quantized_recognizer_equals_onnxruntime(tmp_path, rapidocr_models):
    """PP-OCRv4's recognizer (SVTR attention: MatMul between activations, Softmax, LayerNorm spelled out), uint8
    activations: bit for bit. (With int8 activations 97 of its 265,000 outputs differ, behind the caveats the run
    prints for float ops it does not reproduce: BatchNormalization, ReduceMean, Pow, Sqrt, HardSigmoid.)"""
    shape = (1, 3, 48, 320)
    model = _at_shape(rapidocr_models["ch_PP-OCRv4_rec_infer"], shape)
    path = quantize_with_onnxruntime(model, tmp_path / "rec.onnx", "QDQ", "QUInt8", count=2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = load_onnx(path)
    feeds = {graph.inputs[0]: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    got, want = run_ort(graph, feeds)[graph.outputs[0]], session.run(None, feeds)[0]
    assert np.array_equal(got, want), f"{int(np.count_nonzero(got != want))} values differ"
