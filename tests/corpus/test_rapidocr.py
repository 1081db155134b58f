"""PP-OCRv4 det / rec and the PP-OCR direction classifier, as the rapidocr-onnxruntime wheel ships them:
edgesim's MACs equal an independent counter's on every Conv / ConvTranspose / MatMul / Gemm, its float
execution equals onnxruntime's within 1e-4 of the output's scale, and `estimate` runs from the CLI on every
shipped profile without --allow-unknown."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import onnx
import onnxruntime
import pytest

from simulator.cli import main
from simulator.execute.float_exec import run_graph
from simulator.hardware import load_hardware, profile_names
from simulator.importers.onnx_import import load_onnx
from simulator.passes.deploy import for_deployment
from simulator.summary import count
from tests.corpus.conftest import RAPIDOCR_MODELS
from tests.corpus.mac_counter import reduction_macs

MODELS = list(RAPIDOCR_MODELS)
REDUCTIONS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _feed(stem: str, seed: int = 2024) -> np.ndarray:
    """A synthetic page the models respond to (on noise the detector's output stays near 0 everywhere): white
    with dark text-like strokes in lines plus a little noise, normalised as PP-OCR's preprocessing leaves an
    image ((pixel / 255 - 0.5) / 0.5, in [-1, 1])."""
    rng = np.random.default_rng(seed)
    n, c, h, w = RAPIDOCR_MODELS[stem]
    page = np.ones((h, w), np.float32)
    line = max(h // 12, 4)
    for top in range(line // 2, h - line, 2 * line):
        x = int(rng.integers(0, w // 8))
        while x < w - 4:
            width = int(rng.integers(2, max(3, line // 2)))
            page[top + int(rng.integers(0, line // 4)) : top + line, x : x + width] = rng.uniform(-1, -0.6)
            x += width + int(rng.integers(1, line))
    noisy = page[None, None] + rng.normal(0, 0.05, (n, c, h, w))
    return np.clip(noisy, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def graphs(rapidocr_models):
    return {stem: load_onnx(path, {"x": RAPIDOCR_MODELS[stem]}) for stem, path in rapidocr_models.items()}


@pytest.mark.parametrize("stem", MODELS)
def test_macs_equal_an_independent_counter(stem, rapidocr_models, graphs):
    expected = reduction_macs(onnx.load(rapidocr_models[stem]), {"x": _feed(stem)})
    got = {layer.name: layer.macs for layer in count(graphs[stem]).layers if layer.op in REDUCTIONS}
    assert got == expected


def test_detector_macs_match_the_published_figure(graphs):
    # PP-OCRv4 mobile det: ~2.3 G MACs on a 640 x 640 input, as the reporter measured
    assert round(count(graphs["ch_PP-OCRv4_det_infer"]).macs / 1e9, 1) == 2.3


def test_recognizer_attention_and_layer_norm(graphs):
    """SVTR's attention blocks: Q.K^T and A.V are activation products (MACs, no weights, the attention
    class), and each spelled-out LayerNorm becomes one LayerNormalization in the deployed graph."""
    graph = graphs["ch_PP-OCRv4_rec_infer"]
    attention = [layer for layer in count(graph).layers if layer.op_class == "attention"]
    # 2 blocks x (Q.K^T + A.V), 8 heads of 15 over 40 positions: 8 * 40 * 40 * 15 each
    assert [layer.macs for layer in attention] == [8 * 40 * 40 * 15] * 4
    assert all(layer.weights == [] and layer.params == 0 for layer in attention)
    deployed = for_deployment(graph)
    ops = [n.op_type for n in deployed.order]
    assert ops.count("LayerNormalization") == 5 and "Pow" not in ops and "Sqrt" not in ops
    x = {"x": _feed("ch_PP-OCRv4_rec_infer")}
    [plain], [fused] = run_graph(graph, x).values(), run_graph(deployed, x).values()
    np.testing.assert_allclose(fused, plain, rtol=0, atol=1e-5)


@pytest.mark.parametrize("stem", MODELS)
def test_float_execution_equals_onnxruntime(stem, rapidocr_models, graphs):
    x = _feed(stem)
    session = onnxruntime.InferenceSession(str(rapidocr_models[stem]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})
    got = run_graph(graphs[stem], {"x": x})
    assert list(got) == [o.name for o in session.get_outputs()]
    for value, reference in zip(got.values(), expected, strict=True):
        assert value.shape == reference.shape and value.dtype == reference.dtype
        scale = float(np.abs(reference).max())
        assert scale > 0.5  # the page lights the models up: text found, characters scored, a direction chosen
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("stem", MODELS)
def test_estimate_runs_on_every_profile(stem, rapidocr_models, graphs, capsys):
    shape = ",".join(map(str, RAPIDOCR_MODELS[stem]))
    macs = count(graphs[stem]).macs
    for profile in profile_names():
        # the default stack at its first precision (int8 on the microcontroller stacks, as deployed there)
        precision = load_hardware(profile).stack.precisions[0]
        code = main(["estimate", str(rapidocr_models[stem]), "--hw", profile, "--input-shape", f"x={shape}",
                     "--precision", precision, "--format", "json"])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, (profile, err)
        assert "warning" not in err, (profile, err)
        result = json.loads(out)
        assert result["totals"]["macs"] == macs
        assert result["totals"]["energy_uj"] > 0, profile
        latency = result["totals"]["latency_ms"]
        assert latency is None or latency > 0, profile


@pytest.mark.parametrize("stem", MODELS)
def test_macs_equal_onnx_tool(stem, rapidocr_models, graphs):
    """onnx-tool (PyPI) as a third counter on Conv / MatMul / Gemm. Its convention adds one MAC per output
    element for a bias input, so that is taken off; its ConvTranspose counts per output element over the
    weight's (Cout, kh, kw), not what a transposed convolution multiplies, so ConvTranspose is left to the
    counter above."""
    onnx_tool = pytest.importorskip("onnx_tool")
    with contextlib.redirect_stdout(io.StringIO()):  # onnx-tool prints its progress
        model = onnx_tool.Model(str(rapidocr_models[stem]))
        model.graph.shape_infer({"x": _feed(stem)})
        model.graph.profile()
    original = {n.name: n for n in onnx.load(rapidocr_models[stem]).graph.node}
    ours = {layer.name: layer.macs for layer in count(graphs[stem]).layers}
    checked = 0
    for name, node in model.graph.nodemap.items():
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        has_bias = len([i for i in original[name].input if i]) > 2
        outputs = math.prod(model.graph.tensormap[node.output[0]].get_shape())
        assert int(node.macs[0]) - (outputs if has_bias else 0) == ours[name], name
        checked += 1
    assert checked == sum(1 for n in original.values() if n.op_type in ("Conv", "MatMul", "Gemm"))
