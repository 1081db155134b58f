"""Time to estimate ResNet-50 on a hardware profile (graph already parsed), and estimates per second, beside a
peer measured in the same run: onnx's C++ shape inference over the same model (one walk over the same ops).

Run: python benchmarks/bench_estimate.py [PROFILE[:STACK]]   (default cortex-m7)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.estimate import estimate, plan_arena, prepare  # noqa: E402
from simulator.graph import Graph, Node, Tensor  # noqa: E402
from simulator.hardware import load_hardware  # noqa: E402
from simulator.importers.onnx_import import load_onnx  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    hw = load_hardware(sys.argv[1] if len(sys.argv) > 1 else "cortex-m7")
    precision = "int8" if "int8" in hw.stack.precisions else hw.stack.precisions[0]
    graph = load_onnx(LIGHT)
    model = onnx.load(LIGHT)
    peer = best(lambda: onnx.shape_inference.infer_shapes(model), 20)
    prepared = prepare(graph)
    full = best(lambda: estimate(graph, hw, precision=precision), 20)
    again = best(lambda: estimate(prepared, hw, precision=precision), 50)
    print(f"resnet-50 on {hw.label} at {precision}, {len(prepared.work)} layers")
    print(f"  onnx shape inference (peer)      {peer * 1e3:7.2f} ms")
    print(f"  estimate (prepare + estimate)    {full * 1e3:7.2f} ms   ratio {full / peer:5.2f}x")
    print(f"  estimate on a prepared graph     {again * 1e3:7.2f} ms   ratio {again / peer:5.2f}x")
    print(f"  plan estimates per second        {1 / again:7.0f}  (prepared graph)")
    # the arena planner's scaling: a chain 10x longer should take ~10x (n log n), not 100x (quadratic)
    chains = {n: _chain(n) for n in (1_000, 10_000)}
    times = {n: best(lambda g=g: plan_arena(g, lambda name: 100), 3) for n, g in chains.items()}
    print(f"  arena planning, 1,000-layer chain  {times[1_000] * 1e3:7.2f} ms")
    ratio = times[10_000] / times[1_000]
    print(f"  arena planning, 10,000-layer chain {times[10_000] * 1e3:7.2f} ms   ratio {ratio:5.1f}x")


def _chain(n: int) -> Graph:
    nodes = [Node(f"n{i}", "Relu", [f"t{i - 1}" if i else "x"], [f"t{i}"]) for i in range(n)]
    tensors = {name: Tensor(name, (1, 64)) for name in ["x", *(f"t{i}" for i in range(n))]}
    return Graph("chain", nodes, tensors, ["x"], [f"t{n - 1}"])


if __name__ == "__main__":
    main()
