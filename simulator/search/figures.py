"""Charts of search and sweep results (matplotlib object API, written atomically through simulator.output)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from simulator.output import write_bytes


def _figure(size=(7, 4.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | Path) -> None:
    buffer = io.BytesIO()
    suffix = Path(path).suffix.lower()[1:] or "png"
    fig.savefig(buffer, format=suffix, metadata={"Date": None} if suffix == "pdf" else None)
    write_bytes(buffer.getvalue(), path)


def quality(value: float | None, accuracy: bool) -> float:
    if value is None:
        return math.nan
    return 100 * value if accuracy else min(max(value, -100.0), 100.0)


def search_figure(result, title: str):
    """Budget use vs fidelity: every evaluated plan, the front, the baselines and the chosen plan."""
    from simulator.search.front import budget_use

    limits = dict(result.budget.limits)
    acc = result.objective == "accuracy"
    fig = _figure()
    ax = fig.add_subplot()

    def y(p):
        return quality(p.accuracy if acc else p.sqnr_db, acc)

    ax.scatter([budget_use(p, limits) for p in result.points], [y(p) for p in result.points], s=12, color="tab:gray",
               alpha=0.5, label="evaluated plans")  # fmt: skip
    xs = [budget_use(p, limits) for p in result.front]
    ax.step(xs, [y(p) for p in result.front], where="post", color="tab:green", label="front")
    ax.scatter(xs, [y(p) for p in result.front], s=25, color="tab:green", zorder=3)
    for b in result.baselines:
        ax.scatter([budget_use(b, limits)], [y(b)], marker="s", s=40, zorder=4, label=b.name)
    if result.chosen is not None:
        ax.scatter([budget_use(result.chosen, limits)], [y(result.chosen)], marker="*", s=160, color="tab:red",
                   zorder=5, label=f"chosen ({result.chosen.name})")  # fmt: skip
    ax.axvline(1.0, color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel("budget use (largest value / limit; <= 1 fits)")
    ax.set_ylabel("accuracy (%)" if acc else "output SQNR (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig
