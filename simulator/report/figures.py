"""The report's figures, drawn with matplotlib's object API (no pyplot state, no backend switch) under the
default style, so a user's matplotlibrc cannot change them; each is returned as PNG bytes at ``DPI``."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.lines
import matplotlib.patches
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from simulator.report.data import (
    Variant,
    achieved_macs_per_s,
    arithmetic_intensity,
    memory_energy_by_level,
    peak_step,
)

DPI = 220
WIDTH = 6.7  # inches: the text width of an A4 page with 18 mm margins

# Okabe-Ito, readable by colour-blind readers and in grey print
BOUND_COLOURS = {"compute": "#0072B2", "memory": "#D55E00", "overhead": "#999999"}
COMPUTE_COLOUR = "#0072B2"
STATIC_COLOUR = "#BBBBBB"
LEVEL_COLOURS = ("#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442")
VARIANT_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {
    "font.size": 7.5,
    "axes.titlesize": 8.5,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "edgesim",
}


@dataclass(frozen=True)
class Picture:
    """A rendered figure: PNG bytes and its size on the page in inches."""

    png: bytes
    width: float
    height: float
    alt: str


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _render(fig: Figure, alt: str) -> Picture:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = fig.get_size_inches()
    return Picture(buffer.getvalue(), float(width), float(height), alt)


def styled(draw):
    """Run a drawing function under matplotlib's default style plus the report's sizes."""

    def wrapper(*args, **kwargs) -> Picture:
        with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    wrapper.__name__ = draw.__name__
    wrapper.__doc__ = draw.__doc__
    return wrapper


def _layer_axis_height(n: int) -> float:
    return min(9.0, max(2.2, 0.17 * n + 0.9))


def _bytes_formatter(value: float, _pos=None) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if abs(value) >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


@styled
def latency_per_layer(variant: Variant, xmax: float | None = None) -> Picture:
    """Horizontal bars, one per layer in execution order, coloured by what bounds the layer; ``xmax`` gives
    several variants' charts one scale."""
    layers = variant.estimate.layers
    n = len(layers)
    fig = _figure(WIDTH, _layer_axis_height(n))
    ax = fig.add_subplot()
    values = [layer.latency_ms or 0.0 for layer in layers]
    ys = list(range(n))
    ax.barh(ys, values, color=[BOUND_COLOURS.get(layer.bound, "#999999") for layer in layers], height=0.72)
    ax.set_yticks(ys, [layer.name for layer in layers], fontsize=max(4.5, min(7.0, 260 / max(n, 1))))
    ax.invert_yaxis()
    ax.set_xlabel("latency per layer (ms)")
    total = sum(values) or 1.0
    if n <= 45:
        for y, v in zip(ys, values, strict=True):
            ax.annotate(f"{v:.3g}", (v, y), xytext=(2, 0), textcoords="offset points", va="center", fontsize=5.5)
    top = xmax if xmax is not None else max(values)
    ax.set_xlim(0, top * 1.12 if top > 0 else 1)
    handles = []
    for bound, colour in BOUND_COLOURS.items():
        members = [layer for layer in layers if layer.bound == bound]
        if members:
            share = 100 * sum(layer.latency_ms or 0 for layer in members) / total
            label = f"{bound}-bound: {len(members)} layer{'s' * (len(members) != 1)}, {share:.0f}% of the time"
            handles.append(matplotlib.patches.Patch(color=colour, label=label))
    ax.legend(handles=handles, loc="lower right", frameon=False)
    ax.set_title(f"{variant.label}: {total:.3f} ms in total", loc="left")
    ax.grid(axis="x", alpha=0.3)
    return _render(fig, f"latency per layer, {variant.label}")


