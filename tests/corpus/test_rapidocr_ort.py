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


@pytest.mark.parametrize("activations", ["QUInt8", "QInt8"])
def test_quantized_detector_equals_onnxruntime(tmp_path, rapidocr_models, activations):
    model = onnx.load(str(rapidocr_models["ch_PP-OCRv4_det_infer"]))
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, _SHAPE, strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = size
    del model.graph.value_info[:]
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
