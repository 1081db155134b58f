"""Point labels that never overprint: each label tries a ring of positions around its point and takes the
first whose drawn extent stays inside the axes and clear of every text already there; points that sit on top
of one another on the page share one label. Used by the report's charts and ``edgesim compare --plot``.

The figure's layout must be final before labels are placed (draw it once, then freeze the layout engine),
since a placement is checked in display coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

# offsets in points, nearest first: right, above, left, below and the diagonals, then further out
_DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1))
_RADII = (4, 10, 18, 28)


@dataclass(frozen=True)
class PointLabel:
    x: float  # data coordinates
    y: float
    text: str


def freeze_layout(fig: Figure) -> None:
    """Run the layout engine once and keep its result, so labels added afterwards stay where they are put."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def text_boxes(fig: Figure) -> list[Bbox]:
    """Display-space extents of the texts a figure draws now (titles, axis labels, visible tick labels,
    annotations, legends): what a new label must not overprint."""
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis._update_ticks():  # the ticks actually drawn (inside the view limits)
                for label in (tick.label1, tick.label2):
                    if label.get_visible() and label.get_text():
                        boxes.append(label.get_window_extent(renderer))
            if axis.label.get_visible() and axis.label.get_text():
                boxes.append(axis.label.get_window_extent(renderer))
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                boxes.append(title.get_window_extent(renderer))
        for text in ax.texts:
            if text.get_visible() and text.get_text():
                boxes.append(text.get_window_extent(renderer))
        if ax.get_legend() is not None:
            boxes.append(ax.get_legend().get_window_extent(renderer))
    for legend in fig.legends:
        boxes.append(legend.get_window_extent(renderer))
    return boxes


def marker_boxes(ax: Axes, points: Sequence[tuple[float, float]], size_pt: float) -> list[Bbox]:
    """Display-space boxes of point markers ``size_pt`` points across, for labels to keep off other points."""
    half = size_pt / 2 * ax.figure.dpi / 72
    boxes = []
    for x, y in points:
        px, py = ax.transData.transform((x, y))
        boxes.append(Bbox([[px - half, py - half], [px + half, py + half]]))
    return boxes


def group_coincident(ax: Axes, labels: Sequence[PointLabel], distance_px: float = 4.0) -> list[PointLabel]:
    """Labels of points closer than ``distance_px`` on the page merged into one ("a, b"), in input order."""
    groups: list[tuple[tuple[float, float], PointLabel]] = []
    for label in labels:
        px, py = ax.transData.transform((label.x, label.y))
        for k, ((gx, gy), kept) in enumerate(groups):
            if abs(gx - px) <= distance_px and abs(gy - py) <= distance_px:
                groups[k] = ((gx, gy), PointLabel(kept.x, kept.y, f"{kept.text}, {label.text}"))
                break
        else:
            groups.append(((px, py), label))
    return [label for _, label in groups]


def place_text(ax: Axes, text: str, candidates: Sequence[dict], taken: list[Bbox], **text_kwargs) -> bool:
    """Annotate at the first of ``candidates`` (keyword sets for ``ax.annotate``: xy, xytext, ha, va, ...)
    whose extent lies inside the axes and clear of ``taken``; the placed extent joins ``taken``. False when
    no candidate is free (nothing is drawn)."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for candidate in candidates:
        artist = ax.annotate(text, textcoords="offset points", **candidate, **text_kwargs)
        box = artist.get_window_extent(renderer)
        inside = box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
        if inside and not any(box.overlaps(other) for other in taken):
            taken.append(box)
            return True
        artist.remove()
    return False


def ring(xy: tuple[float, float], above_first: bool = False) -> list[dict]:
    """Positions around a point, nearest first: right, above, left, below, the diagonals (above first when
    asked: a peak's label), then further out."""
    directions = sorted(_DIRECTIONS, key=lambda d: -d[1]) if above_first else _DIRECTIONS
    out = []
    for radius in _RADII:
        for dx, dy in directions:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            out.append({"xy": xy, "xytext": (dx * radius, dy * radius), "ha": ha, "va": va})
    return out


def place_labels(
    ax: Axes, labels: Sequence[PointLabel], taken: list[Bbox] | None = None, above_first: bool = False, **text_kwargs
) -> list[PointLabel]:
    """Label each point (coincident ones together) at the first free position around it; returns the labels
    that found none, for the caller to list elsewhere. ``taken`` (default: every text in the figure) grows
    with each placed label."""
    taken = text_boxes(ax.figure) if taken is None else taken
    return [
        label
        for label in group_coincident(ax, labels)
        if not place_text(ax, label.text, ring((label.x, label.y), above_first), taken, **text_kwargs)
    ]
