"""Speed of the bit-exact integer executors against onnx's reference evaluator and onnxruntime (issue 5, "Speed").

Two modes on quantized MobileNetV2 (224x224) and ResNet-18 of the zoo:

* ``ort``: the float model quantized by onnxruntime's ``quantize_static`` (QDQ, uint8 activations, per-channel
  int8 weights, seeded calibration), run by an edgesim ``OrtSession`` (``prepare_ort``), by
  ``onnx.reference.ReferenceEvaluator`` and by ``onnxruntime.InferenceSession`` on the same input (edgesim's output
  is also checked to be onnxruntime's). As onnxruntime's session creation is not timed, neither is edgesim's
  preparation (the first run, which builds each node's kernel): the timed call is ``session.run``, and the
  one-off ``run_ort`` (prepare + run) is printed beside it. edgesim is timed twice: with BLAS threads as
  configured (the ratio line) and with one BLAS thread (``blas_threads=1``, in brackets), since on a shared
  machine a multi-threaded OpenBLAS can be many times slower than one thread.
* ``tflm``: the model quantized by edgesim's own quantize pass (plans/int8-per-channel.yaml), run by a
  ``prepare_tflm`` session (its ``run`` is timed, as onnxruntime's ``session.run`` is), against onnxruntime
  (and the reference evaluator) running edgesim's QDQ export of it.

Times are the best of ``--runs`` runs after one warm-up (the reference evaluator runs once: it is slow).
Goal: edgesim at least 20x faster than the reference evaluator and within 5x of onnxruntime, both measured at
one thread (onnxruntime ``intra_op_num_threads=1``; edgesim's BLAS limited to one thread with threadpoolctl, as
the CLI runs it).

Run: python benchmarks/bench_int_exec.py [--models mobilenet-v2 resnet-18] [--modes ort tflm] [--runs 3]
                                         [--no-reference]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime
from onnx.reference import ReferenceEvaluator
from onnxruntime import quantization

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.execute.int_exec import prepare_tflm  # noqa: E402
from simulator.execute.ort_exec import prepare_ort, run_ort  # noqa: E402
from simulator.execute.qdq_export import export_qdq  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402
from simulator.plan import apply_plan, load_plan  # noqa: E402
from simulator.threads import limited_blas  # noqa: E402
from tests.helpers import graph_to_onnx  # noqa: E402

MODELS = ("mobilenet-v2", "resnet-18")
CALIBRATION = 2


class _Reader(quantization.CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._data = iter(feeds)

    def get_next(self):
        return next(self._data, None)


def _calibration(graph, seed: int = 1234) -> list[dict[str, np.ndarray]]:
    x = graph.inputs[0]
    rng = np.random.default_rng(seed)
    return [{x: rng.standard_normal(graph.tensors[x].shape).astype(np.float32)} for _ in range(CALIBRATION)]


def _input(graph, seed: int = 0) -> dict[str, np.ndarray]:
    x = graph.inputs[0]
    return {x: np.random.default_rng(seed).standard_normal(graph.tensors[x].shape).astype(np.float32)}


def _best(fn, runs: int) -> tuple[float, object]:
    result = fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _reference(model: onnx.ModelProto) -> ReferenceEvaluator:
    """The reference evaluator of ``model``; it implements DequantizeLinear only from opset 19, so older models
    are converted (the QDQ ops keep their meaning: per-tensor or per-axis, no blocks)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 19:
        model = onnx.version_converter.convert_version(model, 19)
    return ReferenceEvaluator(model)


