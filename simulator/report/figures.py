"""The report's figures, drawn with matplotlib's object API (no pyplot state, no backend switch) under the
default style, so a user's matplotlibrc cannot change them; each is returned as PNG bytes at ``DPI``."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import matplotlib.lines
import matplotlib.patches
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from simulator.output import ellipsize, format_bytes
from simulator.report.data import (
    Variant,
    achieved_macs_per_s,
    arithmetic_intensity,
    memory_energy_by_level,
    peak_step,
)
from simulator.report.labels import PointLabel, freeze_layout, marker_boxes, place_labels, place_text
from simulator.report.labels import text_boxes as _text_boxes

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
    figure: Figure | None = field(default=None, compare=False, repr=False)  # kept for layout checks
    notes: tuple[str, ...] = ()  # labels that found no free place on the chart, for its caption


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _render(fig: Figure, alt: str, notes: Sequence[str] = ()) -> Picture:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = fig.get_size_inches()
    return Picture(buffer.getvalue(), float(width), float(height), alt, fig, tuple(notes))


def styled(draw):
    """Run a drawing function under matplotlib's default style plus the report's sizes."""

    def wrapper(*args, **kwargs) -> Picture:
        with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    wrapper.__name__ = draw.__name__
    wrapper.__doc__ = draw.__doc__
    return wrapper


ALL_LAYERS_UP_TO = 30  # a per-layer chart draws every layer up to this many; beyond, the costliest and the rest
TOP_LAYERS = 24
NAME_CHARS = 34  # a layer name on an axis is cut with an ellipsis beyond this
LABEL_CHARS = 28  # a variant or plan name on a chart
GROUP_COLOUR = "#E3E3E3"


@dataclass(frozen=True)
class Bar:
    """One bar of a per-layer chart: a layer, or the group of layers not drawn one by one."""

    label: str
    indices: tuple[int, ...]  # the layers it stands for (0-based, execution order)


def layer_bars(costs: Sequence[float], names: Sequence[str]) -> list[Bar]:
    """Every layer in execution order when there are few; else the TOP_LAYERS costliest, costliest first,
    and one bar for the others. Labels carry the layer's number in the report's per-layer tables, where every
    layer's numbers stay."""
    n = len(costs)

    def label(i: int) -> str:
        return f"#{i + 1} {ellipsize(names[i], NAME_CHARS)}"

    if n <= ALL_LAYERS_UP_TO:
        return [Bar(label(i), (i,)) for i in range(n)]
    top = sorted(range(n), key=lambda i: (-costs[i], i))[:TOP_LAYERS]
    chosen = set(top)
    rest = tuple(i for i in range(n) if i not in chosen)
    return [Bar(label(i), (i,)) for i in top] + [Bar(f"other {len(rest):,} layers", rest)]


def _bar_values(values: Sequence[float], bars: Sequence[Bar]) -> list[float]:
    return [float(sum(values[i] for i in bar.indices)) for bar in bars]


def _latencies(variant: Variant) -> list[float]:
    return [layer.latency_ms or 0.0 for layer in variant.estimate.layers]


def latency_scale(variants: Sequence[Variant]) -> float:
    """The slowest single layer of any variant: one scale for all their latency charts."""
    return max((value for v in variants for value in _latencies(v)), default=0.0)


def _grouped(bars: Sequence[Bar]) -> bool:
    return bool(bars) and len(bars[-1].indices) > 1


def _cut_group_bar(ax, bars: Sequence[Bar], total: float, limit: float, unit: str) -> None:
    """The grouped bar usually dwarfs single layers: the axis keeps the single layers' scale, the grouped
    bar is cut at the frame (hatched) and its value written inside it."""
    if not _grouped(bars) or total <= limit:
        return
    y = len(bars) - 1
    ax.barh([y], [limit], color="none", edgecolor="#777777", hatch="////", height=0.72, lw=0)
    box = {"boxstyle": "square,pad=0.1", "fc": "white", "lw": 0}
    ax.annotate(f"{_short(total)} {unit} in all (bar cut)", (limit, y), xytext=(-3, 0), textcoords="offset points",
                ha="right", va="center", fontsize=5.5, bbox=box)  # fmt: skip


