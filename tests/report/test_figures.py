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
    assert "static" not in names and names[0] == "compute"
    _check(figures.energy_totals(data.variants))
    _check(figures.energy_per_layer(data.variants[1]))
    _check(figures.arena_timeline(data.variants))


def test_figures_are_deterministic(variants):
    assert figures.roofline(variants).png == figures.roofline(variants).png
