"""Loading user arrays: headers checked before allocation, no pickles, numeric and finite data only."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from simulator.arrays import load_arrays
from simulator.errors import EdgesimError


def test_npy_and_npz_load(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.savez(tmp_path / "b.npz", x=np.ones(3, np.int8), y=np.zeros(2))
    assert load_arrays(tmp_path / "a.npy", "input").tolist() == [[0, 1, 2], [3, 4, 5]]
    arrays = load_arrays(tmp_path / "b.npz", "data")
    assert sorted(arrays) == ["x", "y"] and arrays["x"].dtype == np.int8


def test_npz_member_header_is_checked_before_decompression(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESIM_MAX_ELEMENTS", "1000")
    np.savez_compressed(tmp_path / "z.npz", x=np.zeros(10**6, np.float32))  # 4 MB that compresses to 4 KB
    with pytest.raises(EdgesimError, match="array 'x'.*1,000,000 elements"):
        load_arrays(tmp_path / "z.npz", "data")


@pytest.mark.parametrize("array", [np.array(["a"]), np.array([b"a"]), np.array([1 + 2j]),
                                   np.zeros(2, [("a", "f4")])])  # fmt: skip
def test_non_numeric_arrays_are_refused(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(EdgesimError, match="numeric arrays"):
        load_arrays(tmp_path / "a.npy", "input")


def test_pickles_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(EdgesimError, match="object"):
        load_arrays(tmp_path / "a.npy", "input")


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e39])
def test_finite_means_finite_in_float32(tmp_path, value):
    np.save(tmp_path / "a.npy", np.array([1.0, value]))
    assert load_arrays(tmp_path / "a.npy", "input").shape == (2,)
    with pytest.raises(EdgesimError, match="beyond-float32"):
        load_arrays(tmp_path / "a.npy", "input", finite=True)


def test_corrupt_files_are_one_line(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',\n")
    with pytest.raises(EdgesimError, match="not a valid .npy"):
        load_arrays(tmp_path / "a.npy", "input")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"junk")
    (tmp_path / "b.npz").write_bytes(buffer.getvalue()[:-10])
    with pytest.raises(EdgesimError, match="b.npz"):
        load_arrays(tmp_path / "b.npz", "data")
