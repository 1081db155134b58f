"""How many threads numpy's BLAS may use while a command runs: one unless the user says otherwise.

edgesim's executors issue many small and medium matrix products. OpenBLAS spreads each over all cores and
spin-waits between them, which on a machine with any other load makes a run several times slower than one
thread (``edgesim compare`` of three plans on ResNet-8: 0.29 s with one thread, 1.1-1.8 s with two on a
loaded 2-core machine; benchmarks/bench_compare.py). ``EDGESIM_BLAS_THREADS=N`` raises the limit for a
quiet many-core machine; threadpoolctl applies it to whichever BLAS numpy was built with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from simulator.errors import EdgesimError

ENV = "EDGESIM_BLAS_THREADS"


def blas_threads(environ: dict[str, str] | None = None) -> int:
    """The thread limit from ``EDGESIM_BLAS_THREADS`` (default 1)."""
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise EdgesimError(f"{ENV}={text!r}: give a whole number of threads from 1 to 1024")
    return int(text)


@contextmanager
def limited_blas(threads: int) -> Iterator[None]:
    """numpy's BLAS limited to ``threads`` threads within the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
