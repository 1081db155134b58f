"""silero-vad, every .onnx its wheel ships, as a user meets it: STFT as a Conv1D, Pow / Sqrt magnitude, an If
on the sample rate (nested Ifs on input sizes in the torch.onnx exports), and an LSTM (or its cell spelled
out in Gemm / Split / Sigmoid / Tanh in the op18 export).

The wheel is fetched with ``pip download --no-deps`` (silero-vad depends on torch; edgesim needs only its
.onnx files) into a cache directory; without the registry the tests skip with the reason. Peers:
- float outputs: onnxruntime on the same feeds, for each sample rate a model takes;
- MACs: a second counter that uses no edgesim code: it inlines each If with the branch onnxruntime itself
  evaluates the condition to, then reads the shapes of every Conv / Gemm / MatMul / LSTM operand from an
  onnxruntime run of the flattened model;
- estimate: the CLI on cortex-m7 (int8 on its default CMSIS-NN stack, fp32 on tflm-portable), jetson-nano and
  raspberry-pi-4, without --allow-unknown.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper

from simulator.cli import main
from simulator.execute.float_exec import run_graph
from simulator.importers import load_model

#: the wheel tested (pinned, so a new release is a deliberate change); its 6 .onnx files are all tested
WHEEL = "silero-vad==6.2.3"
#: samples per call: 512 at 16 kHz, 256 at 8 kHz, each after the 64 / 32 context samples the wrapper prepends
SAMPLES = {16000: 576, 8000: 288}
CACHE = Path(os.environ.get("EDGESIM_CORPUS_CACHE", Path.home() / ".cache" / "edgesim" / "corpus"))


@pytest.fixture(scope="module")
def models() -> list[Path]:
    target = CACHE / "silero-vad"
    unpacked = target / "unpacked"
    if not any(unpacked.rglob("*.onnx")):
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--timeout", "20", "--retries", "1",
             "-d", str(target), WHEEL],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        wheels = sorted(target.glob("silero_vad-*.whl"))
        if done.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {WHEEL} from the package registry: {done.stderr.strip()[-200:]}")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for member in wheel.namelist():
                if member.endswith(".onnx"):
                    wheel.extract(member, unpacked)
    found = sorted(unpacked.rglob("*.onnx"))
    assert len(found) == 6, found  # what 6.2.3 ships
    return found


def _dims(vi: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim]


def cases(path: Path) -> list[tuple[int, dict[str, np.ndarray]]]:
    """(sample rate, feeds) for each sample rate the model takes: 16 kHz only, unless it has an ``sr`` input.
    Dynamic dims: the batch is 1, a window of 576 fixed samples is fed 3 times (the sequence export)."""
    model = onnx.load(str(path), load_external_data=False)
    names = [vi.name for vi in model.graph.input]
    rates = [16000, 8000] if "sr" in names else [16000]
    rng = np.random.default_rng(len(path.name))
    out = []
    for rate in rates:
        feeds = {}
        for vi in model.graph.input:
            dims = _dims(vi)
            if vi.name == "sr":
                feeds["sr"] = np.array(rate, dtype=np.int64)
                continue
            if vi.name == "input":
                shape = (dims[0] or 3, dims[1]) if dims[1] else (1, SAMPLES[rate])
                feeds[vi.name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
            else:  # the LSTM state(s): (2, batch, 128) or (1, batch, 128)
                shape = tuple(d or 1 for d in dims)
                feeds[vi.name] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
        out.append((rate, feeds))
    return out


def _load(path: Path, feeds: dict[str, np.ndarray]):
    shapes = {k: v.shape for k, v in feeds.items() if k != "sr"}
    values = {"sr": feeds["sr"]} if "sr" in feeds else None
    return load_model(str(path), shapes, input_values=values)


def test_float_execution_equals_onnxruntime(models):
    checked = 0
    for path in models:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for rate, feeds in cases(path):
            graph = _load(path, feeds)
            assert not any(n.op_type in ("If", "Loop") for n in graph.nodes)
            got = run_graph(graph, {k: v for k, v in feeds.items() if k != "sr"})
            for out, expected in zip(session.get_outputs(), session.run(None, feeds), strict=True):
                value = got[out.name]
                assert value.shape == expected.shape and value.dtype == expected.dtype, (path.name, out.name)
                scale = float(np.abs(expected).max())
                np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{path} {rate}")
            checked += 1
    assert checked == 9  # 3 models with an sr input x 2 rates + 3 single-rate models


# -- the independent MAC counter ---------------------------------------------------------------------------


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Values of ``names`` (top-level tensors) in an onnxruntime run of ``model``."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _flattened(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``model`` with every If replaced by the branch onnxruntime takes, until none is left."""
    model = _copy(model)
    while True:
        ifs = [n for n in model.graph.node if n.op_type == "If"]
        if not ifs:
            return model
        conditions = _run(model, feeds, [n.input[0] for n in ifs])
        taken = {id(n): bool(np.asarray(c).reshape(-1)[0]) for n, c in zip(ifs, conditions, strict=True)}
        nodes = []
        for node in model.graph.node:
            if node.op_type != "If":
                nodes.append(node)
                continue
            branch = next(
                a.g for a in node.attribute if a.name == ("then_branch" if taken[id(node)] else "else_branch")
            )
            model.graph.initializer.extend(branch.initializer)
            nodes += list(branch.node)
            nodes += [
                helper.make_node("Identity", [s.name], [t]) for s, t in zip(branch.output, node.output, strict=True)
            ]
        del model.graph.node[:]
        model.graph.node.extend(nodes)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def independent_macs(path: Path, feeds: dict[str, np.ndarray]) -> int:
    """Conv: output elements x (input channels / groups) x kernel taps; Gemm / MatMul: M N K; LSTM: batch x
    steps x directions x 4 x hidden x (input + hidden), each from tensor shapes onnxruntime computed."""
    flat = _flattened(onnx.load(str(path)), feeds)
    weights = {t.name: tuple(t.dims) for t in flat.graph.initializer}
    for node in flat.graph.node:
        if node.op_type == "Constant":
            weights[node.output[0]] = tuple(next(a.t.dims for a in node.attribute if a.name == "value"))
    counted = [n for n in flat.graph.node if n.op_type in ("Conv", "Gemm", "MatMul", "LSTM")]
    operands = {name for n in counted for name in (*n.input[:3], n.output[0]) if name}
    probes = sorted(operands - set(weights))
    shapes = {**weights, **{name: v.shape for name, v in zip(probes, _run(flat, feeds, probes), strict=True)}}
    total = 0
    for n in counted:
        w = shapes[n.input[1]]
        if n.op_type == "Conv":
            total += math.prod(shapes[n.output[0]]) * math.prod(w[1:])
        elif n.op_type == "LSTM":
            steps, batch, _ = shapes[n.input[0]]
            total += steps * batch * w[0] * w[1] * (w[2] + shapes[n.input[2]][2])
        else:
            total += math.prod(shapes[n.output[0]]) * shapes[n.input[0]][-1]
    return total


