"""A fuzz worker: runs cases in-process, one per line read from stdin, and answers one JSON line each.

scripts/fuzz.py starts it under an address-space limit (RLIMIT_AS) and kills it when a case overruns its time,
so a hang or an allocation past the limit is counted against that case instead of stopping the campaign.
Input lines are ``KIND SEED``; the case is rebuilt from them (cases are deterministic in their seed).
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import sys
import time

from tests.fuzz.cases import GENERATORS
from tests.fuzz.harness import run_in_process, scratch_dir


def main() -> None:
    for line in sys.stdin:
        kind, seed = line.split()
        case = GENERATORS[kind](random.Random(seed))
        directory = scratch_dir()
        start = time.monotonic()
        try:
            outcome = run_in_process(case, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        report = {
            "code": outcome.code,
            "problems": outcome.problems,
            "stderr_tail": outcome.stderr.strip().splitlines()[-3:],
            "seconds": round(time.monotonic() - start, 3),
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        sys.__stdout__.write(json.dumps(report) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
