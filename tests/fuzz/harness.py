"""Running one hostile case and judging the outcome: the contract every edgesim command keeps on any input.

- the exit status is 0 (done), 1 (over budget) or 2 (refused);
- on 1 or 2, stderr holds exactly one line that is not a warning (``edgesim: error: ...`` or
  ``edgesim: budget exceeded: ...``), and nothing else but ``edgesim: warning:`` lines;
- no traceback, ever;
- a run that fails leaves none of the files it was asked to write, and no temporary file beside them;
- (in a subprocess, scripts/fuzz.py and the bounded tests) memory under an RLIMIT_AS and time under a limit.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.cases import Case, write_case

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _streams():
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    return out, err


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", "replace")


def run_in_process(case: Case, directory: Path) -> Outcome:
    """Write the case's files into ``directory`` and run ``simulator.cli.main`` on it, judging the result."""
    import warnings

    from simulator.cli import main

    write_case(case, directory)
    before = set(os.listdir(directory))
    out, err = _streams()
    code: int
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")  # shown on stderr as a user would see them, not raised
        try:
            code = main(case.resolved_argv(directory))
        except SystemExit as exc:  # --help / --version
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - anything escaping main is the bug being looked for
            import traceback

            traceback.print_exception(exc, file=err)
            code = -1
    stdout, stderr = _text(out), _text(err)
    return Outcome(code, stdout, stderr, judge(case, directory, before, code, stderr))


def judge(case: Case, directory: Path, before: set[str], code: int, stderr: str) -> list[str]:
    problems = []
    if "Traceback" in stderr:
        problems.append("traceback")
    if code not in (0, 1, 2):
        problems.append(f"exit status {code}")
    if code in (1, 2):
        lines = [line for line in stderr.splitlines() if line.strip()]
        verdicts = [line for line in lines if not line.startswith("edgesim: warning:")]
        if len(verdicts) != 1 or not verdicts[0].startswith("edgesim: "):
            problems.append(f"stderr is not one edgesim line: {stderr[:300]!r}")
        after = set(os.listdir(directory)) if directory.is_dir() else set()
        left = sorted((after - before) & set(case.outputs))
        temporaries = sorted(n for n in after - before if n.endswith(".tmp"))
        if left or temporaries:
            problems.append(f"failed run left files behind: {left + temporaries}")
    return problems


def _limit_memory(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_bounded(argv: list[str], *, memory_bytes: int, timeout_s: float, cwd: Path | None = None):
    """``python -m simulator ARGV`` in a subprocess under an address-space limit and a timeout:
    (exit status or None on timeout, stderr, seconds taken)."""
    import time

    start = time.monotonic()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "simulator", *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=_limit_memory(memory_bytes),
            cwd=cwd or ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return None, "", time.monotonic() - start
    return proc.returncode, proc.stderr, time.monotonic() - start


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgesim-fuzz-"))
