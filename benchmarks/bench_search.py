"""edgesim search on ResNet-8 with the default space: wall time and real evaluations per second, serially and
on a 2-worker local Dask cluster, beside a peer measured in the same run: ``compare_plans`` costing and
measuring plans one after the other (the throughput a hand-run sweep of plans gets). Also printed: how long
exhaustive evaluation of the whole space would take at the serial rate.

Run: python benchmarks/bench_search.py [MODEL] [PROFILE] [BUDGET]   (default resnet-8, cortex-m7, flash_bytes=48K)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.budget import parse_budget  # noqa: E402
from simulator.compare import compare_plans  # noqa: E402
from simulator.hardware import load_hardware  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.plan import parse_plan  # noqa: E402
from simulator.search.evaluate import make_context  # noqa: E402
from simulator.search.scheduler import open_runner  # noqa: E402
from simulator.search.search import as_dict, run_search  # noqa: E402
from simulator.search.space import build_space  # noqa: E402
from simulator.threads import limited_blas  # noqa: E402


def timed_search(context, space, budget, scheduler: str, processes: bool = True):
    with open_runner(scheduler, processes=processes) as runner:
        start = time.perf_counter()  # the cluster's start-up is not the search's time
        result = run_search(context, space, budget, runner, "sqnr", seed=0)
        return result, time.perf_counter() - start, runner.name


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "resnet-8"
    hw = load_hardware(sys.argv[2] if len(sys.argv) > 2 else "cortex-m7")
    budget = parse_budget(sys.argv[3] if len(sys.argv) > 3 else "flash_bytes=48K")
    graph = load_model(model)
    with limited_blas(1):
        context = make_context(graph, hw)
        space = build_space(graph, hw)
        serial, t_serial, _ = timed_search(context, space, budget, "serial")
        dask, t_dask, name = timed_search(context, space, budget, "local")
        threads, t_threads, _ = timed_search(context, space, budget, "local", processes=False)
        # peer: compare_plans on as many plans as the search evaluated (the same plans, one after the other)
        plans = [parse_plan(p.plan, p.name) for p in serial.points]
        start = time.perf_counter()
        compare_plans(graph, hw, plans, samples=len(context.data.feeds))
        t_compare = time.perf_counter() - start
    n = serial.evaluations
    assert as_dict(serial) == as_dict(dask) == as_dict(threads), "the scheduler changed the result"
    print(f"{model} on {hw.label}, budget {dict(budget.limits)}, space {space.size:.3g} plans, "
          f"{len(context.data.feeds)} fidelity inputs")  # fmt: skip
    print(f"search serial:        {t_serial:7.2f} s, {n} evaluations, {n / t_serial:6.2f} evaluations/s")
    print(f"search on {name}: {t_dask:7.2f} s, {n / t_dask:6.2f} evaluations/s "
          f"({t_serial / t_dask:.2f}x serial)")  # fmt: skip
    print(f"search on the same cluster with thread workers (processes=False): {t_threads:7.2f} s, "
          f"{n / t_threads:6.2f} evaluations/s ({t_serial / t_threads:.2f}x serial)")  # fmt: skip
    print(f"peer compare_plans:   {t_compare:7.2f} s for the same {n} plans, {n / t_compare:6.2f} plans/s "
          f"(search serial is {t_compare / t_serial:.2f}x its rate)")  # fmt: skip
    print(f"exhaustive search at the serial rate: {space.size / (n / t_serial) / 3600:.3g} h "
          f"({space.size / n:.3g}x the evaluations)")  # fmt: skip
    chosen = serial.chosen
    if chosen is not None:
        print(f"chosen {chosen.name}: {chosen.totals['flash_bytes']} B flash, SQNR {chosen.sqnr_db:.1f} dB; "
              f"{chosen.plan['description']}")  # fmt: skip


if __name__ == "__main__":
    main()
