"""TensorFlow Lite Micro as a peer: edgesim's ``tflm`` mode on an imported .tflite must produce, bit for
bit, the output of the tflite-micro interpreter (the ``tflite-micro`` package on PyPI, which runs the
TFLM reference kernels in Python): int8 models, 16x8 models (``a16w8_*``: int16 activations, int64 biases),
int4-weight models (``w4_*``: INT4 weights packed two per byte) and float-IO models (``float_io_*``: float32
in, QUANTIZE, int8 layers, DEQUANTIZE, float32 out, compared as exact float32 equality).

The fixtures (tests/data/tflite/, built once by scripts/make_tflite_fixtures.py with TensorFlow's converter)
carry a seeded int8 input and the output tflite-micro gave on it when they were built. Every fixture is
compared with that stored output; when tflite-micro is installed (wheels exist for CPython on x86-64 Linux)
it is also run live, so a newer TFLM release is checked as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite")

from simulator.errors import EdgesimError  # noqa: E402
from simulator.execute.int_exec import run_tflm  # noqa: E402
from simulator.importers import load_model  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"
FIXTURES = sorted(p.stem for p in DATA.glob("*.tflite") if not p.stem.startswith("unsupported"))


def _integer_input(data) -> np.ndarray:
    """The fixture's fed input: ``input_int8``, ``input_int16`` for a 16x8 model, ``input_float32`` for a
    float-IO model (floats with quantization ties and far out-of-range values)."""
    for key in ("input_int16", "input_float32"):
        if key in data:
            return data[key]
    return data["input_int8"]


def _edgesim(name: str, x_nhwc: np.ndarray) -> np.ndarray:
    graph = load_model(str(DATA / f"{name}.tflite"))
    (inp,) = graph.inputs
    perm = graph.metadata["tflite_layout"]["inputs"][inp]
    values, _ = run_tflm(graph, {inp: x_nhwc.transpose(perm)})
    (out,) = graph.outputs
    y = values[out]
    assert y.dtype == x_nhwc.dtype
    back = np.argsort(graph.metadata["tflite_layout"]["outputs"][out])  # edgesim layout -> TFLite layout
    return y.transpose(back)


def test_fixtures_are_present():
    assert len(FIXTURES) >= 8, FIXTURES
    assert len([n for n in FIXTURES if n.startswith("a16w8_")]) >= 8, FIXTURES
    assert len([n for n in FIXTURES if n.startswith("w4_")]) >= 4, FIXTURES
    assert len([n for n in FIXTURES if n.startswith("float_io_")]) >= 2, FIXTURES
    assert "a16w8_float_io_cnn" in FIXTURES and "a16w8_concat" in FIXTURES  # QUANTIZE to / between int16


@pytest.mark.parametrize("scheme", ["int8", "a16w8"])
def test_fixtures_cover_every_op_in_both_schemes(scheme):
    """Each graph op of the tflm mode that a converted model can hold is in some int8 fixture and some 16x8 one
    (TFLM has no int16 PADV2: a Pad with a value, like the int8 ``padv2``, exists in int8 only)."""
    names = [n for n in FIXTURES if n.startswith("a16w8_") == (scheme == "a16w8") and not n.startswith("w4_")]
    graphs = [load_model(str(DATA / f"{n}.tflite")) for n in names]
    ops = {node.op_type for g in graphs for node in g.order}
    wanted = {"Conv", "Gemm", "MaxPool", "AveragePool", "Add", "Mul", "Pad", "Concat", "Relu", "Clip", "Softmax"}
    wanted |= {"ReduceMean", "Reshape", "QuantizeLinear", "DequantizeLinear"}
    wanted |= {"Tanh", "MatMul", "ConvTranspose"}  # TANH, BATCH_MATMUL between activations, TRANSPOSE_CONV
    if scheme == "int8":  # PRELU and the byte copies (STRIDED_SLICE, GATHER, SPLIT / UNPACK) are int8 fixtures
        wanted |= {"PRelu", "Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Transpose"}
    assert wanted <= ops, wanted - ops
    constant_mul = [
        n for g in graphs for n in g.order if n.op_type == "Mul" and any(g.tensors[i].constant for i in n.inputs)
    ]
    assert constant_mul, "no MUL by a constant"


@pytest.mark.parametrize("name", FIXTURES)
def test_bit_exact_with_stored_tflm_output(name):
    data = np.load(DATA / f"{name}_input.npz")
    y = _edgesim(name, _integer_input(data))
    assert y.shape == data["tflm_output"].shape
    assert np.array_equal(y, data["tflm_output"])


TFLM_ARENA_BYTES = 8 << 20


@pytest.mark.parametrize("name", FIXTURES)
def test_bit_exact_with_live_tflite_micro(name):
    runtime = pytest.importorskip("tflite_micro").runtime
    x = _integer_input(np.load(DATA / f"{name}_input.npz"))
    # an arena as large as the whole-network fixture needs (tflite-micro aborts the process when it is short)
    interpreter = runtime.Interpreter.from_file(str(DATA / f"{name}.tflite"), arena_size=TFLM_ARENA_BYTES)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    expected = np.asarray(interpreter.get_output(0))
    assert np.array_equal(_edgesim(name, x), expected)


def test_float_feeds_quantize_like_tflite():
    """A float NCHW feed is quantized with the input's parameters (round half away from zero), so it gives the
    same result as the int8 feed the fixture script made with the same parameters."""
    data = np.load(DATA / "conv_input.npz")
    graph = load_model(str(DATA / "conv.tflite"))
    (inp,), (out,) = graph.inputs, graph.outputs
    q = graph.tensors[inp].quant
    # the script rounded half to even (np.round); only compare when no value sits on a tie
    scaled = data["input"].astype(np.float64) / float(q.scale)
    if np.any(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9):
        pytest.skip("the seeded input has a rounding tie")
    from_float, _ = run_tflm(graph, {inp: data["input"].transpose(0, 3, 1, 2)})
    assert np.array_equal(from_float[out].transpose(0, 2, 3, 1), data["tflm_output"])


@pytest.mark.parametrize("name", ["logistic_levels", "hard_swish_levels"])
def test_levels_fixtures_reach_every_int8_level_of_the_activation(name):
    """The ``_levels`` fixtures feed each int8 level once through a 1x1 conv of constant weight: the activation
    (LOGISTIC / HARD_SWISH, an elementwise map of its int8 input) then sees all 256 levels of its input grid,
    so their bit-exact comparison above covers the kernel's whole domain for that grid, saturation included."""
    data = np.load(DATA / f"{name}_input.npz")
    graph = load_model(str(DATA / f"{name}.tflite"))
    (inp,) = graph.inputs
    values, _ = run_tflm(graph, {inp: data["input_int8"].transpose(0, 3, 1, 2)}, keep=True)
    (activation,) = [n for n in graph.order if n.op_type in ("Sigmoid", "HardSwish")]
    assert np.array_equal(np.unique(values[activation.inputs[0]]), np.arange(-128, 128))


