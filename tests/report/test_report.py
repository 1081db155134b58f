"""edgesim report: a real multi-page PDF whose text carries the estimate's layers and totals, byte-identical
across runs, written atomically, with figures that render without warnings."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
from pathlib import Path

import onnx
import pytest
from onnx import helper
from pypdf import PdfReader

from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.hardware import load_hardware, read_profile
from simulator.importers import load_model
from simulator.report import write_atomic
from simulator.report.data import collect, memory_energy_by_level, report_date
from simulator.report.pdf import profile_rows
from tests.helpers import make_model, tensor_info

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "plans"
EPOCH = "1718000000"  # 2024-06-10 06:13:20 UTC


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


@pytest.fixture(scope="module")
def resnet8(tmp_path_factory):
    """The README's report (resnet-8, int8, Cortex-M7) and `estimate --format json` of the same inputs."""
    args = ["resnet-8", "--hw", "cortex-m7", "--precision", "int8"]
    path = tmp_path_factory.mktemp("report") / "report.pdf"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        code, out, err = _cli(["report", *args, "-o", str(path)])
    assert (code, err) == (0, ""), err
    assert out.startswith(f"{path}: ") and "pages" in out
    code, out, _ = _cli(["estimate", *args, "--format", "json"])
    assert code == 0
    return path, json.loads(out), _text(path)


def test_report_has_pages_layers_and_totals(resnet8):
    path, est, text = resnet8
    assert len(PdfReader(path).pages) > 3
    for layer in est["layers"]:
        assert layer["name"] in text, layer["name"]
    totals = est["totals"]
    # the totals `estimate --format json` prints, as the report writes them
    assert f"{totals['latency_ms']:.3f}" in text
    assert f"{totals['flash_bytes']:,}" in text
    assert f"{totals['peak_ram_bytes']:,}" in text
    assert f"{totals['macs']:,}" in text
    assert f"{totals['energy_uj']:,.2f}" in text


def test_report_has_the_sections_and_sources(resnet8):
    _, est, text = resnet8
    for heading in (
        "1 Summary",
        "2 Latency and roofline",
        "3 Energy",
        "4 Memory",
        "5 Assumptions and sources",
        "A Per-layer estimates",
    ):
        assert heading in text
    # no plan was given: neither the contents nor the body has a plan comparison
    assert "Plan comparison" not in text
    # verdicts against the profile's capacities
    assert "fits" in text and "of the 2 MiB flash" in text and "of the 512 KiB sram" in text
    # the profile's numbers with their sources, verbatim (reportlab may break a line anywhere)
    profile = read_profile(Path(load_hardware("cortex-m7").path))
    flat = " ".join(text.split())
    assert " ".join(profile["sources"]["memory.flash.capacity_bytes"].split()) in flat
    assert "Counting conventions" in text and "Known limits of the estimator" in text
    # the header carries the SOURCE_DATE_EPOCH date and the version
    assert "2024-06-10" in text and "edgesim 0.1.0" in text


def test_report_metadata_is_fixed(resnet8):
    path, _, _ = resnet8
    meta = PdfReader(path).metadata
    assert meta.title == "edgesim report: resnet-8 on cortex-m7:cmsis-nn"
    assert meta.creation_date == datetime.datetime(2024, 6, 10, 6, 13, 20, tzinfo=datetime.UTC)
    assert meta.modification_date == meta.creation_date


