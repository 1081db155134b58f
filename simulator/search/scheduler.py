"""Where evaluations run: in this process (``serial``), on a local Dask cluster (``local``, the default) or on
an existing one (``tcp://HOST:8786``). Every evaluation is a pure function of a shared context and one item,
and results come back in the order the items were given, so a table is the same whatever the scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from simulator.errors import EdgesimError


class Runner(Protocol):
    def map(self, fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any]) -> list[Any]: ...


class SerialRunner:
    """Evaluations one after the other in this process."""

    name = "serial"

    def map(self, fn, context, items):
        return [_limited(fn, context, item) for item in items]


class DaskRunner:
    """Evaluations as dask.distributed tasks; the context is scattered to every worker once."""

    def __init__(self, client: Any, name: str):
        self.client = client
        self.name = name
        self._scattered: dict[int, Any] = {}

    def map(self, fn, context, items):
        if not items:
            return []
        key = id(context)
        if key not in self._scattered:
            self._scattered = {key: (context, self.client.scatter(context, broadcast=True, hash=False))}
        shared = self._scattered[key][1]
        from simulator.threads import blas_threads, limited_blas

        # the limit is process-wide: held here too, workers running as threads of this process (processes=False)
        # find it already set, so one task leaving its limit cannot lift another's
        with limited_blas(blas_threads()):
            futures = self.client.map(_limited, [fn] * len(items), [shared] * len(items), list(items), pure=False)
            return self.client.gather(futures)


def _limited(fn: Callable[[Any, Any], Any], context: Any, item: Any) -> Any:
    """``fn(context, item)`` with numpy's BLAS at the CLI's thread limit, wherever it runs: a float32 product
    sums in an order that depends on the thread count, so the same limit everywhere keeps results identical
    across schedulers, and workers that each spread every product over all cores would spin against one
    another (simulator/threads.py)."""
    from simulator.threads import blas_threads, limited_blas

    with limited_blas(blas_threads()):
        return fn(context, item)


def check_scheduler(spec: str) -> str:
    if spec in ("serial", "local") or spec.startswith("tcp://"):
        return spec
    raise EdgesimError(f"--scheduler {spec!r}: give serial, local or the address of a Dask scheduler (tcp://HOST:8786)")


@contextmanager
def open_runner(spec: str = "local", workers: int | None = None, processes: bool = True) -> Iterator[Runner]:
    """A runner for ``spec`` (see the module docstring), closed (with any cluster it started) on exit."""
    check_scheduler(spec)
    if spec == "serial":
        yield SerialRunner()
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise EdgesimError(
            f"--scheduler {spec}: Dask is not installed; pip install 'edgesim[dask]' or use --scheduler serial"
        ) from None
    if spec == "local":
        n = workers or max(1, min(2, os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None)
        with cluster, Client(cluster) as client:
            yield DaskRunner(client, f"local Dask cluster ({n} workers)")
        return
    try:
        client = Client(spec, timeout="10s")
    except OSError as exc:
        raise EdgesimError(f"--scheduler {spec}: cannot reach the Dask scheduler ({exc})") from None
    try:
        yield DaskRunner(client, f"Dask scheduler {spec}")
    finally:
        client.close()
