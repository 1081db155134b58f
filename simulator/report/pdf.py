"""Lay a report out as a PDF with reportlab's platypus: paragraphs and tables that flow across pages (long
tables repeat their header row), figures as high-resolution PNGs, a contents list and PDF bookmarks, and a
footer with the page number.

The bytes depend only on the inputs and the report's date: reportlab runs in invariant mode (a fixed
document ID), and the PDF's creation and modification dates are the report's date (SOURCE_DATE_EPOCH when
set, else today at 00:00 UTC).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch, mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    Image,
    KeepTogether,
    ListFlowable,
    ListItem,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.tableofcontents import TableOfContents

from simulator.budget import METRICS
from simulator.estimate.uncertainty import interval_text
from simulator.output import ellipsize, format_bytes, shape_text
from simulator.report import figures
from simulator.report.data import (
    ReportData,
    Variant,
    arithmetic_intensity,
    bytes_moved,
    live_tensors,
    peak_step,
)

MARGIN = 18 * mm
PAGE_W, PAGE_H = A4
TEXT_W = PAGE_W - 2 * MARGIN

INK = colors.HexColor("#1F2328")
MUTED = colors.HexColor("#57606A")
RULE = colors.HexColor("#D0D7DE")
HEAD_BG = colors.HexColor("#EAEEF2")
ZEBRA = colors.HexColor("#F6F8FA")
OK_BG, OK_FG = colors.HexColor("#E6F4EA"), colors.HexColor("#1A7F37")
BAD_BG, BAD_FG = colors.HexColor("#FDECEA"), colors.HexColor("#B42318")
BOUND_FG = {k: colors.HexColor(v) for k, v in figures.BOUND_COLOURS.items()}


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "Body",
        parent=base["BodyText"],
        fontName="Helvetica",
        fontSize=9,
        leading=12.2,
        textColor=INK,
        spaceBefore=0,
        spaceAfter=5,
    )
    return {
        "title": ParagraphStyle("Title", parent=body, fontName="Helvetica-Bold", fontSize=19, leading=23, spaceAfter=3),
        "subtitle": ParagraphStyle("Subtitle", parent=body, fontSize=10, leading=13, textColor=MUTED, spaceAfter=10),
        "h1": ParagraphStyle(
            "H1",
            parent=body,
            fontName="Helvetica-Bold",
            fontSize=13.5,
            leading=17,
            spaceBefore=10,
            spaceAfter=6,
            keepWithNext=1,
        ),
        "h2": ParagraphStyle(
            "H2",
            parent=body,
            fontName="Helvetica-Bold",
            fontSize=10.5,
            leading=13.5,
            spaceBefore=8,
            spaceAfter=4,
            keepWithNext=1,
        ),
        "body": body,
        "small": ParagraphStyle("Small", parent=body, fontSize=7.8, leading=10, spaceAfter=3),
        "caption": ParagraphStyle(
            "Caption",
            parent=body,
            fontName="Helvetica-Oblique",
            fontSize=7.6,
            leading=9.6,
            textColor=MUTED,
            spaceBefore=2,
            spaceAfter=10,
        ),
        "cell": ParagraphStyle("Cell", parent=body, fontSize=6.8, leading=8.2, spaceAfter=0, alignment=TA_LEFT),
        "cellb": ParagraphStyle(
            "CellB", parent=body, fontName="Helvetica-Bold", fontSize=6.8, leading=8.2, spaceAfter=0
        ),
        "kv": ParagraphStyle("KV", parent=body, fontSize=8.2, leading=10.4, spaceAfter=0),
        "kvkey": ParagraphStyle(
            "KVKey", parent=body, fontName="Helvetica-Bold", fontSize=8.2, leading=10.4, spaceAfter=0, textColor=MUTED
        ),
        "toc0": ParagraphStyle("TOC0", parent=body, fontSize=9, leading=13, leftIndent=0, spaceAfter=0),
        "tochead": ParagraphStyle(
            "TOCHead",
            parent=body,
            fontName="Helvetica-Bold",
            fontSize=10.5,
            leading=13.5,
            spaceBefore=8,
            spaceAfter=4,
            keepWithNext=1,
        ),
    }


S = _styles()


def _p(text: str, style: str = "body") -> Paragraph:
    return Paragraph(text, S[style])


def _e(text: object) -> str:
    return escape(str(text))


# -- formatting ---------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.3f}"


def _span(totals: dict, metric: str) -> str:
    """The error bar of a total, "(28-41)" (docs/calibration.md)."""
    return interval_text(totals.get(f"{metric}_low"), totals.get(f"{metric}_high"))


def _uj(value: float) -> str:
    return f"{value:,.2f}"


def _b(value: int) -> str:
    return f"{value:,}"


def _kib(value: float) -> str:
    return format_bytes(value)


NAME_CHARS = 80  # a layer, tensor or plan name in running text or a wrapping cell, cut with an ellipsis beyond


def _name(text: object, limit: int = NAME_CHARS) -> str:
    """A name from the model (any length, any characters) ready for a paragraph: cut, then escaped."""
    return _e(ellipsize(str(text), limit))


def _fit(text: str, width: float, font: str = "Helvetica", size: float = 6.3) -> str:
    """``text`` cut with an ellipsis to fit ``width`` points on one line (a table cell that does not wrap)."""
    if stringWidth(text, font, size) <= width:
        return text
    keep = max(int(width / (0.45 * size)), 1)  # a first guess from an average glyph, then shortened until it fits
    text = text[:keep]
    while text and stringWidth(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text + "\u2026"


def _break_path(path: str, width: float, font: str = "Helvetica", size: float = 6.8) -> str:
    """A dotted field name broken into lines after its dots (then its underscores), never inside a word unless
    one part alone is wider than the column; escaped for a paragraph."""
    parts = []
    for piece in path.split("."):
        parts.append(piece + ".")
    parts[-1] = parts[-1][:-1]
    words = []
    for part in parts:
        if stringWidth(part, font, size) <= width:
            words.append(part)
        else:
            sub = part.split("_")
            words += [w + "_" for w in sub[:-1]] + [sub[-1]]
    lines, line = [], ""
    for word in words:
        if line and stringWidth(line + word, font, size) > width:
            lines.append(line)
            line = word
        else:
            line += word
    lines.append(line)
    return "<br/>".join(_e(x) for x in lines)


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:,.1f}%" if b else "n/a"


def _limit_text(metric: str, limit: float, given: str) -> str:
    if metric.endswith("_bytes"):
        return f"{_b(int(limit))} B ({_e(given)})"
    unit = METRICS[metric][1].replace("uJ", "µJ")
    return f"{limit:g} {unit}"


def _metric_value(metric: str, totals: dict) -> str:
    value = totals.get(metric)
    if value is None:
        return "n/a"
    if metric.endswith("_bytes"):
        return _b(int(value))
    return _ms(value) if metric == "latency_ms" else _uj(value)


# -- tables --------------------------------------------------------------------------------------------------


def _table(
    rows: list[list],
    widths: Sequence[float],
    numeric: Sequence[bool] = (),
    header_rows: int = 1,
    extra: Sequence[tuple] = (),
    zebra: bool = True,
    font_size: float = 6.8,
    padding: float = 2,
    fit: bool = True,
) -> Table:
    """A table whose header repeats on every page it spans; numeric columns right-aligned. Columns of plain
    text (numbers) widen to their longest cell, and wrapping columns (paragraphs) share what is left."""
    widths = _fit_columns(rows, widths, font_size) if fit else list(widths)
    style = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", font_size, font_size + 1.6),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, MUTED),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), padding),
        ("BOTTOMPADDING", (0, 0), (-1, -1), padding),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header_rows:
        style += [
            ("FONT", (0, 0), (-1, header_rows - 1), "Helvetica-Bold", font_size, font_size + 1.6),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), HEAD_BG),
            ("LINEBELOW", (0, header_rows - 1), (-1, header_rows - 1), 0.6, MUTED),
        ]
    for col, num in enumerate(numeric):
        if num:
            style.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    if zebra:
        for r in range(header_rows, len(rows)):
            if (r - header_rows) % 2 == 1:
                style.append(("BACKGROUND", (0, r), (-1, r), ZEBRA))
    style.extend(extra)
    return Table(rows, colWidths=list(widths), repeatRows=header_rows, style=TableStyle(style), hAlign="LEFT")


def _fit_columns(rows: list[list], widths: Sequence[float], font_size: float) -> list[float]:
    """Widths that never let a number overprint its neighbour: a column whose cells are all plain strings is
    at least as wide as its widest cell (bold, as headers and totals are) plus padding; when that overflows
    the text width, the columns of wrapping paragraphs give up the difference (down to 24 pt each)."""
    out = list(widths)
    plain = []
    for col in range(len(out)):
        cells = [row[col] for row in rows if col < len(row)]
        if all(isinstance(c, str) for c in cells):
            plain.append(col)
            need = max((stringWidth(c, "Helvetica-Bold", font_size) for c in cells), default=0.0) + 7
            out[col] = max(out[col], need)
    flexible = [c for c in range(len(out)) if c not in plain]
    over = sum(out) - max(TEXT_W, sum(widths))
    room = sum(max(out[c] - 24, 0) for c in flexible)
    if over > 0 and room > 0:
        for c in flexible:
            out[c] -= over * max(out[c] - 24, 0) / room if over < room else max(out[c] - 24, 0)
    return out


def _verdict_style(col: int, row: int, ok: bool) -> list[tuple]:
    bg, fg = (OK_BG, OK_FG) if ok else (BAD_BG, BAD_FG)
    return [
        ("BACKGROUND", (col, row), (col, row), bg),
        ("TEXTCOLOR", (col, row), (col, row), fg),
        ("FONT", (col, row), (col, row), "Helvetica-Bold"),
    ]


def _picture(pic: figures.Picture, caption: str, width: float = TEXT_W) -> KeepTogether:
    scale = min(width / (pic.width * inch), 1.0 if pic.width * inch <= width else width / (pic.width * inch))
    w = pic.width * inch * scale
    h = pic.height * inch * scale
    max_h = PAGE_H - 2 * MARGIN - 60
    if h > max_h:
        w, h = w * max_h / h, max_h
    image = Image(io.BytesIO(pic.png), width=w, height=h)
    image.hAlign = "CENTER"
    return KeepTogether([image, _p(caption, "caption")])


def _bullets(items: Sequence[str], style: str = "small") -> ListFlowable:
    return ListFlowable(
        [ListItem(_p(text, style), leftIndent=10, value="•") for text in items],
        bulletType="bullet",
        start="•",
        leftIndent=10,
        bulletFontSize=7,
        spaceBefore=0,
    )


# -- sections ------------------------------------------------------------------------------------------------


def _fits_text(v: Variant) -> tuple[str, bool]:
    est = v.estimate
    hw = est.hardware
    parts, ok = [], True
    for role, used, level, what in (
        ("flash", est.flash_bytes, hw.weights_level, "weights"),
        ("ram", est.peak_ram_bytes, hw.activations_level, "activation arena"),
    ):
        cap = est.capacity(role)
        fits = est.fits[role]
        ok &= fits
        verdict = "fit" if what == "weights" else "fits"
        if not fits:
            verdict = "<b>do not fit</b>" if what == "weights" else "<b>does not fit</b>"
        parts.append(f"{what} {_b(used)} B ({_pct(used, cap)} of the {_kib(cap)} {_e(level)}) {verdict}")
    return "; ".join(parts), ok


def _bottom_line(data: ReportData) -> str:
    """One sentence a reviewer can stop at: which variants fit the chip and meet the budget, which do not."""
    groups: dict[str, list[str]] = {}
    for v in data.variants:
        misfit = ["flash" if role == "flash" else "SRAM" for role, ok in v.estimate.fits.items() if not ok]
        if misfit:
            groups.setdefault("beyond the chip's memory", []).append(f"<b>{_e(v.label)}</b> ({', '.join(misfit)})")
        elif v.breaches:
            metrics = ", ".join(b.metric for b in v.breaches)
            groups.setdefault("within capacity, over budget", []).append(f"<b>{_e(v.label)}</b> ({metrics})")
        elif data.budget is not None and v.checked:
            groups.setdefault("within capacity and budget", []).append(f"<b>{_e(v.label)}</b>")
        else:
            groups.setdefault("within capacity", []).append(f"<b>{_e(v.label)}</b>")
    order = [
        "within capacity and budget",
        "within capacity",
        "within capacity, over budget",
        "beyond the chip's memory",
    ]
    text = "; ".join(f"{key}: {', '.join(groups[key])}" for key in order if key in groups)
    return f"<b>Bottom line</b> on {_e(data.hardware.label)}. {text[0].upper()}{text[1:]}."


def _summary(data: ReportData, story: list) -> None:
    hw = data.hardware
    story.append(_p("1 Summary", "h1"))
    story.append(_p(_bottom_line(data)))
    # how each variant's precisions were chosen (simulator.deployment), once per distinct note
    for note in dict.fromkeys(n for v in data.variants for n in v.estimate.notes if n):
        story.append(_p(f"<b>Precision</b>: {_e(note)}."))
    single = len(data.variants) == 1
    lines = []
    for v in data.variants:
        t = v.totals
        fits, _ = _fits_text(v)
        budget = ""
        if data.budget is not None and v.checked:
            over = data.budget.summary_line(v.breaches)
            budget = f"; <b>over budget</b>: {_e(over)}" if over else "; within budget"
        lat = "" if t["latency_ms"] is None else f"{_ms(t['latency_ms'])} ms {_span(t, 'latency_ms')} and "
        fid = f"; {_e(v.fidelity)}" if v.fidelity else ""
        energy = f"{_uj(t['energy_uj'])} µJ {_span(t, 'energy_uj')}"
        lines.append(f"<b>{_e(v.label)}</b>: {lat}{energy} per inference; {fits}{fid}{budget}.")
    if single:
        story.append(_p(lines[0]))
    else:
        story.append(_bullets(lines, "body"))
    story.append(Spacer(1, 4))

    # key totals with verdicts
    head = [
        "variant",
        "precision",
        "latency ms",
        "energy µJ",
        "flash B",
        "of flash",
        "peak RAM B",
        "of RAM",
        "fidelity",
        "verdict",
    ]
    rows: list[list] = [head]
    extra: list[tuple] = []
    for r, v in enumerate(data.variants, start=1):
        t = v.totals
        est = v.estimate
        ok_fit = all(est.fits.values())
        over = [b.metric for b in v.breaches]
        if not ok_fit:
            verdict = "does not fit"
        elif over:
            verdict = "over budget"
        elif v.checked and data.budget is not None:
            verdict = "fits, in budget"
        else:
            verdict = "fits"
        rows.append(
            [
                _p(_e(v.label), "cellb"),
                _p(_e(v.precisions), "cell"),
                _ms(t["latency_ms"]),
                _uj(t["energy_uj"]),
                _b(t["flash_bytes"]),
                _pct(t["flash_bytes"], est.capacity("flash")),
                _b(t["peak_ram_bytes"]),
                _pct(t["peak_ram_bytes"], est.capacity("ram")),
                _p(_e(v.fidelity or "not measured"), "cell"),
                verdict,
            ]
        )
        extra += _verdict_style(9, r, ok_fit and not over)
        extra += _verdict_style(5, r, est.fits["flash"]) + _verdict_style(7, r, est.fits["ram"])
    widths = [80, 38, 42, 50, 46, 34, 44, 32, 72, 55]
    story.append(_table(rows, widths, [False, False, True, True, True, True, True, True, False, False], extra=extra))
    story.append(
        _p(
            f"Capacities from the profile: weights in <b>{_e(hw.weights_level)}</b> "
            f"({_b(data.variants[0].estimate.capacity('flash'))} B = "
            f"{_kib(data.variants[0].estimate.capacity('flash'))}), activation arena in "
            f"<b>{_e(hw.activations_level)}</b> ({_b(data.variants[0].estimate.capacity('ram'))} B = "
            f"{_kib(data.variants[0].estimate.capacity('ram'))}). "
            "Fidelity is measured for compression plans only (test accuracy where the model ships a data set, "
            "else output SQNR against the uncompressed model); a <i>--precision</i> alone changes the cost "
            "model, not the weights.",
            "caption",
        )
    )
    if data.budget is not None:
        story.append(_p("Budget", "h2"))
        checked = [v for v in data.variants if v.checked]
        head = ["metric", "limit"] + [v.label for v in checked]
        rows = [[_p(_e(h), "cellb") for h in head]]
        extra = []
        for r, (metric, limit) in enumerate(data.budget.limits.items(), start=1):
            row = [metric, _p(_limit_text(metric, limit, data.budget.given[metric]), "cell")]
            for c, v in enumerate(checked, start=2):
                over = any(b.metric == metric for b in v.breaches)
                row.append(f"{_metric_value(metric, v.totals)}  {'OVER' if over else 'ok'}")
                extra += _verdict_style(c, r, not over)
            rows.append(row)
        width_rest = (TEXT_W - 80 - 90) / max(len(checked), 1)
        story.append(
            _table(
                rows,
                [80, 90] + [width_rest] * len(checked),
                [False, False] + [True] * len(checked),
                extra=extra,
                zebra=False,
            )
        )
        unchecked = [v.label for v in data.variants if not v.checked]
        note = "A value passes when it is at most its limit; sizes in K/M/G are 1024-based."
        if unchecked:
            note += f" Not held to the budget (reference only): {_e(', '.join(unchecked))}."
        story.append(_p(note, "caption"))
    if data.warnings:
        story.append(_p("Warnings", "h2"))
        story.append(_bullets([_e(w) for w in data.warnings]))


ROWS_PER_TABLE = 66  # per-layer rows per table: about a page each, so no table is split again and again
LAYER_FONT = 6.3


def _shapes_text(ins: Sequence, outs: Sequence) -> str:
    """Input and output shapes; a layer with many inputs (a 3000-way Concat) shows the first two and a count."""

    def listed(shapes: Sequence, sep: str) -> str:
        if len(shapes) > 3:
            kinds = list(dict.fromkeys(shape_text(x) for x in shapes))
            return f"{len(shapes):,} x {kinds[0]}" if len(kinds) == 1 else f"{len(shapes):,} ({kinds[0]}, \u2026)"
        return sep.join(shape_text(x) for x in shapes)

    return listed(ins, " + ") + " » " + listed(outs, ", ")


def _layer_tables(v: Variant) -> list[Table]:
    """Every layer of a variant, one line each (names and shapes cut with an ellipsis to their column), in
    tables of ROWS_PER_TABLE rows with the header repeated: built in time linear in the layers."""
    est = v.estimate
    head = ["#", "layer", "op", "input » output", "prec.", "sparsity", "MACs", "weight B", "latency ms",
            "energy µJ", "bound"]  # fmt: skip
    numeric = [True, False, False, False, False, True, True, True, True, True, False]
    body: list[list[str]] = []
    for i, (layer, (ins, outs)) in enumerate(zip(est.layers, v.shapes, strict=True), start=1):
        body.append(
            [
                str(i),
                layer.name,
                layer.op,
                _shapes_text(ins, outs),
                layer.precision,
                f"{layer.sparsity:.3f}" if layer.sparsity else "",
                _b(layer.macs),
                _b(layer.weight_bytes),
                _ms(layer.latency_ms),
                _uj(layer.energy_uj),
                layer.bound,
            ]
        )
    t = v.totals
    total = ["", "total", "", "", "", "", _b(t["macs"]), _b(t["flash_bytes"]), _ms(t["latency_ms"]),
             _uj(t["energy_uj"]), ""]  # fmt: skip
    # the columns of numbers and short words as wide as their longest cell; layer, op and shapes share the rest
    widths = [0.0] * len(head)
    for col in (0, 4, 5, 6, 7, 8, 9, 10):
        widths[col] = max(stringWidth(r[col], "Helvetica-Bold", LAYER_FONT) for r in [head, *body, total]) + 7
    rest = max(TEXT_W - sum(widths), 120)
    widths[1], widths[2], widths[3] = 0.37 * rest, 0.2 * rest, 0.43 * rest
    for row in body:
        for col in (1, 2, 3):
            row[col] = _fit(row[col], widths[col] - 6, size=LAYER_FONT)
    tables = []
    for start in range(0, max(len(body), 1), ROWS_PER_TABLE):
        chunk = body[start : start + ROWS_PER_TABLE]
        last = start + ROWS_PER_TABLE >= len(body)
        rows = [head, *chunk] + ([total] if last else [])
        extra = [("TEXTCOLOR", (10, r), (10, r), BOUND_FG.get(row[10], INK)) for r, row in enumerate(chunk, start=1)]
        if last:
            n = len(rows) - 1
            extra += [("FONT", (0, n), (-1, n), "Helvetica-Bold"), ("LINEABOVE", (0, n), (-1, n), 0.6, MUTED)]
        tables.append(_table(rows, widths, numeric, extra=extra, font_size=LAYER_FONT, padding=1, fit=False))
    return tables


def _per_layer(data: ReportData, story: list) -> None:
    story.append(PageBreak())
    story.append(_p("A Per-layer estimates", "h1"))
    story.append(
        _p(
            "Every layer as the runtime executes it (activations fused into the layer before them, no-op layers "
            "dropped), in execution order; the number in the first column is the one the charts use (#n). "
            "<i>weight B</i> is the layer's weights and biases as stored in flash (in the plan's encoding); "
            "<i>sparsity</i> the fraction of its weights pruned; <i>bound</i> says whether compute or memory "
            "cycles dominate the layer, or <i>overhead</i> when the fixed per-layer cost exceeds both. Long names "
            "and shapes are cut with an ellipsis (the full ones: <i>edgesim estimate --format json</i>)."
        )
    )
    for k, v in enumerate(data.variants, start=1):
        if len(data.variants) > 1:
            story.append(CondPageBreak(120))
            story.append(_p(f"A.{k} {_name(v.label)}", "h2"))
        story.extend(_layer_tables(v))
        story.append(Spacer(1, 8))


def _hotspots(v: Variant) -> str:
    layers = [layer for layer in v.estimate.layers if layer.latency_ms is not None]
    total = sum(layer.latency_ms for layer in layers)
    if not layers or total <= 0:
        return f"<b>{_name(v.label)}</b>: no layer takes time (the graph computes nothing)."
    top = sorted(layers, key=lambda layer: -layer.latency_ms)[:3]
    share = 100 * sum(layer.latency_ms for layer in top) / total
    names = ", ".join(f"{_name(layer.name, 60)} ({_ms(layer.latency_ms)} ms, {layer.bound})" for layer in top)
    what = "the slowest layer takes" if len(top) == 1 else f"the {len(top)} slowest layers take"
    return f"<b>{_name(v.label)}</b>: {what} {share:.0f}% of the time: {names}."


def _latency(data: ReportData, story: list, pics: dict, number: int) -> None:
    story.append(PageBreak())
    story.append(_p(f"{number} Latency and roofline", "h1"))
    if data.hardware.energy_only:
        story.append(_p(f"{_e(data.hardware.label)} models energy only; it reports no latency."))
        return
    hw = data.hardware
    mode = (
        "overlaps memory traffic with arithmetic, so a layer takes the larger of its compute and memory time"
        if hw.overlap_compute_memory
        else "is an in-order core: loads stall the pipeline, so a layer takes its compute time <i>plus</i> its "
        "memory time"
    )
    story.append(_p(f"{_e(hw.label)} {mode}, plus {hw.layer_overhead_cycles:g} cycles of fixed overhead per layer."))
    story.append(_bullets([_hotspots(v) for v in data.variants], "body"))
    for v in data.variants:
        story.append(
            _picture(
                pics[("latency", v.label)], f"Latency per layer of {_e(v.label)}, coloured by what bounds each layer."
            )
        )
    placed = sum(1 for v in data.variants for layer in v.estimate.layers if arithmetic_intensity(layer))
    skipped = sum(1 for v in data.variants for layer in v.estimate.layers if not arithmetic_intensity(layer))
    roofs = ", ".join(
        f"{p} {hw.compute[p].macs_per_cycle:g} MAC/cycle x {hw.clock_hz / 1e6:g} MHz"
        for p in sorted({layer.precision for v in data.variants for layer in v.estimate.layers if layer.macs})
    )
    bws = ", ".join(
        f"{_e(name)} {level.bandwidth_bytes_per_cycle:g} B/cycle"
        for name, level in hw.memory.items()
        if name in (hw.weights_level, hw.activations_level)
    )
    story.append(
        _picture(
            pics["roofline"],
            f"Roofline: {placed} layers with MACs placed at their arithmetic intensity and achieved rate. "
            f"Horizontal roofs: peak compute ({roofs}); diagonal roofs: bandwidth of the memory level the "
            f"weights ({_e(hw.weights_level)}) and activations ({_e(hw.activations_level)}) come from ({bws}). "
            "Layers sit below the roofs by the stack's kernel efficiency for their op class, the fixed per-layer "
            "overhead and, on an in-order core, by paying compute and memory time in sequence. "
            + (
                f"Winograd kernels ({hw.stack.winograd_3x3_speedup:g}x fewer multiplies on 3x3 convolutions) let "
                "those layers sit above their kernel roof, since the chart counts nominal MACs. "
                if hw.stack.winograd_3x3_speedup > 1
                else ""
            )
            + f"{skipped} layers without MACs (pooling, adds, activations, reshapes) have no place on it."
            + (
                f" Not labelled on the chart for lack of room: {_e('; '.join(pics['roofline'].notes))}."
                if pics["roofline"].notes
                else ""
            ),
        )
    )


def _energy_rows(v: Variant) -> dict[str, float]:
    """Component -> uJ per inference: datapath, each memory level, active baseline."""
    return {name: sum(values) for name, values in figures.energy_parts(v)}


def _share(part: float, total: float) -> str:
    if not total:
        return "n/a"
    pct = 100 * part / total
    if pct == 0:
        return "0%"
    if 99.5 <= pct < 100:
        return f"{pct:.2f}%"
    return f"{pct:.0f}%" if pct >= 10 else (f"{pct:.1f}%" if pct >= 1 else f"{pct:.2g}%")


def _precision_saving(data: ReportData) -> str:
    """The int8-vs-fp32 sentence, when one variant runs all-fp32 and another all-int8: total energy per
    inference first (what a board measures), then where the difference comes from."""
    fp32 = next((v for v in data.variants if v.precisions == "fp32"), None)
    int8 = next((v for v in data.variants if v.precisions == "int8"), None)
    if fp32 is None or int8 is None:
        return ""
    a, b = _energy_rows(fp32), _energy_rows(int8)
    memory_a = sum(x for k, x in a.items() if k.endswith("memory"))
    memory_b = sum(x for k, x in b.items() if k.endswith("memory"))

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.1f}x" if y else "n/a"

    total_a, total_b = fp32.totals["energy_uj"], int8.totals["energy_uj"]
    moved_a = sum(bytes_moved(layer) for layer in fp32.estimate.layers)
    moved_b = sum(bytes_moved(layer) for layer in int8.estimate.layers)
    baseline = ""
    if not data.hardware.energy_only:
        baseline = (
            f" The active baseline ({data.hardware.static_power_mw:g} mW over the inference time) is "
            f"{_share(fp32.totals['energy_baseline_uj'], total_a)} of the fp32 total, so the saving follows the "
            f"latency ({_ms(fp32.totals['latency_ms'])} vs {_ms(int8.totals['latency_ms'])} ms)."
        )
    return (
        f"<b>int8 vs fp32</b>: one inference of {_e(int8.label)} takes {_uj(total_b)} µJ against "
        f"{_uj(total_a)} µJ for {_e(fp32.label)}, {ratio(total_a, total_b)} less energy in total.{baseline} "
        f"On top of it, int8 spends {ratio(a['datapath'], b['datapath'])} less datapath energy (a MAC costs "
        f"{data.hardware.compute['int8'].mac_energy_pj:g} instead of {data.hardware.compute['fp32'].mac_energy_pj:g}"
        f" pJ) and {ratio(memory_a, memory_b)} less memory energy ({ratio(moved_a, moved_b)} fewer bytes moved)."
    )


def _energy(data: ReportData, story: list, pics: dict, number: int) -> None:
    story.append(PageBreak())
    story.append(_p(f"{number} Energy", "h1"))
    hw = data.hardware
    story.append(
        _p(
            "Energy per inference, in the parts a board measurement is made of: the <b>active baseline</b>, "
            f"{hw.static_power_mw:g} mW (the whole chip's power while it runs: clocks, leakage, instruction fetch "
            "and control) over the inference time; plus the <b>incremental datapath</b> energy, MACs x pJ per "
            "MAC and other ops x pJ per op at the layer's precision; plus the incremental <b>memory</b> energy, "
            f"bytes x pJ per byte: weights read from <b>{_e(hw.weights_level)}</b>, activations read and "
            f"written in <b>{_e(hw.activations_level)}</b>. Precision and compression change the incremental "
            "parts directly and the baseline through the latency."
        )
    )
    parts = [_energy_rows(v) for v in data.variants]
    names = list(dict.fromkeys(k for p in parts for k in p))
    head = ["variant"] + names + ["total µJ", "vs " + data.variants[0].label]
    rows: list[list] = [[_p(_e(h), "cellb") for h in head]]
    ref = data.variants[0].totals["energy_uj"]
    for v, p in zip(data.variants, parts, strict=True):
        total = v.totals["energy_uj"]
        shares = [f"{_uj(p.get(n, 0.0))} ({_share(p.get(n, 0.0), total)})" for n in names]
        change = "reference" if v is data.variants[0] else (f"{100 * (total - ref) / ref:+.1f}%" if ref else "n/a")
        rows.append([_p(_e(v.label), "cellb"), *shares, _uj(total), change])
    first = 80
    rest = (TEXT_W - first) / (len(head) - 1)
    story.append(_table(rows, [first] + [rest] * (len(head) - 1), [False] + [True] * (len(head) - 1)))
    story.append(_p("Each component in µJ with its share of the variant's total.", "caption"))
    saving = _precision_saving(data)
    if saving:
        story.append(_p(saving))
    story.append(
        _picture(
            pics["energy_totals"],
            "Energy per inference by component: all of it (left) and the incremental part alone (right), "
            "where precision and compression show.",
        )
    )
    for v in data.variants:
        story.append(
            _picture(
                pics[("energy", v.label)],
                f"Energy per layer of {_e(v.label)}: incremental datapath and memory (left), the active "
                "baseline over the layer's latency (right), each on its own scale.",
            )
        )


def _memory(data: ReportData, story: list, pics: dict, number: int) -> None:
    story.append(PageBreak())
    story.append(_p(f"{number} Memory", "h1"))
    hw = data.hardware
    story.append(
        _p(
            "Activations live in a tensor arena planned as TensorFlow Lite Micro's greedy planner does: each "
            "tensor from the step that writes it to the last step that reads it, buffers placed largest first at "
            "the lowest offset free for their lifetime, 16-byte aligned, reshape-like ops sharing their input's "
            "buffer. The arena is the highest offset used, which can exceed the most bytes live at once "
            "(fragmentation). Weights stay in "
            f"<b>{_e(hw.weights_level)}</b> in their stored encoding."
        )
    )
    lines = []
    for v in data.variants:
        est = v.estimate
        step, live = peak_step(est)
        where = est.layers[step].name if step < len(est.layers) else f"step {step}"
        tensors = ", ".join(f"{_name(n, 60)} ({_b(b)} B)" for n, b in live_tensors(est, step)[:4])
        lines.append(
            f"<b>{_name(v.label)}</b>: at most {_b(live)} B live, at {_name(where, 60)} (step {step}: {tensors}); "
            f"planned arena {_b(est.peak_ram_bytes)} B = {_pct(est.peak_ram_bytes, est.capacity('ram'))} of "
            f"{_e(hw.activations_level)}; weights {_b(est.flash_bytes)} B = "
            f"{_pct(est.flash_bytes, est.capacity('flash'))} of {_e(hw.weights_level)}."
        )
    story.append(_bullets(lines, "body"))
    story.append(
        _picture(
            pics["arena"],
            "Live activation bytes at every step of the execution order, the peak marked; right: each variant's "
            f"planned arena against the {_e(hw.activations_level)} capacity (red line).",
        )
    )
    story.append(
        _picture(
            pics["flash"],
            "Stored weight bytes per layer (bars) and their running total (dashed); right: each variant's total "
            f"against the {_e(hw.weights_level)} capacity (red line).",
        )
    )


def _comparison(data: ReportData, story: list, pics: dict, number: int) -> None:
    story.append(CondPageBreak(250))
    story.append(_p(f"{number} Plan comparison", "h1"))
    story.append(
        _p(
            "Each plan applied to the same parsed model, as <i>edgesim compare</i> does. Fidelity: test accuracy "
            "where the model ships a held-out data set, else output SQNR and top-1 agreement against the "
            "uncompressed model on seeded random inputs. A plan is Pareto-optimal (*) when no other is at least "
            "as small, as fast and as accurate and better in one."
        )
    )
    head = [
        "plan",
        "params",
        "sparsity",
        "flash B",
        "ratio",
        "latency ms",
        "energy µJ",
        "peak RAM B",
        "fits",
        "accuracy",
        "SQNR dB",
        "Pareto",
    ]
    rows: list[list] = [head]
    extra = []
    for r, row in enumerate(data.rows, start=1):
        fits = all(row.fits.values())
        rows.append(
            [
                _p(_name(row.plan), "cellb"),
                _b(row.params),
                f"{row.sparsity:.3f}",
                _b(row.flash_bytes),
                f"{row.compression_ratio:.1f}x" if math.isfinite(row.compression_ratio) else "n/a",
                _ms(row.latency_ms),
                _uj(row.energy_uj),
                _b(row.peak_ram_bytes),
                "yes" if fits else "NO",
                "n/a" if row.accuracy is None else f"{100 * row.accuracy:.2f}%",
                "identical" if math.isinf(row.sqnr_db) and row.sqnr_db > 0 else f"{row.sqnr_db:.1f}",
                "*" if row.pareto else "",
            ]
        )
        extra += _verdict_style(8, r, fits)
    widths = [92, 42, 34, 44, 28, 40, 44, 42, 24, 38, 38, 27]
    story.append(_table(rows, widths, [False] + [True] * 7 + [False, True, True, False], extra=extra))
    story.append(Spacer(1, 6))
    plans = [v.plan for v in data.variants if v.plan is not None]
    if plans:
        story.append(
            _bullets(
                [
                    f"<b>{_e(p.name)}</b>: {_e(p.description or 'no description')} "
                    f"<font color='#57606A'>({_e(p.path or 'inline plan')})</font>"
                    for p in plans
                ]
            )
        )
    story.append(
        _picture(
            pics["pareto"],
            "Flash against fidelity for each plan (the chart of <i>edgesim compare --plot</i>); green circles are "
            "Pareto-optimal over size, latency and fidelity, the line is the size-fidelity front.",
        )
    )


def _flatten(value, path: str, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for v in value:
            _flatten({k: x for k, x in v.items() if k != "name"}, f"{path}.{v['name']}", out)
    else:
        out.append((path, value))


def _value_text(value, path: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" + (f" ({_kib(value)})" if path.endswith("_bytes") and value >= 1024 else "")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value) or "none"
    return str(value)


def profile_rows(profile: dict, stack: str) -> list[tuple[str, str, str]]:
    """(field, value, source) rows of a profile for one stack: leaves grouped under the source entry that
    covers them, in the profile's order."""
    sources: dict[str, str] = profile.get("sources", {})
    leaves: list = []
    skip = {"name", "description", "chip", "board", "sources", "default_stack", "stacks"}
    _flatten({k: v for k, v in profile.items() if k not in skip}, "", leaves)
    chosen = {k: v for k, v in profile["stacks"][stack].items() if k != "description"}
    _flatten(chosen, f"stacks.{stack}", leaves)
    groups: dict[str, list] = {}
    for path, value in leaves:
        keys = [k for k in sources if path == k or path.startswith(k + ".")]
        key = max(keys, key=len) if keys else path
        groups.setdefault(key, []).append((path, value))
    rows = []
    for key, items in groups.items():
        if len(items) == 1 and items[0][0] == key:
            value = _value_text(items[0][1], key)
        else:
            value = ", ".join(f"{p[len(key) + 1 :] or p} {_value_text(v, p)}" for p, v in items)
        source = sources.get(key, "")
        if len(source) > 1400:
            source = source[:1400] + "... (full text: edgesim hw show)"
        rows.append((key, value, source))
    return rows