def test_same_inputs_give_identical_bytes(tmp_path, monkeypatch):
    """Two runs (and two output names) give the same bytes: fp32 vs int8 on a stack with both."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    args = ["report", "lenet-5", "--hw", "cortex-m4:tflm-portable", "--precision", "fp32", "--precision", "int8"]
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert _cli([*args, "-o", str(first)])[0] == 0
    first.rename(second)
    assert _cli([*args, "-o", str(first)])[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "b.pdf"]  # no temporary files left
    text = _text(first)
    # total energy per inference first (what a board measures), then the seed's energy table: an int8 MAC
    # costs far less than an fp32 one, and the report says by how much
    assert "int8 vs fp32" in text and "less energy in total" in text and "less datapath energy" in text
    assert "A.1 fp32" in text and "A.2 int8" in text


def test_plans_with_a_budget(tmp_path):
    """Plans: comparison table and Pareto chart; a budget one plan exceeds is exit 1 with a one-line list
    after the report is written; the reference baseline is not held to it."""
    path = tmp_path / "plans.pdf"
    code, out, err = _cli(
        [
            "report", "digits-mlp", "--hw", "cortex-m4",
            "--plan", str(PLANS / "int8-per-channel.yaml"), "--plan", str(PLANS / "deep-compression.yaml"),
            "--budget", "flash_bytes=32K,latency_ms=50", "-o", str(path),
        ]
    )  # fmt: skip
    assert code == 1
    assert err == "edgesim: budget exceeded: int8-per-channel: flash_bytes 51840 > 32768 (32K)\n"
    assert path.is_file()
    text = _text(path)
    assert "int8-per-channel" in text and "deep-compression" in text and "baseline" in text
    assert "98.44%" in text  # digits-mlp's test accuracy, measured on its held-out set
    assert "Pareto" in text and "OVER" in text and "over budget" in text
    assert "5 Plan comparison" in text and "6 Assumptions and sources" in text
    # the reproduce line names the file written
    assert " ".join(f"-o {path}".split()) in " ".join(text.split())


def test_crash_leaves_no_file(tmp_path, monkeypatch):
    import simulator.report as report

    target = tmp_path / "report.pdf"
    target.write_bytes(b"the previous report")

    def crash(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(report, "render", crash)
    with pytest.raises(RuntimeError):
        main(["report", "lenet-5", "--hw", "cortex-m4", "--precision", "int8", "-o", str(target)])
    assert target.read_bytes() == b"the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_write_atomic_cleans_up_when_the_rename_fails(tmp_path, monkeypatch):
    import os

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises((OSError, EdgesimError)):
        write_atomic(b"%PDF", tmp_path / "r.pdf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-o", "report.png"], "ending in .pdf"),
        (["-o", "/nonexistent-dir/report.pdf"], "does not exist"),
        (["-o", "x.pdf", "--budget", "flash=1M"], "unknown metric 'flash'"),
        (["-o", "x.pdf", "--samples", "0"], "--samples 0"),
    ],
)
def test_bad_report_arguments(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["report", "lenet-5", "--hw", "cortex-m4", "--precision", "int8", *args])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("edgesim: error: ") and fragment in err
    assert list(tmp_path.iterdir()) == []


def test_report_date():
    assert report_date({"SOURCE_DATE_EPOCH": "0"}) == datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    today = report_date({})
    assert (today.hour, today.minute, today.second) == (0, 0, 0)  # a date, not a time: stable within a day
    with pytest.raises(EdgesimError, match="SOURCE_DATE_EPOCH"):
        report_date({"SOURCE_DATE_EPOCH": "yesterday"})


def test_memory_energy_split_adds_up():
    hw = load_hardware("cortex-m7:tflm-portable")
    data = collect(load_model("lenet-5"), hw, precisions=["fp32"])
    for layer in data.variants[0].estimate.layers:
        assert sum(memory_energy_by_level(layer, hw).values()) == pytest.approx(layer.energy_memory_uj, rel=1e-12)


def test_profile_rows_cover_every_source_of_the_stack():
    hw = load_hardware("cortex-m7:cmsis-nn")
    profile = read_profile(Path(hw.path))
    rows = profile_rows(profile, "cmsis-nn")
    keys = {key for key, _, _ in rows}
    wanted = {k for k in profile["sources"] if not k.startswith("stacks.") or k.startswith("stacks.cmsis-nn")}
    assert wanted <= keys
    assert not any(k.startswith("stacks.x-cube-ai") for k in keys)  # other stacks stay out
    clock = next(row for row in rows if row[0] == "clock_hz")
    assert clock[1] == "480,000,000" and "DS12110" in clock[2]
    sram = next(row for row in rows if row[0] == "memory.sram.capacity_bytes")
    assert sram[1] == "524,288 (512 KiB)"


def test_budget_verdicts_per_variant():
    from simulator.budget import parse_budget

    data = collect(
        load_model("lenet-5"),
        load_hardware("cortex-m4:tflm-portable"),
        precisions=["fp32", "int8"],
        budget=parse_budget("flash_bytes=1M"),
    )
    # fp32 weights: 4 B x 431,080 params > 1 MiB; int8 fits
    assert list(data.over_budget) == ["fp32"]
    assert data.over_budget["fp32"][0].value == data.variants[0].totals["flash_bytes"] > 1024**2
    assert math.isclose(data.over_budget["fp32"][0].limit, 1024**2)


# -- large and odd graphs ---------------------------------------------------------------------------------------


def _report_text(graph, tmp_path, hw="cortex-m7:tflm-portable", precisions=("int8",)) -> tuple[str, int]:
    from simulator.report import build_report

    path = tmp_path / "odd.pdf"
    report = build_report(graph, load_hardware(hw), path, precisions=list(precisions), command="edgesim report")
    return _text(path), report.pages


def test_summary_columns_hold_large_numbers():
    """VGG-16 in fp32 on a Cortex-M4: hundreds of MB and millions of µJ. Every column of plain numbers is at
    least as wide as its widest cell plus the cell padding, and the table stays within the text width."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Table

    from simulator.report import pdf

    data = collect(load_model("vgg-16"), load_hardware("cortex-m4:tflm-portable"), precisions=["fp32", "int8"])
    assert data.variants[0].totals["flash_bytes"] > 500_000_000
    story: list = []
    pdf._summary(data, story)
    table = next(f for f in story if isinstance(f, Table))
    rows = table._cellvalues
    for col, width in enumerate(table._colWidths):
        cells = [row[col] for row in rows]
        if all(isinstance(c, str) for c in cells):
            widest = max(stringWidth(c, "Helvetica-Bold", 6.8) for c in cells)
            assert width >= widest + 6, (rows[0][col], width, widest)
    assert sum(table._colWidths) <= pdf.TEXT_W + 0.5


