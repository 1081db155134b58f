"""Comparing 20 plans on a zoo model (the issue's target: seconds, not minutes), beside a peer measured in the
same run: onnxruntime running the same model's float graph on the same number of inputs.

Run: python benchmarks/bench_compare.py [MODEL] [PROFILE]   (default digits-cnn on cortex-m4)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.compare import compare_plans  # noqa: E402
from simulator.hardware import load_hardware  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.plan import parse_plan  # noqa: E402
from tests.helpers import graph_to_onnx  # noqa: E402


def twenty_plans():
    plans = []
    for sparsity in (0.3, 0.5, 0.7, 0.9):
        plans.append(
            parse_plan({"name": f"prune{int(sparsity * 100)}", "passes": [{"pass": "prune", "sparsity": sparsity}]}, "")
        )
    for bits in (2, 3, 4, 6, 8):
        for granularity in ("per-tensor", "per-channel"):
            weights = {"bits": bits, "granularity": granularity}
            passes = [{"pass": "quantize", "weights": weights, "activations": {"bits": 8}}]
            plans.append(parse_plan({"name": f"w{bits}a8-{granularity}", "passes": passes}, ""))
    for bits in (3, 4, 5, 6, 8):
        plans.append(parse_plan({"name": f"share{bits}", "passes": [
            {"pass": "prune", "sparsity": 0.8}, {"pass": "share", "bits": bits},
            {"pass": "encode", "format": "csr-relative", "index_bits": 5, "huffman": True}]}, ""))  # fmt: skip
    plans.append(
        parse_plan(
            {"name": "nm24", "passes": [{"pass": "prune", "method": "n:m", "pattern": "2:4", "layers": "fc*"}]}, ""
        )
    )
    return plans[:20]


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "digits-cnn"
    hw = load_hardware(sys.argv[2] if len(sys.argv) > 2 else "cortex-m4")
    graph = load_model(model)
    plans = twenty_plans()
    start = time.perf_counter()
    rows = compare_plans(graph, hw, plans)
    ours = time.perf_counter() - start
    samples = 450 if graph.metadata.get("dataset") else 16
    session = onnxruntime.InferenceSession(graph_to_onnx(graph).SerializeToString(), providers=["CPUExecutionProvider"])
    name = graph.inputs[0]
    x = np.random.default_rng(0).standard_normal(graph.tensors[name].shape).astype(np.float32)
    start = time.perf_counter()
    for _ in range(samples * (len(plans) + 1)):
        session.run(None, {name: x})
    peer = time.perf_counter() - start
    best = max(rows, key=lambda r: (r.pareto, r.accuracy or 0))
    print(f"{model} on {hw.label}: {len(plans)} plans + baseline, {samples} inputs each")
    print(f"  edgesim compare           {ours:7.2f} s")
    print(f"  onnxruntime, same runs    {peer:7.2f} s   (edgesim / onnxruntime = {ours / peer:.1f}x)")
    print(f"  Pareto-optimal plans: {', '.join(r.plan for r in rows if r.pareto)}; e.g. {best.plan}")


if __name__ == "__main__":
    main()
