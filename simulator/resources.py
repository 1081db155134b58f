"""Where the data that ships with edgesim lives: the model zoo and the hardware profiles.

In a wheel they are installed as ``simulator/_models`` and ``simulator/_hwprofiles`` (see setup.cfg's
package_dir), so no top-level ``models`` package pollutes site-packages; in a source checkout they are the
repository's ``models/`` and ``hwprofiles/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """The directory of ``kind`` ('models' or 'hwprofiles')."""
    installed = _PACKAGE / f"_{kind}"
    return installed if installed.is_dir() else _PACKAGE.parent / kind