def test_a_long_name_and_a_3000_input_concat_lay_out(tmp_path):
    """A 5000-character layer name and a Concat of 3000 inputs: the report is written (no LayoutError), the
    name is cut with an ellipsis, the Concat's 3000 inputs are counted, not listed."""
    import yaml

    layers = [{"type": "conv", "name": "n" * 5000, "filters": 1, "kernel": 1, "input": "image"}]
    layers += [{"type": "conv", "name": f"c{i}", "filters": 1, "kernel": 1, "input": "image"} for i in range(1, 3000)]
    layers.append({"type": "concat", "name": "cat", "inputs": ["n" * 5000] + [f"c{i}" for i in range(1, 3000)]})
    spec = tmp_path / "odd.yaml"
    spec.write_text(yaml.safe_dump({"name": "odd", "inputs": [{"name": "image", "shape": [1, 3, 4, 4]}],
                                    "layers": layers}))  # fmt: skip
    text, pages = _report_text(load_model(str(spec)), tmp_path)
    assert "n" * 5000 not in text and "nnnnnnnnnn\u2026" in text
    assert "3,000 x 1x1x4x4 » 1x3000x4x4" in text
    # 3001 layers at 66 to a table: the appendix holds them in about 46 pages, the rest of the report ~10
    assert pages < 70


def test_a_dimension_of_2_to_the_31(tmp_path):
    """A 2^31 dimension is refused at import in one line (docs/security.md); the largest accepted one,
    2^31 - 1, reports with its buffer sizes exact (int8, 16-byte aligned as TFLM aligns them)."""
    import yaml

    spec = tmp_path / "big.yaml"
    spec.write_text(yaml.safe_dump({"name": "big", "inputs": [{"name": "image", "shape": [1, 2**31]}],
                                    "layers": [{"type": "relu", "name": "r"}]}))  # fmt: skip
    with pytest.raises(EdgesimError, match="positive integers"):
        load_model(str(spec))
    spec.write_text(yaml.safe_dump({"name": "big", "inputs": [{"name": "image", "shape": [1, 2**31 - 1]}],
                                    "layers": [{"type": "relu", "name": "r"}]}))  # fmt: skip
    text, _ = _report_text(load_model(str(spec)), tmp_path)
    assert "image (2,147,483,648 B)" in text  # 2^31 - 1 bytes in a 16-byte aligned buffer


def test_an_empty_graph_says_so(tmp_path):
    from simulator.graph import Graph, Tensor

    graph = Graph("empty", [], {"x": Tensor("x", (1, 4))}, ["x"], ["x"])
    text, _ = _report_text(graph, tmp_path, precisions=("fp32", "int8"))
    assert "computes nothing" in text
    assert "0 slowest" not in text and "infx" not in text and "nan" not in text.lower().replace("nanos", "")


def test_ops_counted_as_zero_cost_are_listed_in_the_assumptions(tmp_path, monkeypatch):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Shrink", ["r"], ["y"], name="odd")]
    model_path = tmp_path / "odd.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", None)]), model_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    path = tmp_path / "odd.pdf"
    code, _, err = _cli(["report", str(model_path), "--hw", "cortex-m7:tflm-portable", "--precision", "fp32",
                         "--allow-unknown", "-o", str(path)])  # fmt: skip
    assert code == 0 and "unknown op Shrink" in err
    assumptions = _text(path).split("Assumptions and sources")[-1]  # the section, after the contents' entry
    assert "Assumptions of this estimate" in assumptions
    assert "unknown op Shrink at node 'odd' counted as zero cost" in " ".join(assumptions.split())


def test_a_200_layer_model_file_gives_a_short_report_named_after_the_file(tmp_path, monkeypatch):
    """The title is the file's name (not the name inside it), the per-layer appendix takes about a page per 66
    layers (200 layers: 4 pages, 11 in all), and the reproduce line names the file written."""
    import yaml

    from tests.helpers import chain_spec

    spec = tmp_path / "my-net.yaml"
    spec.write_text(yaml.safe_dump(chain_spec(200)))  # the spec's own name is chain-200
    path = tmp_path / "my-net.pdf"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    code, out, err = _cli(
        ["report", str(spec), "--hw", "cortex-m7:tflm-portable", "--precision", "int8", "-o", str(path)]
    )
    assert code == 0, err
    reader = PdfReader(path)
    assert reader.metadata.title == "edgesim report: my-net.yaml on cortex-m7:tflm-portable"
    text = _text(path)
    assert "Design review: my-net.yaml on cortex-m7" in text and "chain-200" not in text
    assert len(reader.pages) <= 12
    assert "A Per-layer estimates" in text and "b49_add" in text  # the 200th layer is in the tables


def test_profile_field_names_break_between_words():
    from simulator.report.pdf import _break_path

    lines = _break_path("stacks.cmsis-nn.efficiency.depthwise_conv_bytes_per_cycle", 80).split("<br/>")
    assert "".join(lines) == "stacks.cmsis-nn.efficiency.depthwise_conv_bytes_per_cycle"
    # every break falls after a dot or an underscore
    assert len(lines) > 1 and all(line.endswith((".", "_")) for line in lines[:-1])