def _layer_axis_height(n_bars: int) -> float:
    return min(6.2, max(2.2, 0.17 * n_bars + 1.4))


def _bytes_formatter(value: float, _pos=None) -> str:
    return format_bytes(value)


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _bar_title(label: str, total: str, n_layers: int, bars: Sequence[Bar]) -> str:
    title = f"{ellipsize(label, LABEL_CHARS)}: {total}"
    if _grouped(bars):
        title += f"; top {len(bars) - 1} of {n_layers:,} layers"
    return title


@styled
def latency_per_layer(variant: Variant, xmax: float | None = None) -> Picture:
    """Horizontal bars, one per layer (or the costliest and the rest grouped), coloured by what bounds the
    layer; ``xmax`` gives several variants' charts one scale."""
    layers = variant.estimate.layers
    values = _latencies(variant)
    bars = layer_bars(values, [layer.name for layer in layers])
    heights = _bar_values(values, bars)
    n = len(bars)
    fig = _figure(WIDTH, _layer_axis_height(n))
    ax = fig.add_subplot()
    ys = list(range(n))
    colours = [
        BOUND_COLOURS.get(layers[b.indices[0]].bound, "#999999") if len(b.indices) == 1 else GROUP_COLOUR for b in bars
    ]
    ax.barh(ys, heights, color=colours, height=0.72, edgecolor=["none"] * n)
    ax.set_yticks(ys, [b.label for b in bars], fontsize=6.5 if n <= 24 else 5.8)
    ax.invert_yaxis()
    ax.set_xlabel("latency per layer (ms)")
    total = sum(values)
    top = xmax if xmax is not None else max(values, default=0.0)
    limit = top * 1.16 if top > 0 else 1.0
    ax.set_xlim(0, limit)
    for y, v in zip(ys, heights, strict=True):
        if v <= top:
            ax.annotate(_short(v), (v, y), xytext=(2, 0), textcoords="offset points", va="center", fontsize=5.5)
    _cut_group_bar(ax, bars, heights[-1] if heights else 0.0, limit, "ms")
    handles = []
    for bound, colour in BOUND_COLOURS.items():
        members = [layer for layer in layers if layer.bound == bound]
        if members:
            share = 100 * sum(layer.latency_ms or 0 for layer in members) / (total or 1.0)
            label = f"{bound}-bound: {len(members):,} layer{'s' * (len(members) != 1)}, {share:.0f}% of the time"
            handles.append(matplotlib.patches.Patch(color=colour, label=label))
    if _grouped(bars):
        handles.append(matplotlib.patches.Patch(color=GROUP_COLOUR, label="the other layers, added up"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(2, len(handles)), frameon=False)
    ax.set_title(_bar_title(variant.label, f"{total:,.3f} ms in total", len(layers), bars), loc="left")
    ax.grid(axis="x", alpha=0.3)
    return _render(fig, f"latency per layer, {variant.label}")


def _binary_ticks(top: float, target: int = 5) -> list[float]:
    """Tick positions at a power-of-two multiple of B, KiB or MiB, about ``target`` of them up to ``top``."""
    if top <= 0:
        return [0.0]
    unit = 1024 ** min(4, max(0, int(math.log(max(top, 1), 1024))))
    step = 2 ** math.ceil(math.log2(max(top / unit / target, 1 / 64))) * unit
    return [i * step for i in range(int(top // step) + 1)]


def _bytes_axis(axis, top: float) -> None:
    axis.set_major_locator(FixedLocator(_binary_ticks(top)))
    axis.set_major_formatter(FuncFormatter(_bytes_formatter))


def _si_formatter(unit: str):
    return FuncFormatter(lambda value, _pos=None: _si(value, unit) if value > 0 else "0")


def _roof_candidates(x_right: float, roof: float, below: bool) -> list[dict]:
    """Places for a horizontal roof's label: at the right end, else stepping left, above or below it."""
    out = []
    for side in (below, not below):
        for shift in (1, 2, 3, 5, 10, 20, 30, 100, 300):
            out.append(
                {
                    "xy": (x_right / shift, roof),
                    "xytext": (-3, -2 if side else 2),
                    "ha": "right",
                    "va": "top" if side else "bottom",
                }
            )
    return out


@styled
def roofline(variants: Sequence[Variant]) -> Picture:
    """Every layer with MACs at (MACs per byte moved, MACs per second achieved), under the profile's peak
    compute roof at each precision used, the stack's kernel-efficiency roofs, and the bandwidth roof of each
    memory level the weights and activations come from."""
    hw = variants[0].estimate.hardware
    fig = _figure(WIDTH, 4.4)
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
    level_colours = {level: LEVEL_COLOURS[k % len(LEVEL_COLOURS)] for k, level in enumerate(bandwidths)}
    for level, bandwidth in bandwidths.items():
        ax.plot([lo, top / bandwidth], [lo * bandwidth, top], color=level_colours[level], lw=1.4, zorder=2)
    for roof in roofs.values():
        ax.plot([roof / max(bandwidths.values()), hi], [roof, roof], color="#333333", lw=1.2, zorder=2)
    # what the stack's kernels reach: each precision's peak scaled by the efficiency of each op class with MACs
    # (classes whose roofs lie within 30% of each other share one label)
    kernel_labels = []
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
            kernel_labels.append((f"{p} kernels at the stack's efficiency ({names}): {_si(group[0][0], 'MAC/s')}",
                                  group[-1][0]))  # fmt: skip
    # one scatter per (variant, bound): a marker shape per variant, a colour per bound
    for (i, bound), members in itertools.groupby(
        sorted(placed, key=lambda p: (p[0], p[2].bound, p[1])), key=lambda p: (p[0], p[2].bound)
    ):
        members = list(members)
        ax.scatter(
            [m[3] for m in members],
            [m[4] for m in members],
            s=26,
            marker=VARIANT_MARKERS[i % len(VARIANT_MARKERS)],
            zorder=3,
            linewidths=0.5,
            color=BOUND_COLOURS.get(bound, "#999999"),
            edgecolors="white",
        )
    ax.yaxis.set_major_formatter(_si_formatter("MAC/s"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:g}"))
    ax.set_xlabel("arithmetic intensity (MACs per byte moved: weights read + activations read and written)")
    ax.set_ylabel("achieved MAC/s (MACs / layer latency)")
    # the bandwidth roofs are named in the legend: a label along a diagonal either crosses its own line or,
    # with several levels, the neighbouring one
    handles = []
    for level, bandwidth in bandwidths.items():
        role = "weights" if level == hw.weights_level else "activations"
        if level == hw.weights_level == hw.activations_level:
            role = "weights and activations"
        label = f"{ellipsize(level, 16)} ({role}): {_si(bandwidth, 'B/s')}"
        handles.append(matplotlib.lines.Line2D([], [], color=level_colours[level], lw=1.4, label=label))
    handles += [
        matplotlib.lines.Line2D([], [], ls="", marker="o", color=c, label=f"{b}-bound")
        for b, c in BOUND_COLOURS.items()
        if any(layer.bound == b for _, _, layer, _, _ in placed)
    ]
    if len(variants) > 1:
        handles += [
            matplotlib.lines.Line2D(
                [],
                [],
                ls="",
                marker=VARIANT_MARKERS[i % len(VARIANT_MARKERS)],
                color="#555555",
                label=ellipsize(v.label, LABEL_CHARS),
            )
            for i, v in enumerate(variants)
        ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    ax.grid(which="major", alpha=0.3)
    ax.set_title(
        f"roofline of {ellipsize(hw.label, 40)} at {hw.clock_hz / 1e6:g} MHz (#n: layer numbers of the tables)",
        loc="left",
    )
    freeze_layout(fig)  # the axes' geometry is final: label angles and free places can be measured
    # the points are obstacles for every label (a scatter marker of s=26 is about 5 pt across)
    taken = _text_boxes(fig) + marker_boxes(ax, [(x, y) for *_, x, y in placed], 5.5)
    notes = []
    for p, roof in roofs.items():
        text = f"{p} peak: {_si(roof, 'MAC/s')}"
        if not place_text(ax, text, _roof_candidates(hi, roof, below=False), taken, fontsize=6.5, color="#333333"):
            notes.append(text)
    for text, roof in kernel_labels:
        if not place_text(ax, text, _roof_candidates(hi, roof, below=True), taken, fontsize=6, color="#555555"):
            notes.append(text)
    # number the first variant's four slowest layers as in the per-layer table, slowest first
    slowest = sorted((p for p in placed if p[0] == 0), key=lambda p: (-(p[2].latency_ms or 0), p[1]))[:4]
    unplaced = place_labels(ax, [PointLabel(x, y, f"#{k}") for _, k, _, x, y in slowest], taken, fontsize=6,
                            color="#333333")  # fmt: skip
    notes += [f"layer {label.text} at {label.x:.3g} MACs/B, {_si(label.y, 'MAC/s')}" for label in unplaced]
    return _render(fig, "roofline", notes)


def energy_parts(variant: Variant) -> list[tuple[str, list[float]]]:
    """(component, uJ per layer): incremental datapath, each memory level, and the active baseline (the chip's
    active power over the layer's latency; absent on energy-only profiles)."""
    hw = variant.estimate.hardware
    layers = variant.estimate.layers
    splits = [memory_energy_by_level(layer, hw) for layer in layers]
    levels = list(dict.fromkeys(level for split in splits for level in split))
    parts = [("datapath", [layer.energy_datapath_uj for layer in layers])]
    parts += [(f"{level} memory", [split.get(level, 0.0) for split in splits]) for level in levels]
    if not hw.energy_only:
        parts.append(("active baseline", [layer.energy_baseline_uj for layer in layers]))
    return parts


def _part_colour(name: str, k: int) -> str:
    if name == "datapath":
        return COMPUTE_COLOUR
    if name == "active baseline":
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
    """Per layer (or the costliest and the rest grouped): the dynamic energy (compute and each memory level)
    stacked; beside it, the static energy (static power over the layer's latency), each on its own scale."""
    layers = variant.estimate.layers
    parts = energy_parts(variant)
    per_layer = [sum(values[i] for _, values in parts) for i in range(len(layers))]
    bars = layer_bars(per_layer, [layer.name for layer in layers])
    grouped = [(name, _bar_values(values, bars)) for name, values in parts]
    dynamic = [p for p in grouped if p[0] != "active baseline"]
    static = [p for p in grouped if p[0] == "active baseline"]
    n = len(bars)
    fig = _figure(WIDTH, _layer_axis_height(n))
    if static:
        grid = fig.add_gridspec(1, 2, width_ratios=[3, 1.3])
        ax = fig.add_subplot(grid[0])
        side = fig.add_subplot(grid[1], sharey=ax)
    else:
        ax, side = fig.add_subplot(), None
    ys = list(range(n))
    stacked = _stacked(ax, ys, dynamic, 0.72)
    ax.set_xlim(left=0)
    single = max((v for b, v in zip(bars, stacked, strict=True) if len(b.indices) == 1), default=0.0)
    if _grouped(bars) and stacked[-1] > single * 1.16 > 0:
        ax.set_xlim(0, single * 1.16)
        _cut_group_bar(ax, bars, stacked[-1], single * 1.16, "µJ")
    ax.set_yticks(ys, [b.label for b in bars], fontsize=6.5 if n <= 24 else 5.8)
    ax.invert_yaxis()
    ax.set_xlabel("incremental energy per layer (µJ): datapath + memory")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(_uj_ticks())
    total_dynamic = sum(sum(values) for _, values in dynamic)
    ax.set_title(_bar_title(variant.label, f"incremental {total_dynamic:,.2f} µJ", len(layers), bars), loc="left")
    ax.grid(axis="x", alpha=0.3)
    handles = [matplotlib.patches.Patch(color=_part_colour(name, k), label=name) for k, (name, _) in enumerate(grouped)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    if side is not None:
        values = static[0][1]
        side.barh(ys, values, color=STATIC_COLOUR, height=0.72)
        side.set_xlim(left=0)
        single = max((v for b, v in zip(bars, values, strict=True) if len(b.indices) == 1), default=0.0)
        if _grouped(bars) and values[-1] > single * 1.16 > 0:
            side.set_xlim(0, single * 1.16)
            _cut_group_bar(side, bars, values[-1], single * 1.16, "µJ")
        side.tick_params(axis="y", labelleft=False)
        side.set_xlabel("active baseline (µJ)")
        side.xaxis.set_major_locator(MaxNLocator(3))
        side.xaxis.set_major_formatter(_uj_ticks())
        side.set_title(f"baseline {sum(values):,.0f} µJ", loc="left")
        side.grid(axis="x", alpha=0.3)
    return _render(fig, f"energy per layer, {variant.label}")


def _uj_ticks() -> FuncFormatter:
    return FuncFormatter(lambda v, _pos=None: f"{v:,.0f}" if abs(v) >= 10 else f"{v:g}")


def _uj_text(total: float) -> str:
    return f"{total:,.0f} µJ" if total >= 100 else f"{total:.3g} µJ"


@styled
def energy_totals(variants: Sequence[Variant]) -> Picture:
    """One stacked bar per variant: left everything (active baseline included), right the incremental part
    alone, where precision and compression show (on a microcontroller the active baseline is most of it)."""
    n = len(variants)
    fig = _figure(WIDTH, max(1.9, 0.42 * n + 1.3))
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
        (ax_dyn, lambda name: name != "active baseline", "incremental only (datapath + memory)"),
    ):
        comps = components(keep)
        left = [0.0] * n
        for name, values in comps:
            ax.barh(ys, values, left=left, color=_part_colour(name, names.index(name)), height=0.6, label=name)
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, total in zip(ys, left, strict=True):
            ax.annotate(_uj_text(total), (total, y), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=6.5)  # fmt: skip
        ax.set_xlim(0, max(left) * 1.4 if max(left) > 0 else 1)
        ax.set_yticks(ys, [ellipsize(v.label, LABEL_CHARS) for v in variants])
        ax.invert_yaxis()
        ax.set_xlabel("µJ")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(_uj_ticks())
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
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos=None: f"{v:,.0f}%"))
    ax.set_title(f"of {ellipsize(level, 12)}", fontsize=7, loc="left")
    ax.annotate(
        format_bytes(capacity),
        (0.03, 100),
        xycoords=("axes fraction", "data"),
        xytext=(0, 2),
        textcoords="offset points",
        fontsize=6,
        color="#CC0000",
    )


LAYER_TICKS_UP_TO = 32  # an execution-order axis names its layers up to this many, else numbers the steps


def _layer_ticks(ax, names: Sequence[str]) -> None:
    n = len(names)
    if n <= LAYER_TICKS_UP_TO:
        ax.set_xticks(range(n), [ellipsize(name, 18) for name in names], rotation=90, fontsize=5.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        ax.set_xlabel("execution step")


@styled
def arena_timeline(variants: Sequence[Variant]) -> Picture:
    """Live activation bytes at every step of the execution order, the peak marked; beside it, the planned
    arena of each variant against the activations level's capacity."""
    est0 = variants[0].estimate
    hw = est0.hardware
    fig = _figure(WIDTH, 3.6)
    grid = fig.add_gridspec(1, 2, width_ratios=[5.4, 1])
    ax = fig.add_subplot(grid[0])
    side = fig.add_subplot(grid[1])
    peaks = []
    for i, v in enumerate(variants):
        live = [float(b) for b in v.estimate.arena.live_bytes()]  # floats: sizes past 2**63 stay plottable
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        steps = list(range(len(live)))
        ax.step(steps, live, where="mid", color=colour, lw=1.3, label=ellipsize(v.label, LABEL_CHARS))
        if len(variants) == 1:
            ax.fill_between(steps, live, step="mid", color=colour, alpha=0.15)
        step, peak = peak_step(v.estimate)
        ax.plot([step], [float(peak)], marker="v", color=colour, ms=6, zorder=4)
        peaks.append((step, float(peak), colour))
        arena = float(v.estimate.peak_ram_bytes)
        if arena > peak:
            ax.axhline(arena, color=colour, lw=0.8, ls=":")
    _layer_ticks(ax, [layer.name for layer in est0.layers])
    top = max([peak for _, peak, _ in peaks] + [float(v.estimate.peak_ram_bytes) for v in variants])
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)
    _bytes_axis(ax.yaxis, top * 1.3)
    ax.set_ylabel("live activation bytes")
    ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1:
        fig.legend(loc="outside lower center", ncols=min(len(variants), 4), frameon=False)
    ax.set_title("activation arena over the execution order (dotted: planned arena size)", loc="left")
    _capacity_panel(side, [float(v.estimate.peak_ram_bytes) for v in variants], float(est0.capacity("ram")),
                    hw.activations_level)  # fmt: skip
    freeze_layout(fig)
    taken = _text_boxes(fig)
    for step, peak, colour in peaks:
        place_labels(ax, [PointLabel(step, peak, f"peak {format_bytes(peak)}")], taken, above_first=True, fontsize=6.5,
                     color=colour, fontweight="bold")  # fmt: skip
    return _render(fig, "activation arena timeline")


BARS_UP_TO = 64  # the flash chart draws a bar per layer up to this many layers, else a filled outline


@styled
def flash_per_layer(variants: Sequence[Variant]) -> Picture:
    """Stored weight bytes per layer (grouped by variant) and their running total; beside it, each variant's
    total against the weights level's capacity."""
    est0 = variants[0].estimate
    hw = est0.hardware
    fig = _figure(WIDTH, 3.6)
    grid = fig.add_gridspec(1, 2, width_ratios=[5.4, 1])
    ax = fig.add_subplot(grid[0])
    side = fig.add_subplot(grid[1])
    k = len(variants)
    width = 0.8 / k
    twin = ax.twinx()
    top = 0.0
    for i, v in enumerate(variants):
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        values = [float(layer.weight_bytes) for layer in v.estimate.layers]
        top = max(top, max(values, default=0.0))
        label = ellipsize(v.label, LABEL_CHARS)
        if len(values) <= BARS_UP_TO:
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(values))]
            ax.bar(xs, values, width=width, color=colour, label=label)
        else:  # one artist for thousands of layers
            ax.stairs(values, [j - 0.5 for j in range(len(values) + 1)], fill=True, color=colour, alpha=0.6,
                      label=label)  # fmt: skip
        running = list(itertools.accumulate(values))
        twin.step(range(len(values)), running, where="mid", color=colour, lw=1.0, ls="--")
    _layer_ticks(ax, [layer.name for layer in est0.layers])
    ax.set_ylim(0, top * 1.1 if top else 1)
    _bytes_axis(ax.yaxis, top * 1.1)
    total = float(max(v.estimate.flash_bytes for v in variants))
    twin.set_ylim(0, total * 1.1 if total else 1)
    _bytes_axis(twin.yaxis, total * 1.1)
    twin.spines["right"].set_visible(True)
    twin.set_ylabel("running total (dashed)")
    ax.set_ylabel("stored weight bytes per layer")
    ax.grid(axis="y", alpha=0.3)
    if k > 1:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(k, 4), frameon=False)
    ax.set_title(f"weights per layer as stored in {ellipsize(hw.weights_level, 20)}", loc="left")
    _capacity_panel(side, [float(v.estimate.flash_bytes) for v in variants], float(est0.capacity("flash")),
                    hw.weights_level)  # fmt: skip
    return _render(fig, "flash per layer")


@styled
def pareto(rows, title: str) -> Picture:
    """The Pareto chart of ``edgesim compare --plot`` (simulator.compare.pareto_figure), at the report's DPI."""
    from simulator.compare import pareto_figure

    fig = pareto_figure(rows, ellipsize(title, 80), dpi=DPI)
    return _render(fig, "Pareto chart")
