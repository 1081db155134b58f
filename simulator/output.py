"""Writing results: aligned text tables, JSON and CSV, and files written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.errors import EdgesimError


def shape_text(shape: Sequence[int] | None) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape) or "scalar"


_BINARY_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def format_bytes(n: float) -> str:
    """A size for people to read, in binary multiples as memory parts are sold (``2 MiB``, ``261.6 KiB``,
    ``768 B``): the one formatter every table, verdict and chart uses, so a size reads the same everywhere."""
    for unit, scale in _BINARY_UNITS:
        if abs(n) >= scale:
            value = n / scale
            text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
            return f"{text} {unit}"
    return f"{n:,.0f} B" if n == int(n) else f"{n:.4g} B"


def ellipsize(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: Sequence[bool] | None = None,
    max_width: int | None = None,
    wrap: Sequence[int] = (-1,),
) -> str:
    """A plain-text table; numeric columns are right-aligned with thousands separators. With ``max_width``
    (a terminal's width), the text columns ``wrap`` (in that order) narrow and wrap onto continuation lines
    until no line is longer than that, each keeping at least 16 characters."""
    numeric = numeric or [False] * len(headers)

    def cell(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    excess = sum(widths) + 2 * (len(widths) - 1) - max_width if max_width is not None else 0
    narrowed = []
    for col in (c % len(headers) for c in wrap if headers):
        if excess <= 0 or numeric[col]:
            continue
        floor = max(len(headers[col]), 16)
        cut = min(excess, widths[col] - floor)
        if cut > 0:
            widths[col] -= cut
            excess -= cut
            narrowed.append(col)
    if narrowed:
        wrapped = []
        for r in text:
            pieces = {c: textwrap.wrap(r[c], widths[c], break_on_hyphens=False) or [""] for c in narrowed}
            for k in range(max(len(p) for p in pieces.values())):
                wrapped.append([(pieces[c][k] if k < len(pieces[c]) else "") if c in pieces else (v if k == 0 else "")
                                for c, v in enumerate(r)])  # fmt: skip
        text = wrapped

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in text]) + "\n"


def terminal_width(path: str | None) -> int | None:
    """The width to fit a text table to: the terminal's when it goes to standard output, else None (a file
    keeps its full lines)."""
    if path is not None and path != "-":
        return None
    return shutil.get_terminal_size().columns


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