CONVENTIONS = [
    "<b>MAC</b> = one multiply-accumulate, counted for the reduction ops (Conv, ConvTranspose, Gemm, MatMul, "
    "Einsum and their QLinear forms) as published model tables count them; bias additions are not MACs. "
    "<b>ops</b> = other arithmetic (one per add, compare or pooling tap; one per function evaluation for "
    "exp, log, sqrt, erf, gelu).",
    "<b>params</b> = weights + biases after batch-norm folding (as TFLite, TensorRT and ONNX Runtime deploy a "
    "model): one bias per output channel, no BN gamma/beta.",
    "<b>weight bytes</b> = parameters at their stored width (the plan's encoding: quantized bit width, sparse "
    "formats, codebooks, Huffman), biases int32 beside int8 weights.",
    "<b>arithmetic intensity</b> = MACs / bytes moved (weights read in the form the kernel runs plus activations "
    "read and written); <b>achieved MAC/s</b> = MACs / layer latency.",
    "<b>peak RAM</b> = the planned activation arena (not the largest single layer); <b>flash</b> = weights only.",
    "Sizes in the text are exact bytes with binary multiples (1 KiB = 1024 B); budgets' K/M/G are 1024-based "
    "as well. Latency in ms, energy in µJ, per inference at batch 1.",
]

