"""Report time on chains of 1,000 and 10,000 layers (the target: linear in graph size, 10,000 layers under
30 s), beside two peers measured in the same run on the same graph:

- estimating the graph (what every report needs before it draws anything), and
- a blank reportlab PDF holding one plain table of as many rows as the graph has layers (the floor of laying
  the per-layer tables out).

Printed: seconds, and the report's time as a ratio of each peer; the last line gives how the report's time
grows from 1,000 to 10,000 layers (10x is linear).

Run: python benchmarks/bench_report.py [PROFILE]   (default cortex-m7)
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.platypus import SimpleDocTemplate, Table  # noqa: E402

from simulator.estimate import estimate, prepare  # noqa: E402
from simulator.hardware import load_hardware  # noqa: E402
from simulator.importers.yamlspec import fold_batchnorm, infer_shapes, parse_spec  # noqa: E402
from simulator.report import build_report  # noqa: E402
from tests.helpers import chain_spec  # noqa: E402


def chain(n: int):
    """The tests' chain of ``n`` layers (tests.helpers.chain_spec), shape-inferred."""
    graph, _ = parse_spec(chain_spec(n), f"chain-{n}")
    return fold_batchnorm(infer_shapes(graph))


def blank_pdf(rows: int) -> None:
    data = [["#", "layer", "op", "shape", "MACs", "latency ms", "energy uJ"]]
    data += [[str(i), f"layer_{i}", "Conv", "1x8x16x16", "32,768", "0.092", "42.14"] for i in range(rows)]
    SimpleDocTemplate(io.BytesIO(), pagesize=A4).build([Table(data, repeatRows=1)])


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    hw = load_hardware(sys.argv[1] if len(sys.argv) > 1 else "cortex-m7")
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1_000, 10_000):
            graph = chain(n)
            est = timed(lambda graph=graph: estimate(prepare(graph), hw, precision="int8"))
            blank = timed(lambda n=n: blank_pdf(n))
            report = timed(lambda graph=graph: build_report(graph, hw, Path(tmp) / "r.pdf", precisions=["int8"]))
            times[n] = report
            print(
                f"{n:>6,} layers: report {report:6.2f} s | estimate {est:5.2f} s ({report / est:5.1f}x) | "
                f"blank reportlab table {blank:5.2f} s ({report / blank:5.1f}x)"
            )
    print(f"report time 10,000 / 1,000 layers: {times[10_000] / times[1_000]:.1f}x (10x is linear); "
          f"10,000 layers in {times[10_000]:.1f} s (target < 30 s)")  # fmt: skip


if __name__ == "__main__":
    main()
