"""The short seeded fuzz run (part of every test run) and the replay of every case that ever failed.

Each kind of hostile input (tests/fuzz/cases.py) gets ``EXAMPLES`` cases drawn by hypothesis, derandomized so
the run is the same every time; each case runs the CLI in-process and must keep the contract of
tests/fuzz/harness.py (exit 0/1/2, one stderr line on failure, no traceback, no file left by a failed run).
The long campaign is scripts/fuzz.py; the bounds on memory and time are tested in test_bounds.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.cases import GENERATORS, read_case
from tests.fuzz.harness import run_in_process, scratch_dir

EXAMPLES = 45
CORPUS = Path(__file__).parent / "corpus"
_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _check(case) -> None:
    directory = scratch_dir()
    try:
        outcome = run_in_process(case, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert outcome.ok, f"{case.argv}: {outcome.problems}\n{outcome.stderr[-3000:]}"


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_hostile_input_keeps_the_cli_contract(kind):
    @_SETTINGS
    @given(st.randoms(use_true_random=False))
    def check(r):
        _check(GENERATORS[kind](r))

    check()


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*") if (p / "case.json").is_file()))
def test_every_case_that_ever_failed_now_passes(name):
    _check(read_case(CORPUS / name))
