"""Writing results: aligned text tables, JSON and CSV, and files written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.errors import EdgesimError


def shape_text(shape: Sequence[int] | None) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape) or "scalar"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """A plain-text table; numeric columns are right-aligned with thousands separators."""
    numeric = numeric or [False] * len(headers)

    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in text]) + "\n"


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to the output a user named, never destroying what edgesim does not own:

    - ``-``: standard output.
    - a regular file, or a name that does not exist yet: written atomically (a temporary file beside it gets
      the data, reaches the disk and is renamed over it), so readers see the old file or the whole new one and
      a failed write leaves neither a partial file nor the temporary behind. A new file gets 0666 less the
      umask (not mkstemp's 0600); a replaced file keeps its permissions.
    - a symbolic link: followed, and its target written as above. The link is the user's (a dotfile manager's
      link, a ``latest`` link into a results tree): replacing it with a regular file would silently cut it
      from what it points at, and refusing would break the common case of writing through it.
    - a device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a named pipe): written directly as a stream;
      a rename would replace the node itself (as root, ``-o /dev/full`` used to replace the system's).
    - a directory: an error.
    """
    if str(path) == "-":
        _write_stream(sys.stdout.buffer, data, "standard output")
        return
    target = Path(os.path.realpath(path))  # follows every link, also a dangling one's target name
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise EdgesimError(f"{path}: cannot write it ({exc.strerror or exc})") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise EdgesimError(f"{path}: is a directory; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            with open(target, "wb") as handle:
                _write_stream(handle, data, str(path))
        except OSError as exc:
            raise EdgesimError(f"{path}: cannot write it ({exc.strerror or exc})") from None
        return
    if not target.parent.is_dir():
        raise EdgesimError(f"{path}: the directory {str(target.parent)!r} does not exist; create it first")
    _write_atomically(data, target, path, None if info is None else stat.S_IMODE(info.st_mode))


def _write_stream(handle, data: bytes, what: str) -> None:
    try:
        handle.write(data)
        handle.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise EdgesimError(f"{what}: cannot write it ({exc.strerror or exc})") from None


def _write_atomically(data: bytes, target: Path, shown: str | Path, mode: int | None) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise EdgesimError(f"{shown}: cannot write in {str(target.parent)!r} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EdgesimError(f"{shown}: cannot write it ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(text: str, path: str | None) -> None:
    """Print to stdout, or write ``path`` as :func:`write_bytes` does."""
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    write_bytes(text.encode("utf-8"), path)
