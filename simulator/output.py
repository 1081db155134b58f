"""Writing results: aligned text tables, JSON and CSV, and files written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
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
    """Write ``path`` atomically: the data goes to a temporary file beside it, reaches the disk, and is renamed
    over ``path``, so readers see the old file or the whole new one and a crash leaves nothing half-written.
    The file gets the permissions an ordinary write would (0666 less the umask), not mkstemp's 0600."""
    target = Path(path)
    if not target.parent.is_dir():
        raise EdgesimError(f"{path}: the directory {str(target.parent)!r} does not exist; create it first")
    if target.is_dir():
        raise EdgesimError(f"{path}: is a directory; give a file name")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(text: str, path: str | None) -> None:
    """Print to stdout, or write ``path`` atomically."""
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    write_bytes(text.encode("utf-8"), path)
