"""The per-layer profile parsers on fixture files written in each tool's documented layout
(tests/data/calibration/): every row, its op type or name, and its time converted to milliseconds by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.calibrate.formats import (
    detect_format,
    parse_benchmark_model,
    parse_layer_profile,
    parse_micro_profiler,
    parse_trtexec_profile,
    parse_xcube_report,
)
from simulator.errors import EdgesimError

DATA = Path(__file__).resolve().parents[1] / "data" / "calibration"


def _text(name: str) -> str:
    return (DATA / name).read_text()


def test_micro_profiler_log_converts_ticks_at_the_given_rate():
    profile = parse_micro_profiler(_text("ds-cnn-microprofiler.log"), 480e6)
    assert profile.format == "tflm-micro-profiler" and not profile.by_type
    assert [r.op_type for r in profile.rows[:3]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    assert len(profile.rows) == 13
    assert profile.rows[0].ms == pytest.approx(480_000 / 480e6 * 1e3)  # 1.0 ms
    assert profile.rows[1].ms == pytest.approx(1.5)
    assert profile.rows[-1].op_type == "SOFTMAX" and profile.rows[-1].ms == pytest.approx(0.005)
    # every event once: 480000 + 4 x 720000 + 4 x 672000 + 24000 + 960 + 4800 + 2400 ticks
    assert profile.total_ms == pytest.approx(6_080_160 / 480e6 * 1e3)


def test_micro_profiler_per_tag_csv_is_marked_by_type():
    profile = parse_micro_profiler(_text("ds-cnn-ticks-per-tag.csv"), 480e6)
    assert profile.by_type
    assert [(r.op_type, round(r.ms, 6)) for r in profile.rows] == [
        ("CONV_2D", 6.6), ("DEPTHWISE_CONV_2D", 6.0), ("AVERAGE_POOL_2D", 0.05), ("RESHAPE", 0.002),
        ("FULLY_CONNECTED", 0.01), ("SOFTMAX", 0.005),
    ]  # fmt: skip
    # the per-tag totals add up to the per-event log's total (same run)
    assert profile.total_ms == pytest.approx(parse_micro_profiler(_text("ds-cnn-microprofiler.log"), 480e6).total_ms)


def test_micro_profiler_event_csv():
    text = '"Event","Tag","Ticks"\n0,CONV_2D,1200\n1,DEPTHWISE_CONV_2D,600\n'
    profile = parse_micro_profiler(text, 1e6)
    assert [(r.op_type, r.ms) for r in profile.rows] == [("CONV_2D", 1.2), ("DEPTHWISE_CONV_2D", 0.6)]


def test_micro_profiler_needs_a_tick_rate():
    with pytest.raises(EdgesimError, match="--ticks-per-second"):
        parse_micro_profiler("CONV_2D took 10 ticks (0 ms).", None)


def test_xcube_report_reads_the_per_node_table_only():
    profile = parse_xcube_report(_text("ds-cnn-network_validate_report.txt"))
    assert len(profile.rows) == 12  # c_id 0..11; the Inter-nodes and total rows are not layers
    assert profile.rows[0].name == "ai_node_0" and profile.rows[0].op_type == "Conv2D" and profile.rows[0].ms == 1.1
    assert [r.op_type for r in profile.rows[9:]] == ["Pool", "Dense", "NL"]
    assert profile.total_ms == pytest.approx(1.1 + 4 * 1.6 + 4 * 1.4 + 0.06 + 0.03 + 0.01)


def test_trtexec_profile_takes_the_per_iteration_average():
    profile = parse_trtexec_profile(_text("resnet-18-trtexec-profile.json"))
    assert len(profile.rows) == 13 and profile.rows[1].name == "conv1 + relu1" and profile.rows[1].ms == 1.12
    assert profile.rows[0].name.startswith("Reformatting CopyNode")
    # without averageMs, the total time over the iteration count
    old = parse_trtexec_profile('[{"count": 50}, {"name": "fc", "timeMs": 5.0, "percentage": 100}]')
    assert old.rows[0].ms == pytest.approx(0.1)


def test_benchmark_model_takes_the_regular_runs_not_the_initialization():
    profile = parse_benchmark_model(_text("ds-cnn-benchmark-model.txt"))
    assert [r.op_type for r in profile.rows][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert len(profile.rows) == 9 and profile.rows[0].ms == 0.902  # [avg ms], not [first]
    assert profile.rows[0].name == "[functional_1/conv2d/Relu]:0"


def test_benchmark_model_table_with_spaces_instead_of_tabs():
    text = _text("ds-cnn-benchmark-model.txt").replace("\t", "    ")
    profile = parse_benchmark_model(text)
    assert len(profile.rows) == 9 and profile.rows[1].ms == 1.351 and profile.rows[1].op_type == "DEPTHWISE_CONV_2D"


@pytest.mark.parametrize(
    "name, kind",
    [
        ("ds-cnn-microprofiler.log", "tflm-micro-profiler"),
        ("ds-cnn-ticks-per-tag.csv", "tflm-micro-profiler"),
        ("ds-cnn-network_validate_report.txt", "x-cube-ai"),
        ("resnet-18-trtexec-profile.json", "trtexec"),
        ("ds-cnn-benchmark-model.txt", "tflite-benchmark-model"),
    ],
)
def test_detection(name, kind):
    assert detect_format(_text(name)) == kind
    assert parse_layer_profile(_text(name), 480e6).format == kind


def test_unknown_text_is_refused_with_the_formats_named():
    with pytest.raises(EdgesimError, match="MicroProfiler log, X-CUBE-AI validation report"):
        parse_layer_profile("model,input,precision,latency_ms\n")


def test_xcube_report_older_layout_with_output_shapes():
    text = (
        " Inference time per node\n"
        " c_id    m_id   desc                output          ms          %\n"
        " -------------------------------------------------------------------\n"
        " 0       0      Conv2D (0x103)      (32,32,16)      0.862     11.7%\n"
        " 1       2      Dense (0x104)       (1,1,10)        0.041      0.6%\n"
        " -------------------------------------------------------------------\n"
        "                                                    7.384 ms\n"
    )
    profile = parse_xcube_report(text)
    assert [(r.op_type, r.ms, r.name) for r in profile.rows] == [("Conv2D", 0.862, ""), ("Dense", 0.041, "")]


def test_trtexec_console_tables_old_and_new():
    old = (
        "[08/09/2020-06:24:39] [I] === Profile (490 iterations ) ===\n"
        "[08/09/2020-06:24:39] [I]          Layer   Time (ms)   Avg. Time (ms)   Time %\n"
        "[08/09/2020-06:24:39] [I]  conv1 + relu1      217.14             0.44      6.9\n"
        "[08/09/2020-06:24:39] [I]          norm1       44.27             0.09      1.4\n"
        "[08/09/2020-06:24:39] [I]          Total     3141.50             6.41    100.0\n"
    )
    new = (
        "[I] === Profile (1000 iterations ) ===\n"
        "[I]    Time(ms)     Avg.(ms)   Median(ms)   Time(%)   Layer\n"
        "[I]      120.12       0.1201       0.1190       4.8   /conv1/Conv + /relu/Relu\n"
        "[I]       30.00       0.0300       0.0290       1.2   /maxpool/MaxPool\n"
        "[I]     2500.00       2.5000       2.4900     100.0   Total\n"
    )
    assert detect_format(old) == detect_format(new) == "trtexec-log"
    assert [(r.name, r.ms) for r in parse_layer_profile(old).rows] == [("conv1 + relu1", 0.44), ("norm1", 0.09)]
    assert [(r.name, r.ms) for r in parse_layer_profile(new).rows] == [
        ("/conv1/Conv + /relu/Relu", 0.1201),
        ("/maxpool/MaxPool", 0.03),
    ]


def test_older_tflm_prints_cycles():
    profile = parse_layer_profile("FULLY_CONNECTED took 2400 cycles\nSOFTMAX took 240 cycles\n", 240e6)
    assert [(r.op_type, r.ms) for r in profile.rows] == [("FULLY_CONNECTED", 0.01), ("SOFTMAX", 0.001)]
