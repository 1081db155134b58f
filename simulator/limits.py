"""Limits on what input data may make edgesim allocate or read, and the one reader of untrusted files.

A shape in a model, a header in a .npy file or a length in ONNX external data is a number someone else wrote:
1x3x100000x100000 is a valid shape and a 224 GiB allocation. Every allocation whose size data decides, and
every read of a user-named file, goes through this module first, so a hostile input ends in one line naming
it and the way to raise the limit, never in MemoryError, a swapping machine or a read of /dev/zero that never
ends. The limits are generous defaults for real edge models (docs/security.md) and can be raised:

- ``EDGESIM_MAX_ELEMENTS`` (or ``edgesim --max-elements N``): elements of one tensor edgesim materializes
  (seeded inputs, calibration data, folded constants, executed activations). Default 2**28 = 268,435,456 (1 GiB of
  float32): above VGG's 102,760,448-weight fc6, the largest tensor of the zoo, far below a 10^11-element shape.
- ``EDGESIM_MAX_FILE_BYTES``: size of one model, array or YAML file read. Default 2 GiB (protobuf's own
  ceiling for an ONNX model).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from simulator.errors import EdgesimError

DEFAULT_MAX_ELEMENTS = 2**28
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
_ELEMENTS_ENV = "EDGESIM_MAX_ELEMENTS"
_FILE_BYTES_ENV = "EDGESIM_MAX_FILE_BYTES"


def _env_limit(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise EdgesimError(f"{name}={text!r}: expected a positive integer, e.g. {name}={default}")
    return value


_max_elements_option: int | None = None


def max_elements() -> int:
    """Elements one tensor may have before edgesim refuses to allocate it (--max-elements, else the
    environment, else the default)."""
    return _max_elements_option or _env_limit(_ELEMENTS_ENV, DEFAULT_MAX_ELEMENTS)


def max_file_bytes() -> int:
    """Bytes one input file may have before edgesim refuses to read it."""
    return _env_limit(_FILE_BYTES_ENV, DEFAULT_MAX_FILE_BYTES)


def set_max_elements(value: int | None) -> None:
    """What ``--max-elements`` does: set the element limit of this run (None: back to the environment's)."""
    global _max_elements_option
    if value is not None and value < 1:
        raise EdgesimError(f"--max-elements {value}: give a positive number of elements")
    _max_elements_option = value


def check_elements(count: int, what: str) -> int:
    """``count`` when one tensor of that many elements may be allocated; else one line saying how to allow it."""
    limit = max_elements()
    if count > limit:
        raise EdgesimError(
            f"{what} has {count:,} elements, over the limit of {limit:,}; if this is really wanted, raise it with "
            f"--max-elements {count} (or {_ELEMENTS_ENV}={count})"
        )
    return count


def check_shape(shape: Iterable[int], what: str) -> tuple[int, ...]:
    """A shape whose tensor may be allocated: non-negative integer dims, element count under the limit."""
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise EdgesimError(f"{what} has a negative dimension in {dims}")
    check_elements(math.prod(dims), f"{what} of shape {'x'.join(map(str, dims)) or 'scalar'}")
    return dims


def check_tensors(tensors: Iterable, what: str) -> None:
    """Every tensor (graph.Tensor-like: ``name``, ``shape``) fits the limit: called before a graph runs, so an
    executor never starts allocating activations a shape made too big."""
    for t in tensors:
        if t.shape is not None:
            check_shape(t.shape, f"{what}: tensor {t.name!r}")


def regular_file(path: Path, what: str) -> int:
    """The size of ``path`` when it is a regular file edgesim may read whole; refuses devices, FIFOs,
    sockets and directories (a model path of /dev/zero would otherwise be read until memory runs out)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise EdgesimError(f"{path}: no such file") from None
    except OSError as exc:
        raise EdgesimError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise EdgesimError(f"{path}: is a directory; give a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise EdgesimError(f"{path}: not a regular file (a device, FIFO or socket); give a {what} file")
    limit = max_file_bytes()
    if info.st_size > limit:
        raise EdgesimError(
            f"{path}: the {what} is {info.st_size:,} bytes, over the limit of {limit:,}; "
            f"raise it with {_FILE_BYTES_ENV}={info.st_size} if the file is genuine"
        )
    return info.st_size


def read_file(path: str | Path, what: str) -> bytes:
    """The bytes of a regular file of bounded size: the one way edgesim reads a file a user names."""
    path = Path(path)
    size = regular_file(path, what)
    try:
        with path.open("rb") as handle:
            data = handle.read(size + 1)
    except OSError as exc:
        raise EdgesimError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > size:  # grew while being read: still bounded, but not the file that was checked
        raise EdgesimError(f"{path}: the {what} changed while being read; try again")
    return data
