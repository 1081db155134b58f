"""The first commands a user runs, timed as they run them (a fresh process each), beside the cheapest
possible peer measured in the same run: a bare ``python -c "import numpy"``.

Targets (issue 13): the CLI ``estimate`` of a zoo model <= 0.6 s and ``compare`` of three plans on ResNet-8
<= 2 s on a 2-core machine. The ratios say how far each command is from the interpreter start-up it cannot
avoid.

Run: python benchmarks/bench_cli.py [REPEATS]   (default 5; best of REPEATS)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "plans"

COMMANDS = {
    "estimate resnet-8 --hw cortex-m7": ["estimate", "resnet-8", "--hw", "cortex-m7"],
    "estimate lenet-5 --hw cortex-m7 --format json": ["estimate", "lenet-5", "--hw", "cortex-m7", "--format", "json"],
    "compare resnet-8 --hw cortex-m7, 3 plans": [
        "compare", "resnet-8", "--hw", "cortex-m7",
        "--plan", str(PLANS / "int8-per-channel.yaml"),
        "--plan", str(PLANS / "w4a8-per-channel.yaml"),
        "--plan", str(PLANS / "prune90-int8.yaml"),
    ],
}  # fmt: skip


def best(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    peer = best([sys.executable, "-c", "import numpy"], repeats)
    print(f"python -c 'import numpy' (peer)              {peer:6.3f} s")
    for label, args in COMMANDS.items():
        t = best([sys.executable, "-m", "simulator", *args], repeats)
        print(f"edgesim {label:<40} {t:6.3f} s   ratio {t / peer:5.1f}x")


if __name__ == "__main__":
    main()