def _session(model: onnx.ModelProto):
    # both sides at one thread (issue 13's protocol): onnxruntime's intra-op pool at one thread, edgesim's
    # BLAS limited to one thread by main()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def bench_ort(name: str, runs: int, reference: bool, workdir: Path) -> dict:
    graph = load_model(name)
    float_path = workdir / f"{name}.onnx"
    onnx.save(graph_to_onnx(graph), str(float_path))
    qdq_path = workdir / f"{name}-qdq.onnx"
    quantization.quantize_static(
        str(float_path), str(qdq_path), _Reader(_calibration(graph)),
        quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
    )  # fmt: skip
    model = onnx.load(str(qdq_path))
    qgraph = load_onnx(qdq_path)
    feeds = _input(qgraph)
    t_prepare = _once(lambda: run_ort(qgraph, feeds))
    edgesim = prepare_ort(qgraph)
    t_edge, got = _best(lambda: edgesim.run(feeds), runs)
    single = prepare_ort(qgraph, blas_threads=1)
    t_single, _ = _best(lambda: single.run(feeds), runs)
    session = _session(model)
    t_ort, want = _best(lambda: session.run(None, feeds), runs)
    exact = all(np.array_equal(got[o], w) for o, w in zip(qgraph.outputs, want, strict=True))
    t_ref = _once(lambda: _reference(model).run(None, feeds)) if reference else None
    return {
        "edgesim": t_edge, "onnxruntime": t_ort, "reference": t_ref, "identical": exact, "prepare+run": t_prepare,
        "1 BLAS thread": t_single,
    }  # fmt: skip


def bench_tflm(name: str, runs: int, reference: bool) -> dict:
    graph = load_model(name)
    plan = load_plan(ROOT / "plans" / "int8-per-channel.yaml")
    calibration = _calibration(graph)
    quantized = apply_plan(graph, plan, calibration)
    feeds = _input(quantized)
    tflm_session = prepare_tflm(quantized)  # the peer of onnxruntime's InferenceSession: preparation is not timed
    t_edge, _ = _best(lambda: tflm_session.run(feeds), runs)
    model = export_qdq(quantized)
    session = _session(model)
    t_ort, _ = _best(lambda: session.run(None, feeds), runs)
    t_ref = _once(lambda: _reference(model).run(None, feeds)) if reference else None
    return {"edgesim": t_edge, "onnxruntime": t_ort, "reference": t_ref, "identical": None}


def _report(mode: str, name: str, r: dict) -> None:
    ort_ratio = r["edgesim"] / r["onnxruntime"]
    line = (
        f"{mode:5s} {name:13s} edgesim {r['edgesim'] * 1e3:9.1f} ms   onnxruntime {r['onnxruntime'] * 1e3:8.1f} ms"
        f"   edgesim/onnxruntime {ort_ratio:6.2f}x [{'ok' if ort_ratio <= 5 else 'MISS'} <= 5x]"
    )
    if r["reference"] is not None:
        ref_ratio = r["reference"] / r["edgesim"]
        line += (
            f"   reference {r['reference']:8.2f} s   reference/edgesim {ref_ratio:7.1f}x"
            f" [{'ok' if ref_ratio >= 20 else 'MISS'} >= 20x]"
        )
    if r.get("1 BLAS thread") is not None:
        single = r["1 BLAS thread"]
        line += f"   [1 BLAS thread: {single * 1e3:.1f} ms, edgesim/onnxruntime {single / r['onnxruntime']:.2f}x"
        line += "]" if r["reference"] is None else f", reference/edgesim {r['reference'] / single:.1f}x]"
    if r.get("prepare+run") is not None:
        line += f"   (run_ort, prepare + run: {r['prepare+run'] * 1e3:.0f} ms)"
    if r["identical"] is not None:
        line += f"   outputs identical to onnxruntime: {r['identical']}"
    print(line, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--modes", nargs="+", default=["ort", "tflm"], choices=["ort", "tflm"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) onnx reference evaluator")
    args = parser.parse_args(argv)
    print(
        f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, numpy {np.__version__}; best of {args.runs}"
    )
    with tempfile.TemporaryDirectory() as tmp, limited_blas(1):
        for name in args.models:
            if "ort" in args.modes:
                _report("ort", name, bench_ort(name, args.runs, not args.no_reference, Path(tmp)))
            if "tflm" in args.modes:
                _report("tflm", name, bench_tflm(name, args.runs, not args.no_reference))


if __name__ == "__main__":
    main()
