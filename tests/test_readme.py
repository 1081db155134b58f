"""README.md's two set-up commands exist, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_two_setup_commands():
    run_cmd, test_cmd = _commands()
    assert "pip install ." in run_cmd and "edgesim " in run_cmd
    assert "'.[test]'" in test_cmd and "pytest" in test_cmd


def test_ci_runs_the_readme_test_command():
    _, test_cmd = _commands()
    assert test_cmd in (ROOT / ".ci" / "run").read_text().splitlines()
