"""Reading the .npy / .npz arrays users give (``run --input``, ``--calib``, ``verify --data``, a spec's weights).

An array file is untrusted input: its header says how big the array is, so the header is checked against the
file's size and the element limit (simulator/limits.py) before numpy allocates anything, pickled objects are
never loaded (``allow_pickle=False``: unpickling runs code), and only numeric arrays are accepted.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np

from simulator.errors import EdgesimError
from simulator.limits import check_elements, regular_file

_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what a tensor can hold
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _checked_header(handle, what: str, available: int | None) -> None:
    """Refuse an array whose header is malformed, non-numeric, larger than the limit or than its file."""
    try:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(handle, max_header_size=10000)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser (tokenize, ast) raises many types on junk
        raise EdgesimError(
            f"{what}: not a valid .npy array ({str(exc).splitlines()[0] if str(exc) else exc})"
        ) from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise EdgesimError(f"{what}: holds {dtype} data; edgesim reads numeric arrays (bool, int, uint, float)")
    count = check_elements(math.prod(shape), f"{what} (shape {shape})")
    if available is not None and count * dtype.itemsize > available:
        raise EdgesimError(
            f"{what}: the header says shape {shape} of {dtype} ({count * dtype.itemsize:,} bytes) but the file "
            f"holds {available:,}; the file is truncated or corrupt"
        )


def _check_npz(data: bytes, what: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    header_what = f"{what} array {info.filename.removesuffix('.npy')!r}"
                    _checked_header(member, header_what, info.file_size)
    except EdgesimError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types (BadZipFile, ValueError, EOFError) on junk
        raise EdgesimError(f"{what}: not a valid .npz archive ({exc})") from None


def _fits_float32(array: np.ndarray) -> bool:
    if array.dtype.itemsize <= 4:
        return bool(np.all(np.isfinite(array)))
    return bool(np.all(np.abs(array) <= _FLOAT32_MAX))  # False for NaN too


def load_arrays(path: str | Path, what: str, *, finite: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a .npy, or the arrays (by name) of an .npz; ``finite`` refuses NaN, infinity and floats
    beyond float32's range (edgesim computes in float32, where 1e300 is infinity): calibration ranges and
    integer kernels cannot represent them."""
    from simulator.limits import read_file

    path = Path(path)
    label = f"{path}: {what}"
    regular_file(path, what)
    data = read_file(path, what)
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        _check_npz(data, label)
    else:
        _checked_header(io.BytesIO(data), label, None)
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {k: loaded[k] for k in loaded.files} if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgesimError(f"{label}: cannot read it ({reason}); give a .npy or .npz file") from None
    if finite:
        for name, array in arrays.items() if isinstance(arrays, dict) else [("", arrays)]:
            if array.dtype.kind == "f" and not _fits_float32(array):
                where = f" array {name!r}" if name else ""
                raise EdgesimError(
                    f"{label}{where} holds NaN, infinite or beyond-float32 values; give finite float32 numbers"
                )
    return arrays
