"""Progress bars for long work (comparing many plans, rendering a report): on a terminal only.

Piped or captured stderr (CI logs, scripts, tests) gets nothing, so machine-readable output and one-line
errors stay clean. The bar is removed when the work ends.
"""

from __future__ import annotations

import sys
from typing import TextIO


def progress_bar(total: int | None, desc: str, unit: str = "step", stream: TextIO | None = None):
    """A tqdm bar on ``stream`` (default stderr) when it is a terminal, else a silent one with the same API."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    # delay: work that ends within half a second shows no bar at all
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        disable=not interactive,
        leave=False,
        dynamic_ncols=True,
        delay=0.5,
    )