def _binary_ticks(top: float, target: int = 5) -> list[float]:
    """Tick positions at a power-of-two multiple of B, KiB or MiB, about ``target`` of them up to ``top``."""
    if top <= 0:
        return [0.0]
    unit = 1024 ** min(2, max(0, int(math.log(max(top, 1), 1024))))
    step = 2 ** math.ceil(math.log2(max(top / unit / target, 1 / 64))) * unit
    return [i * step for i in range(int(top // step) + 1)]


def _bytes_axis(axis, top: float) -> None:
    axis.set_major_locator(FixedLocator(_binary_ticks(top)))
    axis.set_major_formatter(FuncFormatter(_bytes_formatter))


def _si_formatter(unit: str):
    return FuncFormatter(lambda value, _pos=None: _si(value, unit) if value > 0 else "0")


@styled
def roofline(variants: Sequence[Variant]) -> Picture:
    """Every layer with MACs at (MACs per byte moved, MACs per second achieved), under the profile's peak
    compute roof at each precision used, the stack's kernel-efficiency roofs, and the bandwidth roof of each
    memory level the weights and activations come from."""
    hw = variants[0].estimate.hardware
    fig = _figure(WIDTH, 4.0)
    ax = fig.add_subplot()
    placed = [
        (i, k, layer, arithmetic_intensity(layer), achieved_macs_per_s(layer))
        for i, v in enumerate(variants)
        for k, layer in enumerate(v.estimate.layers, start=1)
        if arithmetic_intensity(layer) is not None and achieved_macs_per_s(layer) is not None
    ]
    precisions = sorted({layer.precision for _, _, layer, _, _ in placed}) or [next(iter(hw.compute))]
    roofs = {p: hw.compute[p].macs_per_cycle * hw.clock_hz for p in precisions}
    top = max(roofs.values())
    levels = [hw.weights_level] + ([hw.activations_level] if hw.activations_level != hw.weights_level else [])
    bandwidths = {level: hw.memory[level].bandwidth_bytes_per_cycle * hw.clock_hz for level in levels}
    xs = [x for *_, x, _ in placed] or [1.0]
    ys = [y for *_, y in placed] or [top]
    ridge = max(top / bw for bw in bandwidths.values())
    lo = 10 ** math.floor(math.log10(min(min(xs), ridge) / 2))
    hi = 10 ** math.ceil(math.log10(max(max(xs), ridge) * 2))
    y_lo = 10 ** math.floor(math.log10(min(min(ys), lo * min(bandwidths.values())) / 1.5))
    y_hi = top * 2.5
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(y_lo, y_hi)

    def slope_angle(bandwidth: float) -> float:
        a = ax.transData.transform((lo, lo * bandwidth))
        b = ax.transData.transform((lo * 10, lo * 10 * bandwidth))
        return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))

    fig.canvas.draw()  # fix the axes' geometry so label angles follow the diagonals
    fastest = max(bandwidths.values())
    for k, (level, bandwidth) in enumerate(bandwidths.items()):
        colour = LEVEL_COLOURS[k % len(LEVEL_COLOURS)]
        end = top / bandwidth
        ax.plot([lo, end], [lo * bandwidth, top], color=colour, lw=1.4, zorder=2)
        role = "weights" if level == hw.weights_level else "activations"
        if level == hw.weights_level == hw.activations_level:
            role = "weights and activations"
        # the fastest level's label above its line, the others below theirs, so parallel roofs stay legible
        x_label = max(lo * 1.25, end / 60)
        above = bandwidth == fastest
        ax.annotate(
            f"{level} ({role}): {_si(bandwidth, 'B/s')}",
            (x_label, x_label * bandwidth),
            xytext=(3, 3) if above else (6, -4),
            textcoords="offset points",
            rotation=slope_angle(bandwidth),
            rotation_mode="anchor",
            va="bottom" if above else "top",
            color=colour,
            fontsize=6.5,
        )
    for p, roof in roofs.items():
        ax.plot([roof / max(bandwidths.values()), hi], [roof, roof], color="#333333", lw=1.2, zorder=2)
        ax.annotate(
            f"{p} peak: {_si(roof, 'MAC/s')}",
            (hi, roof),
            xytext=(-3, 3),
            textcoords="offset points",
            ha="right",
            fontsize=6.5,
            color="#333333",
        )
    # what the stack's kernels reach: each precision's peak scaled by the efficiency of each op class with MACs
    # (classes whose roofs lie within 30% of each other share one label)
    for p in precisions:
        classes = sorted({layer.op_class for _, _, layer, _, _ in placed if layer.precision == p})
        kernel_roofs = sorted(
            ((roofs[p] * hw.stack.efficiency[c], c) for c in classes if c in hw.stack.efficiency), reverse=True
        )
        groups: list[list[tuple[float, str]]] = []
        for roof, c in kernel_roofs:
            if groups and groups[-1][0][0] / roof < 1.3:
                groups[-1].append((roof, c))
            else:
                groups.append([(roof, c)])
        for group in groups:
            for roof, _ in group:
                ax.plot([lo, hi], [roof, roof], color="#888888", lw=0.7, ls=(0, (5, 3)), zorder=1)
            names = ", ".join(f"{c} {hw.stack.efficiency[c]:g}" for _, c in group)
            ax.annotate(
                f"{p} kernels at the stack's efficiency ({names}): {_si(group[0][0], 'MAC/s')}",
                (hi, group[-1][0]),
                xytext=(-3, -3),
                textcoords="offset points",
                ha="right",
                va="top",
                fontsize=6,
                color="#555555",
            )
    for i, _, layer, x, y in placed:
        ax.scatter(
            x,
            y,
            s=26,
            marker=VARIANT_MARKERS[i % len(VARIANT_MARKERS)],
            zorder=3,
            linewidths=0.5,
            color=BOUND_COLOURS.get(layer.bound, "#999999"),
            edgecolors="white",
        )
    # number the first variant's five slowest layers as in the per-layer table
    slowest = sorted((p for p in placed if p[0] == 0), key=lambda p: -(p[2].latency_ms or 0))[:4]
    for j, (_, k, _, x, y) in enumerate(sorted(slowest, key=lambda p: (p[3], p[4]))):
        ax.annotate(
            f"#{k}",
            (x, y),
            xytext=(0, 11 if j % 2 else 4),
            textcoords="offset points",
            fontsize=6,
            ha="center",
            color="#333333",
        )
    ax.yaxis.set_major_formatter(_si_formatter("MAC/s"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:g}"))
    ax.set_xlabel("arithmetic intensity (MACs per byte moved: weights read + activations read and written)")
    ax.set_ylabel("achieved MAC/s (MACs / layer latency)")
    handles = [
        matplotlib.lines.Line2D([], [], ls="", marker="o", color=c, label=f"{b}-bound")
        for b, c in BOUND_COLOURS.items()
        if any(layer.bound == b for _, _, layer, _, _ in placed)
    ]
    if len(variants) > 1:
        handles += [
            matplotlib.lines.Line2D(
                [], [], ls="", marker=VARIANT_MARKERS[i % len(VARIANT_MARKERS)], color="#555555", label=v.label
            )
            for i, v in enumerate(variants)
        ]
    ax.legend(
        handles=handles,
        loc="lower right",
        frameon=True,
        framealpha=0.9,
        edgecolor="none",
        ncols=2 if len(handles) > 4 else 1,
    )
    ax.grid(which="major", alpha=0.3)
    ax.set_title(f"roofline of {hw.label} at {hw.clock_hz / 1e6:g} MHz (#n: layer numbers of the tables)", loc="left")
    return _render(fig, "roofline")


def energy_parts(variant: Variant) -> list[tuple[str, list[float]]]:
    """(component, uJ per layer): compute, each memory level, static (absent on energy-only profiles)."""
    hw = variant.estimate.hardware
    layers = variant.estimate.layers
    splits = [memory_energy_by_level(layer, hw) for layer in layers]
    levels = list(dict.fromkeys(level for split in splits for level in split))
    parts = [("compute", [layer.energy_compute_uj for layer in layers])]
    parts += [(f"{level} memory", [split.get(level, 0.0) for split in splits]) for level in levels]
    if not hw.energy_only:
        parts.append(("static", [layer.energy_static_uj for layer in layers]))
    return parts


def _part_colour(name: str, k: int) -> str:
    if name == "compute":
        return COMPUTE_COLOUR
    if name == "static":
        return STATIC_COLOUR
    return LEVEL_COLOURS[(k - 1) % len(LEVEL_COLOURS)]


def _stacked(ax, ys, parts, height: float) -> list[float]:
    left = [0.0] * len(ys)
    for k, (name, values) in enumerate(parts):
        ax.barh(ys, values, left=left, color=_part_colour(name, k), height=height, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    return left


@styled
def energy_per_layer(variant: Variant) -> Picture:
    """Per layer: the dynamic energy (compute and each memory level) stacked; beside it, the static energy
    (static power over the layer's latency), each on its own scale."""
    layers = variant.estimate.layers
    n = len(layers)
    parts = energy_parts(variant)
    dynamic = [p for p in parts if p[0] != "static"]
    static = [p for p in parts if p[0] == "static"]
    fig = _figure(WIDTH, _layer_axis_height(n))
    if static:
        grid = fig.add_gridspec(1, 2, width_ratios=[3, 1.3])
        ax = fig.add_subplot(grid[0])
        side = fig.add_subplot(grid[1], sharey=ax)
    else:
        ax, side = fig.add_subplot(), None
    ys = list(range(n))
    totals = _stacked(ax, ys, dynamic, 0.72)
    ax.set_yticks(ys, [layer.name for layer in layers], fontsize=max(4.5, min(7.0, 260 / max(n, 1))))
    ax.invert_yaxis()
    ax.set_xlabel("dynamic energy per layer (µJ): compute + memory")
    ax.legend(loc="lower right", frameon=False)
    ax.set_title(f"{variant.label}: dynamic {sum(totals):,.2f} µJ", loc="left")
    ax.grid(axis="x", alpha=0.3)
    if side is not None:
        values = static[0][1]
        side.barh(ys, values, color=STATIC_COLOUR, height=0.72)
        side.tick_params(axis="y", labelleft=False)
        side.set_xlabel("static energy (µJ)")
        side.set_title(f"static {sum(values):,.1f} µJ", loc="left")
        side.grid(axis="x", alpha=0.3)
    return _render(fig, f"energy per layer, {variant.label}")


@styled
def energy_totals(variants: Sequence[Variant]) -> Picture:
    """One stacked bar per variant: left everything (static included), right the dynamic part alone, where
    precision and compression show (static power over the latency swamps it on a microcontroller)."""
    n = len(variants)
    fig = _figure(WIDTH, max(1.7, 0.42 * n + 1.1))
    grid = fig.add_gridspec(1, 2)
    ax_all = fig.add_subplot(grid[0])
    ax_dyn = fig.add_subplot(grid[1])
    ys = list(range(n))
    parts = [energy_parts(v) for v in variants]
    names = list(dict.fromkeys(name for p in parts for name, _ in p))

    def components(keep) -> list[tuple[str, list[float]]]:
        return [
            (name, [sum(next((vals for nm, vals in p if nm == name), [0.0])) for p in parts])
            for name in names
            if keep(name)
        ]

    for ax, keep, title in (
        (ax_all, lambda name: True, "per inference, all components"),
        (ax_dyn, lambda name: name != "static", "dynamic only (compute + memory)"),
    ):
        comps = components(keep)
        left = [0.0] * n
        for name, values in comps:
            ax.barh(ys, values, left=left, color=_part_colour(name, names.index(name)), height=0.6, label=name)
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, total in zip(ys, left, strict=True):
            ax.annotate(
                f"{total:,.0f} µJ" if total >= 100 else f"{total:.3g} µJ",
                (total, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=6.5,
            )
        ax.set_xlim(0, max(left) * 1.3 if max(left) > 0 else 1)
        ax.set_yticks(ys, [v.label for v in variants])
        ax.invert_yaxis()
        ax.set_xlabel("µJ")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        ax.set_title(title, loc="left")
        ax.grid(axis="x", alpha=0.3)
    ax_dyn.tick_params(axis="y", labelleft=False)
    handles = [matplotlib.patches.Patch(color=_part_colour(nm, k), label=nm) for k, nm in enumerate(names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(names), frameon=False)
    return _render(fig, "energy per inference by component")


def _capacity_panel(ax, values: Sequence[float], capacity: float, level: str) -> None:
    """A slim panel: each variant's total as a share of the level's full capacity, the capacity a red line."""
    xs = list(range(len(values)))
    shares = [100 * v / capacity if capacity else 0.0 for v in values]
    ax.bar(xs, shares, color=[VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i in xs], width=0.6)
    ax.axhline(100, color="#CC0000", lw=1.2)
    ax.set_ylim(0, max(110, *(s * 1.15 for s in shares)))
    ax.set_xticks(xs, [f"{s:.1f}%" for s in shares], fontsize=6, rotation=90 if len(xs) > 2 else 0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:g}%"))
    ax.set_title(f"of {level}", fontsize=7, loc="left")
    ax.annotate(
        _bytes_formatter(capacity),
        (0.03, 100),
        xycoords=("axes fraction", "data"),
        xytext=(0, 2),
        textcoords="offset points",
        fontsize=6,
        color="#CC0000",
    )


def _layer_ticks(ax, names: Sequence[str]) -> None:
    n = len(names)
    if n <= 48:
        ax.set_xticks(range(n), names, rotation=90, fontsize=max(4.5, min(6.5, 200 / max(n, 1))))
    else:
        ax.set_xlabel("execution step")


@styled
def arena_timeline(variants: Sequence[Variant]) -> Picture:
    """Live activation bytes at every step of the execution order, the peak marked; beside it, the planned
    arena of each variant against the activations level's capacity."""
    est0 = variants[0].estimate
    hw = est0.hardware
    fig = _figure(WIDTH, 3.5)
    grid = fig.add_gridspec(1, 2, width_ratios=[5.4, 1])
    ax = fig.add_subplot(grid[0])
    side = fig.add_subplot(grid[1])
    for i, v in enumerate(variants):
        live = v.estimate.arena.live_bytes()
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        steps = list(range(len(live)))
        ax.step(steps, live, where="mid", color=colour, lw=1.3, label=v.label)
        if len(variants) == 1:
            ax.fill_between(steps, live, step="mid", color=colour, alpha=0.15)
        step, peak = peak_step(v.estimate)
        ax.plot([step], [peak], marker="v", color=colour, ms=6, zorder=4)
        ax.annotate(
            f"peak {peak:,} B",
            (step, peak),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=6.5,
            color=colour,
            fontweight="bold",
        )
        arena = v.estimate.peak_ram_bytes
        if arena > peak:
            ax.axhline(arena, color=colour, lw=0.8, ls=":")
    _layer_ticks(ax, [layer.name for layer in est0.layers])
    top = max(
        [max(v.estimate.arena.live_bytes() or [0]) for v in variants] + [v.estimate.peak_ram_bytes for v in variants]
    )
    ax.set_ylim(0, top * 1.22 if top > 0 else 1)
    _bytes_axis(ax.yaxis, top * 1.22)
    ax.set_ylabel("live activation bytes")
    ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1:
        ax.legend(loc="upper right", frameon=False)
    ax.set_title("activation arena over the execution order (dotted: planned arena size)", loc="left")
    _capacity_panel(side, [v.estimate.peak_ram_bytes for v in variants], est0.capacity("ram"), hw.activations_level)
    return _render(fig, "activation arena timeline")


@styled
def flash_per_layer(variants: Sequence[Variant]) -> Picture:
    """Stored weight bytes per layer (grouped by variant) and their running total; beside it, each variant's
    total against the weights level's capacity."""
    est0 = variants[0].estimate
    hw = est0.hardware
    fig = _figure(WIDTH, 3.5)
    grid = fig.add_gridspec(1, 2, width_ratios=[5.4, 1])
    ax = fig.add_subplot(grid[0])
    side = fig.add_subplot(grid[1])
    k = len(variants)
    width = 0.8 / k
    twin = ax.twinx()
    top = 0
    for i, v in enumerate(variants):
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        values = [layer.weight_bytes for layer in v.estimate.layers]
        top = max(top, max(values, default=0))
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(values))]
        ax.bar(xs, values, width=width, color=colour, label=v.label)
        running = [sum(values[: j + 1]) for j in range(len(values))]
        twin.step(range(len(values)), running, where="mid", color=colour, lw=1.0, ls="--")
    _layer_ticks(ax, [layer.name for layer in est0.layers])
    ax.set_ylim(0, top * 1.1 if top else 1)
    _bytes_axis(ax.yaxis, top * 1.1)
    total = max(v.estimate.flash_bytes for v in variants)
    twin.set_ylim(0, total * 1.1 if total else 1)
    _bytes_axis(twin.yaxis, total * 1.1)
    twin.spines["right"].set_visible(True)
    twin.set_ylabel("running total (dashed)")
    ax.set_ylabel("stored weight bytes per layer")
    ax.grid(axis="y", alpha=0.3)
    if k > 1:
        ax.legend(loc="upper left", frameon=False)
    ax.set_title(f"weights per layer as stored in {hw.weights_level}", loc="left")
    _capacity_panel(side, [v.estimate.flash_bytes for v in variants], est0.capacity("flash"), hw.weights_level)
    return _render(fig, "flash per layer")


def pareto(rows, title: str) -> Picture:
    """The Pareto chart of ``edgesim compare --plot`` (simulator.compare.plot_pareto), at the report's DPI."""
    import tempfile
    from pathlib import Path

    from simulator.compare import plot_pareto

    with tempfile.TemporaryDirectory(prefix="edgesim-report-") as tmp:
        path = Path(tmp) / "pareto.png"
        with matplotlib.style.context("default"), matplotlib.rc_context({"savefig.dpi": DPI}):
            plot_pareto(rows, str(path), title)
        data = path.read_bytes()
    return Picture(data, 7.0, 4.5, "Pareto chart")
