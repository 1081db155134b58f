"""`edgesim inspect` on ResNet-50 (parse + shape inference + folding + counts) against onnx.load of the same
file, measured in the same run and printed as a ratio.

Two files: the "light" ResNet-50 from the onnx wheel (weights are ConstantOfShape fills, so parsing is cheap
and edgesim's own work dominates), and the same network with its 25.5 M weights written out as real
initializers (about 100 MB, as a user's exported model is). Run: python benchmarks/bench_inspect.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.importers.onnx_import import load_onnx  # noqa: E402
from simulator.summary import count  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"


def with_real_weights(src: Path, dst: Path) -> None:
    """Replace every ConstantOfShape weight by a seeded random initializer of the same shape."""
    model = onnx.load(src)
    g = model.graph
    shapes = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    rng = np.random.default_rng(0)
    keep, inits = [], [i for i in g.initializer if not i.name.endswith("__SHAPE")]
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(inits)
    onnx.save(model, dst)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def bench(label: str, path: Path, repeats: int) -> None:
    def inspect():
        counts = count(load_onnx(path))
        assert counts.params == 25_530_472, counts.params

    load_best, load_median = best_of(lambda: onnx.load(path), repeats)
    ours_best, ours_median = best_of(inspect, repeats)
    size_mb = path.stat().st_size / 1e6
    print(
        f"{label:<28} {size_mb:7.1f} MB  onnx.load {load_best * 1e3:8.1f} ms  "
        f"edgesim inspect {ours_best * 1e3:8.1f} ms  ratio {ours_best / load_best:5.2f}x "
        f"(medians {load_median * 1e3:.1f} / {ours_median * 1e3:.1f} ms)"
    )


def main() -> None:
    bench("resnet-50 (light, onnx wheel)", LIGHT, repeats=20)
    with tempfile.TemporaryDirectory() as tmp:
        real = Path(tmp) / "resnet50.onnx"
        with_real_weights(LIGHT, real)
        bench("resnet-50 (real weights)", real, repeats=5)


if __name__ == "__main__":
    main()
