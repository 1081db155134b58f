"""Packaging: every subpackage ships, and the data directories resolve."""

from __future__ import annotations

import configparser
from pathlib import Path

from simulator.resources import data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_subpackage():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "simulator").rglob("__init__.py")}
    assert on_disk <= listed, f"add to setup.cfg [options] packages: {sorted(on_disk - listed)}"


def test_data_directories_exist():
    assert (data_dir("models") / "lenet-5.yaml").is_file()
    assert data_dir("hwprofiles").is_dir()
