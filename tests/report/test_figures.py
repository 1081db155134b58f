"""The report's figures render without warnings, at print resolution."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from simulator.compare import PlanRow
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.report import figures
from simulator.report.data import collect
from tests.helpers import chain_spec


@pytest.fixture(scope="module")
def variants():
    data = collect(load_model("resnet-8"), load_hardware("cortex-m7:tflm-portable"), precisions=["fp32", "int8"])
    return data.variants


def _row(name, flash, accuracy, pareto):
    return PlanRow(
        plan=name, params=1000, sparsity=0.0, weight_bytes=flash, flash_bytes=flash, compression_ratio=1.0,
        latency_ms=1.0, energy_uj=10.0, peak_ram_bytes=512, fits={"flash": True, "ram": True}, accuracy=accuracy,
        sqnr_db=40.0, top1_agreement=1.0, precision="int8", pareto=pareto,
    )  # fmt: skip


def _check(picture: figures.Picture) -> None:
    image = Image.open(io.BytesIO(picture.png))
    assert image.format == "PNG"
    assert image.width / picture.width >= 200  # dots per inch as placed on the page


@pytest.mark.filterwarnings("error")
def test_every_figure_renders_without_warnings(variants):
    for v in variants:
        _check(figures.latency_per_layer(v, xmax=max(layer.latency_ms for layer in v.estimate.layers)))
        _check(figures.energy_per_layer(v))
    _check(figures.roofline(variants))
    _check(figures.roofline(variants[1:]))
    _check(figures.energy_totals(variants))
    _check(figures.arena_timeline(variants))
    _check(figures.arena_timeline(variants[:1]))
    _check(figures.flash_per_layer(variants))
    rows = [_row("baseline", 50_000, 0.98, True), _row("int8", 13_000, 0.97, True), _row("w4", 7_000, 0.5, True)]
    _check(figures.pareto(rows, "digits-mlp on cortex-m4"))


@pytest.mark.filterwarnings("error")
def test_energy_only_profile_figures():
    data = collect(load_model("lenet-5"), load_hardware("horowitz-45nm"), precisions=["fp32", "int8"])
    names = [name for name, _ in figures.energy_parts(data.variants[0])]
    assert "active baseline" not in names and names[0] == "datapath"
    _check(figures.energy_totals(data.variants))
    _check(figures.energy_per_layer(data.variants[1]))
    _check(figures.arena_timeline(data.variants))


def test_figures_are_deterministic(variants):
    assert figures.roofline(variants).png == figures.roofline(variants).png


# -- layout of real-size and odd models: no text overprints another or leaves the figure -------------------------


def _chain_spec(path, n: int, long_name: str = "") -> str:
    import yaml

    path.write_text(yaml.safe_dump(chain_spec(n, long_name), sort_keys=False))
    return str(path)


def _drawn_texts(fig) -> list:
    """(text, display extent) of every text the figure draws: titles, axis labels, the tick labels inside the
    view, annotations, legend entries."""
    import matplotlib.text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            drawn = axis._update_ticks() if axis.get_visible() else []  # a twin's hidden axis draws nothing
            shown = {id(label) for tick in drawn for label in (tick.label1, tick.label2)}
            if not axis.get_visible():
                hidden.add(id(axis.label))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                hidden |= {id(label) for label in (tick.label1, tick.label2) if id(label) not in shown}
    return [
        (t.get_text(), t.get_window_extent(renderer))
        for t in fig.findobj(matplotlib.text.Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]


def _assert_clean_layout(picture: figures.Picture) -> None:
    fig = picture.figure
    texts = _drawn_texts(fig)
    frame = fig.bbox
    for text, box in texts:
        assert box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1, f"{picture.alt}: {text!r} leaves the figure"
        assert box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1, f"{picture.alt}: {text!r} leaves the figure"
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert overlap_x <= 0.5 or overlap_y <= 0.5, f"{picture.alt}: {a!r} overprints {b!r}"
    renderer = fig.canvas.get_renderer()
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"{picture.alt}: legend over the plot"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 200-layer model at fp32 and int8 (two variants), its first layer named with 300 characters."""
    path = _chain_spec(tmp_path_factory.mktemp("chain") / "chain200.yaml", 200, "expand_" * 43)
    data = collect(load_model(path), load_hardware("cortex-m7:tflm-portable"), precisions=["fp32", "int8"])
    return data.variants


def test_per_layer_charts_show_the_costliest_layers_and_group_the_rest(big):
    v = big[0]
    latencies = [layer.latency_ms for layer in v.estimate.layers]
    bars = figures.layer_bars(latencies, [layer.name for layer in v.estimate.layers])
    assert len(bars) == figures.TOP_LAYERS + 1
    assert bars[-1].label == f"other {200 - figures.TOP_LAYERS} layers"
    # every layer is drawn once, the grouped bar adds up the others, and no shown layer is cheaper than one left out
    assert sorted(i for b in bars for i in b.indices) == list(range(200))
    shown = [latencies[b.indices[0]] for b in bars[:-1]]
    assert min(shown) >= max(latencies[i] for i in bars[-1].indices)
    # labels carry the table's row number and cut long names
    assert all(len(b.label) <= figures.NAME_CHARS + 6 for b in bars)


@pytest.mark.filterwarnings("error")
def test_no_text_overlaps_in_any_figure_of_a_200_layer_model(big):
    scale = figures.latency_scale(big)
    pictures = [figures.latency_per_layer(v, scale) for v in big]
    pictures += [figures.energy_per_layer(v) for v in big]
    pictures += [
        figures.roofline(big),
        figures.roofline(big[:1]),
        figures.energy_totals(big),
        figures.arena_timeline(big),
        figures.arena_timeline(big[:1]),
        figures.flash_per_layer(big),
    ]
    for picture in pictures:
        _assert_clean_layout(picture)


@pytest.mark.filterwarnings("error")
def test_pareto_labels_of_coincident_and_edge_points():
    rows = [
        _row("baseline", 50_000, 0.98, True),
        _row("int8-per-channel", 13_000, 0.97, True),
        _row("int8-per-tensor", 13_000, 0.97, False),  # the same point as the plan above
        _row("w4a8-with-a-long-plan-name-that-runs-on", 7_000, 0.50, True),
        _row("prune-90", 7_000, 0.10, False),
    ]
    picture = figures.pareto(rows, "digits-mlp on cortex-m4")
    _assert_clean_layout(picture)
    labels = [t.get_text() for t in picture.figure.axes[0].texts]
    assert "int8-per-channel, int8-per-tensor" in labels  # one label for the two plans at one point


@pytest.mark.filterwarnings("error")
def test_small_model_figures_are_clean(variants):
    for v in variants:
        _assert_clean_layout(figures.latency_per_layer(v, figures.latency_scale(variants)))
        _assert_clean_layout(figures.energy_per_layer(v))
    _assert_clean_layout(figures.roofline(variants))
    _assert_clean_layout(figures.arena_timeline(variants))
    _assert_clean_layout(figures.flash_per_layer(variants))