def _quantize_fixture():
    """float_io_quantize_ties: QUANTIZE -> 1x1 MAX_POOL (passes int8 through) -> DEQUANTIZE, so TFLM's output
    shows what its QUANTIZE made of each float input: (level - zp) * scale in float32, one float per level."""
    graph = load_model(str(DATA / "float_io_quantize_ties.tflite"))
    data = np.load(DATA / "float_io_quantize_ties_input.npz")
    q = graph.tensors[graph.order[0].outputs[0]].quant
    levels = np.rint(data["tflm_output"].astype(np.float64) / float(q.scale)) + int(q.zero_point)
    return graph, data["input_float32"], q, levels


def test_quantize_fixture_holds_ties_and_saturation():
    """The float_io inputs exercise what they claim: float32 quotients exactly on a half step, and values that
    saturate at both ends of int8."""
    _, x, q, levels = _quantize_fixture()
    quotient = x / np.float32(q.scale)
    assert np.count_nonzero(quotient - np.floor(quotient) == 0.5) >= 40
    assert np.count_nonzero(levels == 127) >= 5 and np.count_nonzero(levels == -128) >= 5


def test_quantize_divides_in_float32_as_tflm_does():
    """TFLM's AffineQuantize divides a float32 input by the float32 scale in float32, then rounds half away
    from zero. Dividing in float64 instead (edgesim's graph-input quantization before) rounds some of these
    inputs to another level: the fixture holds such inputs, and edgesim's quantization matches TFLM on all."""
    from simulator.execute.int_exec import quantize_input

    _, x, q, levels = _quantize_fixture()
    quotient64 = x.astype(np.float64) / float(q.scale)
    in_float64 = np.clip(np.copysign(np.floor(np.abs(quotient64) + 0.5), quotient64) + int(q.zero_point), -128, 127)
    assert np.count_nonzero(in_float64 != levels) >= 10  # float64 division would not be bit-exact here
    assert np.array_equal(quantize_input(x, q), levels.astype(np.int8))


def test_float_io_feeds_and_outputs_are_float32():
    graph, x, _, _ = _quantize_fixture()
    (inp,), (out,) = graph.inputs, graph.outputs
    values, quant = run_tflm(graph, {inp: x.transpose(0, 3, 1, 2)})
    assert values[out].dtype == np.float32 and out not in quant
    with pytest.raises(EdgesimError, match="float32"):
        run_tflm(graph, {inp: np.zeros(x.shape, np.int8).transpose(0, 3, 1, 2)})
