"""The real-input models of onnx's own backend test data that ship in the onnx wheel (PyTorch-exported
operators and layers, the 'simple' models): edgesim's float execution equals the stored outputs. Models
outside what a cost simulator of inference graphs models (training Gradient, sequence and string ops) and
models whose output shape is a run-time input must be refused with a one-line error that says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from simulator.errors import EdgesimError
from simulator.execute.float_exec import run_graph
from simulator.importers.onnx_import import load_onnx

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CASES = sorted(
    p.parent
    for folder in ("pytorch-operator", "pytorch-converted", "simple")
    for p in (DATA / folder).glob("*/model.onnx")
    if (p.parent / "test_data_set_0").is_dir()
)
#: op types a cost model of inference graphs does not cover: refused by name
NOT_MODELLED = ("Gradient", "Sequence", "SplitToSequence", "ConcatFromSequence", "StringNormalizer", "Shrink")
#: Expand whose target shape is a graph input: the output shape exists only at run time
RUNTIME_SHAPE = ("test_expand_shape_model",)


def _arrays(folder: Path, prefix: str) -> list[np.ndarray]:
    return [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(folder.glob(f"{prefix}_*.pb"))]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_float_execution_equals_the_stored_outputs(case):
    model = onnx.load(case / "model.onnx")
    ops = {n.op_type for n in model.graph.node}
    initializers = {t.name for t in model.graph.initializer}
    names = [vi.name for vi in model.graph.input if vi.name not in initializers]
    inputs = _arrays(case / "test_data_set_0", "input")
    shapes = {name: tuple(a.shape) for name, a in zip(names, inputs, strict=True)}
    if any(op.startswith(NOT_MODELLED) for op in ops) or case.name.startswith(RUNTIME_SHAPE):
        with pytest.raises(EdgesimError, match="does not model|computed at run time|holds strings"):
            load_onnx(case / "model.onnx", shapes)
        return
    graph = load_onnx(case / "model.onnx", shapes)
    got = run_graph(graph, dict(zip(names, inputs, strict=True)))
    for vi, expected in zip(model.graph.output, _arrays(case / "test_data_set_0", "output"), strict=True):
        value = got[vi.name]
        assert value.shape == expected.shape and value.dtype == expected.dtype
        if expected.dtype.kind == "f":
            scale = max(float(np.nanmax(np.abs(expected), initial=0)), 1.0)  # NaN where the stored output has it
            np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5 * scale)
        else:
            np.testing.assert_array_equal(value, expected)


def test_the_wheel_still_ships_the_cases():
    assert len(CASES) >= 100
