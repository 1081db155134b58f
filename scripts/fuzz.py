"""The long fuzz campaign: ``python scripts/fuzz.py --cases 20000`` (from the repository root).

Runs hostile cases (tests/fuzz/cases.py: malformed ONNX, .tflite, profiles, plans, specs, arrays, flags) through
the CLI in a worker process limited to ``--memory-mb`` of address space, with ``--timeout`` seconds per case, and
prints statistics: exit statuses per kind, tracebacks and other contract violations, hangs, runs over the memory
bound, the slowest case. Every case that fails is written to tests/fuzz/corpus/ (``--save``), where the test
suite replays it as a regression test. The short seeded run in tests/fuzz/test_fuzz.py is part of pytest.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.cases import GENERATORS, write_case  # noqa: E402

CORPUS = ROOT / "tests" / "fuzz" / "corpus"
_DEVICES = [d for d in ("/dev/null", "/dev/full") if os.path.exists(d) and stat.S_ISCHR(os.stat(d).st_mode)]


class Worker:
    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))

        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=env,
            preexec_fn=limit,
        )

    def run(self, kind: str, seed: str, timeout: float) -> dict | None:
        """The worker's report, or None when the case overran ``timeout`` or killed the worker."""
        try:
            self.proc.stdin.write(f"{kind} {seed}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.restart()
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.restart()
            return None
        return json.loads(line)

    def restart(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc = self._start()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", default="campaign", help="cases are KIND-SEED-INDEX; the same seed repeats them")
    parser.add_argument("--kinds", default=",".join(GENERATORS), help="comma-separated case kinds")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of the worker (RLIMIT_AS)")
    parser.add_argument("--rss-mb", type=int, default=2048, help="peak resident memory a case may reach")
    parser.add_argument("--save", action="store_true", help="write failing cases to tests/fuzz/corpus/")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    worker = Worker(args.memory_mb * 1024**2)
    codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[tuple[str, str, str]] = []
    hangs = over_memory = 0
    slowest = (0.0, "")
    start = time.monotonic()
    for i in range(args.cases):
        kind = kinds[i % len(kinds)]
        seed = f"{kind}-{args.seed}-{i}"
        report = worker.run(kind, seed, args.timeout)
        replaced = [d for d in _DEVICES if not stat.S_ISCHR(os.stat(d).st_mode)]
        if replaced:  # what issue 12 found: -o replacing a device node with a regular file
            failures.append((kind, seed, f"replaced {', '.join(replaced)}"))
            break
        if report is None:
            hangs += 1
            failures.append((kind, seed, "hang or worker killed (time or memory limit)"))
            continue
        codes[kind][report["code"]] += 1
        if report["seconds"] > slowest[0]:
            slowest = (report["seconds"], seed)
        if report["max_rss_bytes"] > args.rss_mb * 1024**2:
            over_memory += 1
            failures.append((kind, seed, f"peak RSS {report['max_rss_bytes'] / 2**20:.0f} MiB"))
            worker.restart()  # the peak is per process: start a fresh one
        if report["problems"]:
            failures.append((kind, seed, "; ".join(report["problems"]) + " | " + " | ".join(report["stderr_tail"])))
            print(f"  FAIL {seed}: {failures[-1][2][:300]}", flush=True)
        if (i + 1) % 500 == 0:
            print(f"{i + 1} cases, {len(failures)} failures, {time.monotonic() - start:.0f} s", flush=True)
    worker.close()
    elapsed = time.monotonic() - start
    tracebacks = sum("traceback" in f[2] for f in failures)
    print(f"\n{args.cases} cases in {elapsed:.0f} s ({args.cases / max(elapsed, 1e-9):.1f} cases/s)")
    for kind in kinds:
        print(f"  {kind:8s} " + ", ".join(f"exit {c}: {n}" for c, n in sorted(codes[kind].items())))
    print(f"tracebacks: {tracebacks}")
    print(f"other contract violations: {len(failures) - tracebacks - hangs - over_memory}")
    print(f"hangs or killed workers (> {args.timeout:g} s or > {args.memory_mb} MiB address space): {hangs}")
    print(f"over the memory bound (peak RSS > {args.rss_mb} MiB): {over_memory}")
    print(f"slowest case: {slowest[0]:.2f} s ({slowest[1]})")
    for _kind, seed, what in failures[:50]:
        print(f"  FAIL {seed}: {what[:300]}")
    if args.save:
        for kind, seed, _ in failures:
            write_case(GENERATORS[kind](random.Random(seed)), CORPUS / seed)
        if failures:
            print(f"{len(failures)} failing cases written to {CORPUS}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