LIMITS = [
    "Cycle counts come from peak rates scaled by one efficiency per op class and stack, calibrated on published "
    "int8 measurements; layers of unusual shape (tiny channels, large kernels) can be off by more than the "
    "calibrated models.",
    "Caches are not simulated: sustained bandwidths and the efficiencies absorb them. Weight re-reads that hit a "
    "cache are priced as the stack's measurements imply, not per access.",
    "The arena holds activations only: kernel scratch buffers (im2col), the runtime's own state, the stack and "
    "the input/output copies of the application are not counted; flash counts weights only, not code.",
    "Static power is a board-level figure spread over the inference; DVFS, sleep between inferences and "
    "peripheral power are not modelled. Energy constants at 45 nm (Horowitz) are used unscaled where the "
    "profile says so.",
    "fp32 on stacks calibrated on int8 is predicted pessimistically; a --precision run changes the cost model "
    "only (weights are not quantized, so no fidelity is measured); a plan's fidelity comes from the float "
    "executor with fake-quantized weights and activations, not from the target's integer kernels.",
    "One inference, batch 1, no operating-system jitter, input/output transfer or pre-processing.",
]


def _assumptions(data: ReportData, story: list, profile: dict, number: int) -> None:
    story.append(CondPageBreak(320))
    story.append(_p(f"{number} Assumptions and sources", "h1"))
    hw = data.hardware
    story.append(_p("Hardware profile", "h2"))
    story.append(
        _p(
            f"<b>{_e(hw.name)}</b>: {_e(hw.description)}. Chip: {_e(hw.chip)}"
            + (f"; board: {_e(hw.board)}" if hw.board else "")
            + f". Software stack <b>{_e(hw.stack.name)}</b>: {_e(hw.stack.description)} "
            f"(precisions {_e(', '.join(hw.stack.precisions))}; other stacks of this profile: "
            f"{_e(', '.join(s for s in hw.stacks if s != hw.stack.name) or 'none')}). "
            f"Profile file: {_e(Path(hw.path).name)}."
        )
    )
    rows = [[_p("field", "cellb"), _p("value", "cellb"), _p("source", "cellb")]]
    for key, value, source in profile_rows(profile, hw.stack.name):
        cited = _e(source) or "<i>(a setting, not a measured number)</i>"
        rows.append([_p(_break_path(key, 125 - 6), "cell"), _p(_e(value), "cell"), _p(cited, "cell")])
    story.append(_table(rows, [125, 118, TEXT_W - 243]))
    story.append(_p("Every number of a profile must cite its source; the profile's own text, verbatim.", "caption"))
    if data.measurements:
        story.append(_p("Published measurements on this profile", "h2"))
        rows = [["id", "model", "precision", "metric", "measured", "predicted", "error", "tolerance"]]
        extra = []
        for r, m in enumerate(data.measurements, start=1):
            rows.append(
                [
                    m.id,
                    m.model,
                    m.precision,
                    m.metric,
                    f"{m.measured:g}",
                    f"{m.predicted:.4g}",
                    f"{m.error_pct:+.1f}%",
                    f"{m.tolerance_pct:g}%",
                ]
            )
            extra += _verdict_style(6, r, m.within)
        story.append(_table(rows, [90, 90, 45, 55, 50, 55, 45, 45], [False] * 4 + [True] * 4, extra=extra))
        inside = sum(m.within for m in data.measurements)
        story.append(
            _p(
                f"{inside} of {len(data.measurements)} within tolerance (<i>edgesim validate --hw {_e(hw.label)}</i>; "
                "sources in hwprofiles/measurements/).",
                "caption",
            )
        )
    story.append(_p("Counting conventions", "h2"))
    story.append(_bullets(CONVENTIONS))
    story.append(_p("Known limits of the estimator", "h2"))
    story.append(_bullets(LIMITS))
    if data.warnings:
        # an op counted as zero cost (--allow-unknown) is an assumption of every number above
        story.append(_p("Assumptions of this estimate", "h2"))
        story.append(_bullets([_e(w) for w in data.warnings]))
    story.append(_p("Reproduce", "h2"))
    story.append(_p(f"<font face='Courier' size='7.5'>{_e(data.command)}</font>", "small"))


