"""The element and file-size limits and the bounded reader (issue 12, classes 1 and 2)."""

from __future__ import annotations

import os

import pytest

from simulator import limits
from simulator.errors import EdgesimError
from simulator.graph import Tensor


def test_default_element_limit_is_documented_and_above_the_zoo():
    assert limits.DEFAULT_MAX_ELEMENTS == 2**28
    assert limits.check_elements(4096 * 25088, "VGG fc6") == 102_760_448


def test_check_shape_names_the_tensor_and_the_way_to_raise_it():
    with pytest.raises(EdgesimError, match=r"seed of shape 1x3x100000x100000 has 30,000,000,000 elements.*"
                                           r"--max-elements 30000000000"):  # fmt: skip
        limits.check_shape((1, 3, 100000, 100000), "seed")
    with pytest.raises(EdgesimError, match="negative dimension"):
        limits.check_shape((2, -1), "t")


def test_option_overrides_environment(monkeypatch):
    monkeypatch.setenv("EDGESIM_MAX_ELEMENTS", "10")
    assert limits.max_elements() == 10
    limits.set_max_elements(1000)
    try:
        assert limits.max_elements() == 1000
        limits.check_tensors([Tensor("a", (10, 100), "float32")], "graph")
        with pytest.raises(EdgesimError, match="tensor 'b'"):
            limits.check_tensors([Tensor("b", (10, 101), "float32")], "graph")
    finally:
        limits.set_max_elements(None)
    assert limits.max_elements() == 10
    with pytest.raises(EdgesimError, match="--max-elements 0"):
        limits.set_max_elements(0)


def test_read_file_reads_regular_files_only(tmp_path, monkeypatch):
    path = tmp_path / "m.bin"
    path.write_bytes(b"12345")
    assert limits.read_file(path, "model") == b"12345"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad, says in [("/dev/zero", "not a regular file"), (fifo, "not a regular file"), (tmp_path, "directory"),
                      (tmp_path / "none", "no such file")]:  # fmt: skip
        with pytest.raises(EdgesimError, match=says):
            limits.read_file(bad, "model")
    monkeypatch.setenv("EDGESIM_MAX_FILE_BYTES", "4")
    with pytest.raises(EdgesimError, match="5 bytes, over the limit of 4.*EDGESIM_MAX_FILE_BYTES=5"):
        limits.read_file(path, "model")
