"""Reading the YAML files users write (model specs, plans, hardware profiles): only through yaml.safe_load,
and every failure as one line saying what went wrong and where in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.errors import EdgesimError


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document; errors say what could not be read (the caller names the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgesimError(f"not a UTF-8 text file; a {what} is YAML") from None
    except OSError as exc:
        raise EdgesimError(f"cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise EdgesimError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


def dump_yaml(data: Any) -> str:
    """A document as block YAML in the data's own key order (profiles written by edgesim)."""
    return yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)
