"""Memory and time bounds on representative hostile inputs, measured in a subprocess.

Each runs ``python -m simulator`` under RLIMIT_AS = ``MEMORY_BYTES`` of address space (an allocation past it
fails instead of swapping the machine) and a ``SECONDS`` timeout: before the guards, these inputs took 80 s
and 5.4 GB (the alias bomb), 224 GiB (the seeded input) or never ended (/dev/zero).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.fuzz.cases import ROOT
from tests.fuzz.harness import run_bounded
from tests.fuzz.test_classes import _conv_model, _npy_header

MEMORY_BYTES = 3 * 1024**3
SECONDS = 60


def _assert_refused_within_bounds(argv, *fragments):
    code, stderr, seconds = run_bounded([str(a) for a in argv], memory_bytes=MEMORY_BYTES, timeout_s=SECONDS)
    assert code is not None, f"{argv}: still running after {SECONDS} s"
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgesim: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return seconds


def test_alias_bomb(tmp_path):
    bomb = "b0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"b{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
    )
    text = bomb + (ROOT / "hwprofiles" / "cortex-m4.yaml").read_text().replace("\nsources:", "\nsources: *a8\nx:", 1)
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    _assert_refused_within_bounds(["hw", "validate", path], "expands to more than")


def test_seeded_input_of_a_huge_shape(tmp_path):
    path = tmp_path / "huge.onnx"
    onnx.save(_conv_model([1, 3, 100000, 100000]), str(path))
    _assert_refused_within_bounds(["compare", path, "--hw", "cortex-m4", "--samples", "1"], "--max-elements")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_model_that_is_an_endless_device(tmp_path, device):
    link = tmp_path / "model.onnx"
    link.symlink_to(device)
    _assert_refused_within_bounds(["inspect", link], "not a regular file")


def test_npy_header_claiming_ten_billion_elements(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(_npy_header((10**10,)) + b"\0" * 64)
    plan = ROOT / "plans" / "int8-per-channel.yaml"
    _assert_refused_within_bounds(["run", "digits-cnn", "--plan", plan, "--input", path], "elements")


def test_a_normal_run_fits_the_same_bounds(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 8, 8), np.float32))
    plan = ROOT / "plans" / "int8-per-channel.yaml"
    code, stderr, _ = run_bounded(
        ["run", "digits-cnn", "--plan", str(plan), "--input", str(x), "--mode", "ort"],
        memory_bytes=MEMORY_BYTES,
        timeout_s=SECONDS,
    )
    assert code == 0, stderr