def test_macs_equal_an_independent_count(models):
    per_rate: dict[int, set[int]] = {}
    for path in models:
        for rate, feeds in cases(path):
            graph = _load(path, feeds)
            macs = sum(_macs(graph, node) for node in graph.order)
            assert macs == independent_macs(path, feeds), (path.name, rate)
            if "sequence" not in path.name:
                per_rate.setdefault(rate, set()).add(macs)
    # the five single-window exports carry one 16 kHz network: one count, whatever ops each export uses
    assert len(per_rate[16000]) == 1, per_rate


def _macs(graph, node) -> int:
    from simulator.ops import get_op

    return get_op(node.op_type).macs(node, graph.input_tensors(node), graph.output_tensors(node))


@pytest.mark.parametrize(
    "hw", [["--hw", "cortex-m7", "--precision", "int8"], ["--hw", "cortex-m7:tflm-portable"], ["--hw", "jetson-nano"],
           ["--hw", "raspberry-pi-4"]],
    ids=["cortex-m7-int8", "cortex-m7-fp32", "jetson-nano", "raspberry-pi-4"],
)  # fmt: skip
def test_estimate_from_the_cli_without_allow_unknown(models, hw, capsys):
    for path in models:
        rate, feeds = cases(path)[0]
        args = ["estimate", str(path), *hw, "--format", "json"]
        for name, value in feeds.items():
            if name == "sr":
                args += ["--input-value", f"sr={rate}"]
            else:
                args += ["--input-shape", f"{name}={','.join(map(str, value.shape))}"]
        assert main(args) == 0, (path.name, capsys.readouterr().err)
        assert '"latency_ms"' in capsys.readouterr().out


def test_inspect_from_the_cli_counts_the_macs(models, capsys):
    import json

    for path in models:
        rate, feeds = cases(path)[0]
        args = ["inspect", str(path), "--format", "json"]
        for name, value in feeds.items():
            args += (
                [f"--input-value=sr={rate}"]
                if name == "sr"
                else [f"--input-shape={name}={','.join(map(str, value.shape))}"]
            )
        assert main(args) == 0, (path.name, capsys.readouterr().err)
        report = json.loads(capsys.readouterr().out)
        assert report["totals"]["macs"] == independent_macs(path, feeds), path.name


def test_unbound_sample_rate_is_a_one_line_error(models, capsys):
    path = next(p for p in models if p.name == "silero_vad.onnx")
    code = main(["inspect", str(path), "--input-shape", "input=1,576", "--input-shape", "state=2,1,128"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "node 'If_0' (If)" in err and "--input-value sr=VALUE" in err