# -- document ------------------------------------------------------------------------------------------------


class _Doc(BaseDocTemplate):
    def __init__(self, target, data: ReportData, **kwargs):
        super().__init__(target, **kwargs)
        frame = Frame(
            MARGIN,
            MARGIN + 10,
            TEXT_W,
            PAGE_H - 2 * MARGIN - 22,
            id="body",
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._header)])
        self.data = data
        self._heading = 0

    def _header(self, canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(
            MARGIN,
            PAGE_H - MARGIN + 4,
            _fit(f"edgesim report: {self.data.model} on {self.data.hardware.label}", TEXT_W - 60, size=7.5),
        )
        canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 4, self.data.date.strftime("%Y-%m-%d"))
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, PAGE_H - MARGIN, PAGE_W - MARGIN, PAGE_H - MARGIN)
        canvas.line(MARGIN, MARGIN, PAGE_W - MARGIN, MARGIN)
        canvas.restoreState()

    def afterFlowable(self, flowable) -> None:
        if isinstance(flowable, Paragraph) and flowable.style.name in ("H1", "H2"):
            # sections go in the contents and the bookmarks, subsections in the bookmarks only
            level = 0 if flowable.style.name == "H1" else 1
            text = flowable.getPlainText()
            self._heading += 1
            key = f"h{self._heading}"
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(text, key, level=level, closed=level > 0)
            if level == 0:
                self.notify("TOCEntry", (level, text, self.page, key))

    def beforeDocument(self) -> None:
        self._heading = 0


