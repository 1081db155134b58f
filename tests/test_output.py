"""The output writer: atomic for regular files, never replacing what is not one (issue 12, class 8)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.output import write_bytes, write_text


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old contents, longer than the new ones")
    os.chmod(target, 0o640)
    write_bytes(b"new", target)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_new_file_gets_the_umask_permissions_not_mkstemps(tmp_path):
    target = tmp_path / "new.txt"
    write_bytes(b"x", target)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "results" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_bytes(b"new", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert _leftovers(real.parent) == [] and _leftovers(tmp_path) == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "target.txt")
    write_bytes(b"data", link)
    assert link.is_symlink() and (tmp_path / "target.txt").read_bytes() == b"data"


def test_fifo_is_written_as_a_stream_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes(b"through the pipe", fifo)
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _leftovers(tmp_path) == []


@pytest.fixture
def device(tmp_path):
    """A character device of our own (the null device's numbers) in the temporary directory."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("creating a device node needs privileges this run lacks")
    return node


def test_device_node_is_written_not_replaced(device):
    before = os.lstat(device)
    write_bytes(b"discarded", device)
    after = os.lstat(device)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert _leftovers(device.parent) == []


def test_symlink_to_a_device_writes_the_device(device, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(device)
    write_bytes(b"x", link)
    assert link.is_symlink() and stat.S_ISCHR(os.lstat(device).st_mode)


def test_dash_is_standard_output(capsysbinary):
    write_bytes(b"\x00binary\n", "-")
    assert capsysbinary.readouterr().out == b"\x00binary\n"


def test_directory_is_an_error(tmp_path):
    with pytest.raises(EdgesimError, match="is a directory"):
        write_bytes(b"x", tmp_path)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(EdgesimError, match="does not exist"):
        write_bytes(b"x", tmp_path / "nowhere" / "out.txt")


def test_a_full_device_is_one_line_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(EdgesimError, match="No space left"):
        write_text("x" * 10000, "/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_failed_write_leaves_no_partial_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(EdgesimError, match="No space left"):
        write_bytes(b"data", target)
    assert list(tmp_path.iterdir()) == []


def test_cli_output_to_symlink_fifo_dev_null_and_dash(tmp_path, capsys):
    real = tmp_path / "real.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert main(["models", "list", "-o", str(link)]) == 0
    assert link.is_symlink() and "lenet-5" in real.read_text()
    if stat.S_ISCHR(os.stat("/dev/null").st_mode):
        assert main(["models", "list", "-o", "/dev/null"]) == 0
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert main(["models", "list", "-o", "-"]) == 0
    assert "lenet-5" in capsys.readouterr().out
    assert main(["models", "list", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]
