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
    limits = dict(result.budget.limits)
    first = next(iter(limits))
    acc = result.objective == "accuracy"
    fig = _figure()
    ax = fig.add_subplot()

    def y(p):
        return quality(p.accuracy if acc else p.sqnr_db, acc)

    def x(p):
        return p.totals[first] / limits[first]

    ax.scatter([x(p) for p in result.points], [y(p) for p in result.points], s=12, color="tab:gray",
               alpha=0.5, label="evaluated plans")  # fmt: skip
    xs = [x(p) for p in result.front]
    ax.scatter(
        xs, [y(p) for p in result.front], s=25, color="tab:green", zorder=3, label="front (all budgeted metrics)"
    )
    for b in result.baselines:
        ax.scatter([x(b)], [y(b)], marker="s", s=40, zorder=4, label=b.name)
    if result.chosen is not None:
        ax.scatter([x(result.chosen)], [y(result.chosen)], marker="*", s=160, color="tab:red",
                   zorder=5, label=f"chosen ({result.chosen.name})")  # fmt: skip
    ax.axvline(1.0, color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel(
        f"{first} / its limit (<= 1 fits); other limits: {', '.join(m for m in limits if m != first) or 'none'}"
    )
    ax.set_ylabel("accuracy (%)" if acc else "output SQNR (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def sweep_latency_figure(rows: list[dict]):
    """Latency vs fidelity, one panel per chip/stack; a marker per model, rows that do not run left out."""
    hardware = list(dict.fromkeys(r["hardware"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = min(3, len(hardware))
    rows_n = math.ceil(len(hardware) / cols)
    fig = _figure((4.2 * cols, 3.4 * rows_n))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, hw in zip(axes.flat, hardware, strict=False):
        for r in rows:
            if r["hardware"] != hw or r["latency_ms"] is None:
                continue
            acc = r["accuracy"] is not None
            y = quality(r["accuracy"] if acc else r["sqnr_db"] if r["sqnr_db"] is not None else 100.0, acc)
            fits = bool(r["fits_flash"] and r["fits_ram"])
            ax.scatter([r["latency_ms"]], [y], color=colors[r["model"]], marker="o" if fits else "x", s=28)
            ax.annotate(r["variant"], (r["latency_ms"], y), fontsize=5, xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(hw, fontsize=9)
        ax.set_xlabel("latency (ms, log)", fontsize=8)
        ax.set_ylabel("accuracy % / SQNR dB", fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(hardware) :]:
        ax.set_visible(False)
    for m in models:
        axes.flat[0].scatter([], [], color=colors[m], label=m)
    fig.legend(fontsize=7, loc="outside lower center", ncols=min(len(models), 5), frameon=False)
    return fig


def sweep_fit_figure(rows: list[dict]):
    """Which models fit which chips: per model and chip/stack, how many of the variants the stack runs fit its
    flash and RAM ("fit/run"; a variant the stack cannot run is not counted as a misfit)."""
    hardware = list(dict.fromkeys(r["hardware"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fit = [[0] * len(hardware) for _ in models]
    run = [[0] * len(hardware) for _ in models]
    for r in rows:
        i, j = models.index(r["model"]), hardware.index(r["hardware"])
        if r["latency_ms"] is not None or r["energy_uj"] is not None:
            run[i][j] += 1
            fit[i][j] += int(bool(r["fits_flash"] and r["fits_ram"]))
    fig = _figure((1.3 * len(hardware) + 2.5, 0.5 * len(models) + 2))
    ax = fig.add_subplot()
    share = [[f / n if n else math.nan for f, n in zip(fr, nr, strict=True)] for fr, nr in zip(fit, run, strict=True)]
    ax.imshow(share, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i in range(len(models)):
        for j in range(len(hardware)):
            text = f"{fit[i][j]}/{run[i][j]}" if run[i][j] else "does not run"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(hardware)), hardware, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title("variants that fit flash and RAM / variants the stack runs", fontsize=10)
    return fig