def _canvas_maker(data: ReportData, version: str) -> type[Canvas]:
    """A canvas that numbers pages "N of M" and stamps the report's date as the PDF's dates."""
    from reportlab.lib.utils import TimeStamp

    stamp = TimeStamp(invariant=1)
    stamp.t = data.date.timestamp()
    stamp.lt = data.date.timetuple()
    stamp.YMDhms = tuple(stamp.lt)[:6]
    stamp.dhh = stamp.dmm = 0
    stamp.tzname = "UTC"

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._doc._timeStamp = stamp
            self._saved: list[dict] = []

        def showPage(self):
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7.5)
                self.setFillColor(MUTED)
                self.drawString(MARGIN, MARGIN - 11, f"edgesim {version}  ·  hardware-aware cost estimates")
                self.drawRightString(PAGE_W - MARGIN, MARGIN - 11, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(
    data: ReportData, pics: dict, profile: dict, step: Callable[[str], None] | None = None
) -> tuple[bytes, int]:
    """The report as PDF bytes, and its number of pages."""
    step = step or (lambda _: None)
    hw = data.hardware
    story: list = []
    story.append(_p(f"Design review: {_name(data.model)} on {_e(hw.name)}", "title"))
    story.append(_p(f"{_e(hw.description)}", "subtitle"))
    meta = [
        (
            "model",
            f"<b>{_name(data.model)}</b>"
            + (f": {_e(data.description)}" if data.description else "")
            + (f"<br/><font color='#57606A'>source: {_e(data.source)}</font>" if data.source else ""),
        ),
        (
            "hardware",
            f"<b>{_e(hw.label)}</b>: {_e(hw.chip)}, {hw.clock_hz / 1e6:g} MHz"
            + (f", {_e(hw.board)}" if hw.board else ""),
        ),
        ("software stack", f"{_e(hw.stack.name)}: {_e(hw.stack.description)}"),
        ("variants", "; ".join(f"<b>{_e(v.label)}</b> ({_variant_kind(v)})" for v in data.variants)),
        (
            "budget",
            ", ".join(f"{m} &lt;= {_limit_text(m, lim, data.budget.given[m])}" for m, lim in data.budget.limits.items())
            if data.budget
            else "none given",
        ),
        ("edgesim", f"{_e(data.version)}, {data.date.strftime('%Y-%m-%d')}"),
    ]
    story.append(
        _table(
            [[_p(k, "kvkey"), _p(v, "kv")] for k, v in meta],
            [80, TEXT_W - 80],
            header_rows=0,
            zebra=False,
            extra=[("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE), ("VALIGN", (0, 0), (-1, -1), "TOP")],
        )
    )
    story.append(Spacer(1, 8))
    _summary(data, story)
    story.append(CondPageBreak(130))
    story.append(_p("Contents", "tochead"))
    toc = TableOfContents(dotsMinLevel=0, levelStyles=[S["toc0"]])
    story.append(toc)
    story.append(PageBreak())
    # numbered sections (plan comparison only when plans were given), then the per-layer tables as an appendix
    _latency(data, story, pics, 2)
    _energy(data, story, pics, 3)
    _memory(data, story, pics, 4)
    if data.rows:
        _comparison(data, story, pics, 5)
    _assumptions(data, story, profile, 6 if data.rows else 5)
    _per_layer(data, story)
    buffer = io.BytesIO()
    doc = _Doc(
        buffer,
        data,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"edgesim report: {ellipsize(data.model, NAME_CHARS)} on {hw.label}",
        author=f"edgesim {data.version}",
        subject="Hardware-aware cost estimate: latency, energy and memory per layer",
        creator=f"edgesim {data.version}",
        keywords=f"{ellipsize(data.model, NAME_CHARS)}, {hw.name}, {hw.stack.name}",
        invariant=1,
        pageCompression=1,
    )
    doc.multiBuild(story, canvasmaker=_canvas_maker(data, data.version))
    step("layout")
    return buffer.getvalue(), doc.page


def _variant_kind(v: Variant) -> str:
    return {
        "model": (
            "the model's own precisions"
            if v.estimate.precision_source == "model"
            else f"{v.precisions}, as {_e(v.estimate.hardware.stack.name)} deploys the float model"
        ),
        "precision": f"every layer at {v.label}",
        "baseline": "uncompressed, for reference",
        "plan": f"plan {_e(v.plan.path or v.plan.name) if v.plan else ''}",
    }[v.kind]
