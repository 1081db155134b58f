"""The command line: outputs, exit codes, and one-line errors (no traceback) for bad input."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from simulator import __version__
from simulator.cli import main
from tests.helpers import LIGHT_DIR, make_model, quantize_with_onnxruntime, tensor_info


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edgesim: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgesim {__version__}"


def test_inspect_json_lenet5(capsys):
    code, out, _ = run(["inspect", "lenet-5", "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    # Caffe LeNet-5: conv 5x5x1x20 (+20), conv 5x5x20x50 (+50), 800x500 (+500), 500x10 (+10)
    assert data["totals"]["params"] == 520 + 25_050 + 400_500 + 5_010
    assert data["totals"]["macs"] == 24 * 24 * 20 * 25 + 8 * 8 * 50 * 500 + 800 * 500 + 500 * 10
    assert data["totals"]["weight_bytes"] == 4 * 431_080
    # the largest layer working set: pool1 reads 20x24x24 and writes 20x12x12 floats
    assert data["totals"]["activation_bytes_max"] == 4 * (20 * 24 * 24 + 20 * 12 * 12)
    conv1 = data["layers"][0]
    assert {k: conv1[k] for k in ("name", "op", "inputs", "outputs", "params", "macs")} == {
        "name": "conv1",
        "op": "Conv",
        "inputs": [[1, 1, 28, 28]],
        "outputs": [[1, 20, 24, 24]],
        "params": 520,
        "macs": 288_000,
    }


def test_inspect_table_and_csv(capsys):
    code, out, _ = run(["inspect", "lenet-5"], capsys)
    assert code == 0 and "431,080" in out and "2,293,000" in out
    code, out, _ = run(["inspect", "lenet-5", "--format", "csv"], capsys)
    rows = out.strip().splitlines()
    assert rows[0].startswith("name,op,op_class,inputs,outputs,weights,params,macs")
    assert rows[1].startswith("conv1,Conv,conv,1x1x28x28,1x20x24x24,20x1x5x5;20,520,288000,")
    assert len(rows) == 1 + 9


def test_output_file_is_written(tmp_path, capsys):
    target = tmp_path / "out.json"
    code, out, _ = run(["inspect", "lenet-5", "--format", "json", "-o", str(target)], capsys)
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["totals"]["params"] == 431_080
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_inspect_writes_nothing(tmp_path, capsys):
    target = tmp_path / "out.json"
    code, _, err = run(["inspect", str(tmp_path / "missing.onnx"), "-o", str(target)], capsys)
    assert_one_line_error(code, err, "missing.onnx")
    assert list(tmp_path.iterdir()) == []


def test_models_list(capsys):
    code, out, _ = run(["models", "list", "--format", "json"], capsys)
    names = [m["name"] for m in json.loads(out)]
    assert code == 0 and "lenet-5" in names


def test_onnx_with_input_shape(capsys):
    code, out, _ = run(
        [
            "inspect",
            str(LIGHT_DIR / "light_squeezenet.onnx"),
            "--input-shape",
            "data_0=1,3,224,224",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0 and json.loads(out)["totals"]["params"] == 1_235_496


# -- malformed input: one line naming the file / place, exit 2 ------------------------------------------------


def _valid_model_bytes() -> bytes:
    return (LIGHT_DIR / "light_squeezenet.onnx").read_bytes()


def test_truncated_onnx(tmp_path, capsys):
    path = tmp_path / "truncated.onnx"
    data = _valid_model_bytes()
    path.write_bytes(data[: len(data) // 3])
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "truncated.onnx")


def test_random_bytes_onnx(tmp_path, capsys):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "noise.onnx", "not a valid ONNX model")


def test_empty_onnx(tmp_path, capsys):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "empty.onnx", "no ONNX graph")


def test_cyclic_graph(tmp_path, capsys):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    path = tmp_path / "cycle.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("b", [1, 4])]), path)
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "cycle.onnx", "cycle", "first", "second")


def test_unknown_op(tmp_path, capsys):
    nodes = [helper.make_node("Shrink", ["x"], ["y"], name="odd")]
    path = tmp_path / "unknown.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("y", [1, 4])]), path)
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "unknown.onnx", "'odd'", "Shrink", "--allow-unknown")
    code, out, err = run(["inspect", str(path), "--allow-unknown", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["warnings"] and "warning" in err


def test_shape_mismatch_names_the_node(tmp_path, capsys):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    model = make_model(nodes, [tensor_info("x", [1, 5])], [tensor_info("y", None)], {"w": np.zeros((4, 3), np.float32)})
    path = tmp_path / "mismatch.onnx"
    onnx.save(model, path)
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "mismatch.onnx", "'fc'", "inner dimensions")


def test_dangling_input(tmp_path, capsys):
    nodes = [helper.make_node("Relu", ["nowhere"], ["y"], name="r")]
    path = tmp_path / "dangling.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 4])], [tensor_info("y", [1, 4])]), path)
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "dangling.onnx", "'nowhere'")


def test_yaml_with_a_wrong_field(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(
        "inputs: [{name: x, shape: [1, 3, 8, 8]}]\nlayers:\n  - {type: conv, name: c1, filters: 4, kernal: 3}\n"
    )
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "net.yaml", "layer 0 (c1)", "'kernal'", "valid fields")


def test_yaml_syntax_error(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("inputs: [unclosed\nlayers: []\n")
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "broken.yaml", "invalid YAML at line")


def test_yaml_is_loaded_safely(tmp_path, capsys):
    path = tmp_path / "evil.yaml"
    path.write_text("inputs: !!python/object/apply:os.system ['echo pwned']\nlayers: []\n")
    code, _, err = run(["inspect", str(path)], capsys)
    assert_one_line_error(code, err, "evil.yaml")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["inspect", "no-such-model"], ["no-such-model", "no such file or zoo model", "lenet-5"]),
        (["inspect", "lenet-5", "--input-shape", "x=1,a"], ["--input-shape", "NAME=D0,D1"]),
        (["inspect", "lenet-5", "--format", "xml"], ["invalid choice", "xml"]),
        (["inspect", "lenet-5", "-o", "/nonexistent-dir/x.json"], ["does not exist"]),
        (["inspect", "."], ["is a directory"]),
        (["inspect", "setup.cfg"], ["unsupported model format", ".cfg"]),
        (["inspect"], ["the following arguments are required: model"]),
    ],
)
def test_bad_arguments(args, fragments, capsys):
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, *fragments)


def test_process_exit_code_and_stderr(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(b"\x08\x07garbage" * 10)
    proc = subprocess.run([sys.executable, "-m", "simulator", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# -- estimate ------------------------------------------------------------------------------------------------

TINY_HW = str(Path(__file__).resolve().parent / "data" / "tiny-hw.yaml")


def test_estimate_json_fields(capsys):
    code, out, _ = run(
        ["estimate", "lenet-300-100", "--hw", TINY_HW, "--precision", "int8", "--format", "json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"model", "hardware", "plan", "totals", "fits", "layers"}
    assert set(data["totals"]) >= {
        "params", "macs", "latency_ms", "energy_uj", "energy_datapath_uj", "energy_memory_uj",
        "weight_bytes", "flash_bytes", "peak_ram_bytes",
    }  # fmt: skip
    assert data["totals"]["macs"] == 266_200
    # int8 weights plus int32 biases: 266,200 + 4 * (300 + 100 + 10)
    assert data["totals"]["flash_bytes"] == 266_200 + 4 * 410
    # arena: the 784-byte input and fc1's 300-byte output (aligned to 304) are live together
    assert data["totals"]["peak_ram_bytes"] == 784 + 304
    assert data["fits"] == {"flash": False, "ram": False}
    layer = data["layers"][0]
    assert {"name", "op", "precision", "macs", "params", "weight_bytes", "latency_ms", "energy_uj", "bound"} <= set(
        layer
    )


def test_estimate_table_says_when_it_does_not_fit(capsys):
    code, out, _ = run(["estimate", "lenet-300-100", "--hw", TINY_HW, "--precision", "int8"], capsys)
    assert code == 0
    # 267,840 B = 261.5625 KiB of a 100,000 B (97.66 KiB) flash: binary units, as memory parts are sold
    assert "weights: 261.6 KiB of 97.66 KiB flash (267.8%) - DOES NOT FIT (over by 163.9 KiB)" in out
    assert "latency_ms:" in out and "energy_uj:" in out


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["estimate", "lenet-5", "--hw", "no-such-chip"], ["unknown hardware profile"]),
        (["estimate", "lenet-5"], ["--hw"]),
        (["estimate", "lenet-5", "--hw", TINY_HW, "--precision", "int3"], ["invalid choice", "int3"]),
        (["estimate", "lenet-5", "--hw", TINY_HW + ":slow", "--precision", "fp32"], ["runs int8 only", ":fast"]),
        (["estimate", "lenet-5", "--hw", "cortex-m55", "--precision", "fp32"], ["no stack of cortex-m55 runs fp32"]),
    ],
)
def test_estimate_bad_arguments(args, fragments, capsys):
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, *fragments)


def test_hw_list_and_show(capsys):
    from simulator.hardware import profile_names

    code, out, _ = run(["hw", "list", "--format", "json"], capsys)
    listed = {p["name"]: p for p in json.loads(out)}
    assert code == 0 and set(listed) == set(profile_names())
    assert listed["cortex-m4"]["default"] == "cmsis-nn" and "tflm-reference" in listed["cortex-m4"]["stacks"]
    code, out, _ = run(["hw", "show", "cortex-m4"], capsys)
    assert code == 0 and "clock_hz: 120000000" in out and "sources:" in out


def test_validate_cli(capsys):
    code, out, _ = run(["validate", "--hw", "cortex-m7-h7a3", "--format", "json"], capsys)
    rows = json.loads(out)
    assert code == 0 and {r["id"] for r in rows} == {
        "mlpt12-st-ic", "mlpt12-st-kws", "mlpt12-st-vww", "mlpt12-st-ad", "mlpt12-st-ic-e", "mlpt12-st-kws-e",
    }  # fmt: skip
    assert all(r["source"] for r in rows)


# -- budgets: exit 1 with a one-line list when exceeded, 0 when met, 2 when malformed ------------------------


def test_budget_sizes_are_binary():
    from simulator.budget import parse_budget, parse_size

    assert parse_size("320K") == 320 * 1024
    assert parse_size("1M") == parse_size("1MiB") == parse_size("1mb") == 1024**2
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("1.5K") == 1536
    assert parse_size("4096") == parse_size("4096B") == 4096
    budget = parse_budget(["latency_ms=50,flash_bytes=1M", "peak_ram_bytes=320K", "energy_uj=2.5e3"])
    assert budget.limits == {"latency_ms": 50, "flash_bytes": 1024**2, "peak_ram_bytes": 327_680, "energy_uj": 2500}


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("", "give METRIC=LIMIT pairs"),
        ("latency=50", "unknown metric 'latency'"),
        ("latency_ms", "is not METRIC=LIMIT"),
        ("latency_ms=", "is not METRIC=LIMIT"),
        ("latency_ms=fast", "is not a number"),
        ("latency_ms=-1", "positive, finite"),
        ("energy_uj=nan", "positive, finite"),
        ("flash_bytes=1T", "is not a size"),
        ("flash_bytes=12Q", "is not a size"),
        ("peak_ram_bytes=2iB", "is not a size"),
        ("latency_ms=50,latency_ms=60", "limited twice"),
    ],
)
def test_malformed_budget(spec, fragment, capsys):
    code, out, err = run(["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8", "--budget", spec], capsys)
    assert out == ""
    assert_one_line_error(code, err, "--budget", fragment)


def test_estimate_over_budget_is_exit_1_with_one_line(capsys):
    # resnet-8 int8 on the M7: 34.133 ms, 78,744 B of weights, a 49,152 B arena
    args = ["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8"]
    code, out, err = run([*args, "--budget", "latency_ms=20,flash_bytes=1M,peak_ram_bytes=32K"], capsys)
    assert code == 1
    assert err == "edgesim: budget exceeded: latency_ms 34.133 > 20, peak_ram_bytes 49152 > 32768 (32K)\n"
    assert "latency_ms: 34.133" in out  # the normal output is still written
    assert "budget (latency_ms <= 20, flash_bytes <= 1M, peak_ram_bytes <= 32K)" in out


def test_estimate_within_budget_is_exit_0(capsys):
    args = ["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8"]
    code, out, err = run([*args, "--budget", "latency_ms=50,flash_bytes=1M,peak_ram_bytes=320K"], capsys)
    assert (code, err) == (0, "")
    assert "resnet-8: ok" in out


def test_estimate_json_budget_keeps_the_fields(capsys):
    args = ["estimate", "resnet-8", "--hw", "cortex-m7", "--precision", "int8", "--format", "json"]
    _, plain, _ = run(args, capsys)
    code, out, _ = run([*args, "--budget", "energy_uj=1000,flash_bytes=1M"], capsys)
    data = json.loads(out)
    assert code == 1
    assert {k: v for k, v in data.items() if k != "budget"} == json.loads(plain)
    assert data["budget"]["ok"] is False
    assert data["budget"]["limits"] == {"energy_uj": 1000.0, "flash_bytes": 1048576.0}
    assert [e["metric"] for e in data["budget"]["exceeded"]] == ["energy_uj"]


def test_latency_budget_on_an_energy_only_profile(capsys):
    code, _, err = run(["estimate", "lenet-5", "--hw", "horowitz-45nm", "--budget", "latency_ms=5"], capsys)
    assert_one_line_error(code, err, "latency_ms", "energy-only")


def test_compare_budget_holds_the_plans_not_the_baseline(capsys):
    plans = Path(__file__).resolve().parents[1] / "plans"
    args = ["compare", "digits-mlp", "--hw", "cortex-m4", "--plan", str(plans / "deep-compression.yaml")]
    # the baseline's 51,840 B are over 32K; the plan's 7,551 B are not
    code, out, err = run([*args, "--budget", "flash_bytes=32K"], capsys)
    assert (code, err) == (0, "")
    code, out, err = run([*args, "--plan", str(plans / "int8-per-channel.yaml"), "--budget", "flash_bytes=32K",
                          "--format", "json"], capsys)  # fmt: skip
    assert code == 1
    assert err == "edgesim: budget exceeded: int8-per-channel: flash_bytes 51840 > 32768 (32K)\n"
    assert json.loads(out)["budget"]["exceeded"] == [
        {"plan": "int8-per-channel", "metric": "flash_bytes", "value": 51840.0, "limit": 32768.0}
    ]


def test_compare_csv_fields_are_stable_with_a_budget(capsys):
    plans = Path(__file__).resolve().parents[1] / "plans"
    args = ["compare", "digits-mlp", "--hw", "cortex-m4", "--plan", str(plans / "int8-per-channel.yaml"), "--format"]
    _, plain, _ = run([*args, "csv"], capsys)
    code, with_budget, err = run([*args, "csv", "--budget", "latency_ms=100"], capsys)
    assert (code, err) == (0, "")  # and no progress bar: stderr is not a terminal
    assert with_budget == plain
    assert plain.splitlines()[0].startswith("plan,params,sparsity,flash B,ratio,latency ms,energy uJ,peak RAM B")


def test_every_subcommand_help_shows_an_example(capsys):
    from simulator.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    leaves = []
    for name, sub in commands.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        leaves += (
            [(f"{name} {child}", p) for a in nested for child, p in a.choices.items()] if nested else [(name, sub)]
        )
    assert "report" in commands
    for name, sub in leaves:
        text = sub.format_help()
        assert "example" in text and "edgesim " + name.split()[0] in text, name
    assert "edgesim report resnet-8" in parser.format_help()


def test_progress_bar_only_on_a_terminal():
    from simulator.progress import progress_bar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet, loud = io.StringIO(), Tty()
    for stream in (quiet, loud):
        with progress_bar(3, "compare", unit="plan", stream=stream) as bar:
            bar.update(3)
    assert quiet.getvalue() == ""
    assert progress_bar(3, "x", stream=loud).disable is False


# -- run / verify ----------------------------------------------------------------------------------------------

INT8_PLAN = str(Path(__file__).resolve().parents[1] / "plans" / "int8-per-channel.yaml")
TFLITE_CNN = Path(__file__).resolve().parent / "data" / "tflite" / "cnn.tflite"


def test_run_tflm_writes_output_and_dump(tmp_path, capsys):
    data = np.load(Path(__file__).resolve().parents[1] / "models" / "digits-test.npz")
    np.save(tmp_path / "x.npy", data["x"][0])
    dump = tmp_path / "dump"
    dump.mkdir()
    args = ["run", "digits-cnn", "--plan", INT8_PLAN, "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
            "--dump", str(dump)]  # fmt: skip
    code, out, _ = run(args, capsys)
    y = np.load(tmp_path / "y.npy")
    assert code == 0 and y.dtype == np.int8 and y.shape == (1, 10)
    # the held-out sample's label, predicted by the integer model and printed as the argmax
    assert int(y.argmax()) == int(data["y"][0])
    output_row = next(line for line in out.splitlines() if line.startswith("prob "))
    assert output_row.split()[3] == str(int(data["y"][0]))
    files = sorted(p.name for p in dump.iterdir())
    assert files[0] == "0000_input.npy" and any("conv1" in f for f in files)


def test_run_tflite_fixture_matches_tflite_micro(tmp_path, capsys):
    """A .tflite takes NHWC input, as its user holds it, and returns its output in the file's layout."""
    fixture = np.load(TFLITE_CNN.with_name("cnn_input.npz"))
    np.save(tmp_path / "x.npy", fixture["input"])
    code, _, _ = run(
        ["run", str(TFLITE_CNN), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")], capsys
    )
    assert code == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), fixture["tflm_output"])
    np.save(tmp_path / "nchw.npy", fixture["input"].transpose(0, 3, 1, 2))
    code, _, err = run(["run", str(TFLITE_CNN), "--input", str(tmp_path / "nchw.npy")], capsys)
    assert_one_line_error(code, err, "nchw.npy", f"takes {fixture['input'].shape}")


def test_run_tflite_returns_and_dumps_nhwc(tmp_path, capsys):
    """A rank-4 output and every rank-4 file tensor of --dump come back NHWC (tflite-micro's own values)."""
    name = TFLITE_CNN.with_name("prelu.tflite")
    fixture = np.load(name.with_name("prelu_input.npz"))
    np.save(tmp_path / "x.npy", fixture["input_int8"])
    dump = tmp_path / "dump"
    dump.mkdir()
    args = ["run", str(name), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"), "--dump", str(dump)]
    code, _, _ = run(args, capsys)
    assert code == 0 and np.array_equal(np.load(tmp_path / "y.npy"), fixture["tflm_output"])
    assert np.array_equal(np.load(sorted(dump.iterdir())[0]), fixture["input_int8"])  # the input, NHWC
    assert np.array_equal(np.load(sorted(dump.iterdir())[-1]), fixture["tflm_output"])


FLOAT_TFLITE = sorted((Path(__file__).resolve().parent / "data" / "tflite_float").glob("*.tflite"))


@pytest.mark.parametrize("model", FLOAT_TFLITE, ids=lambda p: p.stem)
def test_run_float_mode_equals_the_tflite_interpreter(model, tmp_path, capsys):
    """--mode float runs a float .tflite (float32, or float16 weights behind DEQUANTIZE) with edgesim's float
    kernels, NHWC in and out, and gives TensorFlow's TFLite interpreter's output (stored by
    scripts/make_tflite_fixtures.py) within float32 rounding."""
    io = np.load(model.with_name(f"{model.stem}_io.npz"))
    np.save(tmp_path / "x.npy", io["input"])
    args = ["run", str(model), "--mode", "float", "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
    code, out, _ = run(args, capsys)
    y = np.load(tmp_path / "y.npy")
    assert code == 0 and "mode: float" in out
    assert y.shape == io["output"].shape and y.dtype == np.float32
    assert np.abs(y - io["output"]).max() <= 1e-5 * np.abs(io["output"]).max()


def test_run_float_io_tflite_writes_tflite_micros_float32_output(tmp_path, capsys):
    """A .tflite with float input and output (QUANTIZE ... DEQUANTIZE): float feeds in, TFLM's float32 out."""
    name = TFLITE_CNN.with_name("float_io_cnn.tflite")
    fixture = np.load(name.with_name("float_io_cnn_input.npz"))
    np.save(tmp_path / "x.npy", fixture["input_float32"])
    code, out, _ = run(["run", str(name), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")], capsys)
    assert code == 0 and "float32" in out
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and np.array_equal(y, fixture["tflm_output"])


def test_run_bad_input_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 3), np.float32))
    code, _, err = run(["run", "digits-cnn", "--plan", INT8_PLAN, "--input", str(tmp_path / "x.npy")], capsys)
    assert_one_line_error(code, err, "x.npy", "takes (1, 1, 8, 8)")
    code, _, err = run(["run", "digits-cnn", "--input", str(tmp_path / "x.npy")], capsys)
    assert code == 2


def test_run_unquantized_model_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    code, _, err = run(["run", "digits-mlp", "--input", str(tmp_path / "x.npy")], capsys)
    assert_one_line_error(code, err, "has no quantization")


def test_verify_reports_layers_and_accuracy(capsys):
    code, out, _ = run(["verify", "digits-mlp", "--plan", INT8_PLAN, "--samples", "50", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["samples"] == 50
    assert [layer["name"] for layer in data["layers"]][-1] == "prob"
    assert data["output_sqnr_db"] > 25 and data["top1_agreement"] >= 0.96
    assert data["integer_accuracy"] == pytest.approx(data["float_accuracy"], abs=0.04)


def test_compress_writes_qdq_that_onnxruntime_runs_as_run_ort_does(tmp_path, capsys):
    import onnxruntime

    data = np.load(Path(__file__).resolve().parents[1] / "models" / "digits-test.npz")
    np.save(tmp_path / "x.npy", data["x"][5])
    model = tmp_path / "digits-cnn-int8.onnx"
    code, out, _ = run(["compress", "digits-cnn", "--plan", INT8_PLAN, "-o", str(model)], capsys)
    assert code == 0 and "loadable by onnxruntime" in out
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: data["x"][5:6]})[0]
    code, _, _ = run(
        ["run", str(model), "--input", str(tmp_path / "x.npy"), "--mode", "ort", "-o", str(tmp_path / "y.npy")], capsys
    )
    # every integer layer matches bit for bit (tests/execute/test_ort_mode.py); the unquantized final softmax
    # runs in float on both sides, where summation order may move the last bit
    y = np.load(tmp_path / "y.npy")
    assert code == 0 and y.argmax() == expected.argmax()
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-9)


def test_compress_needs_an_onnx_name(tmp_path, capsys):
    code, _, err = run(["compress", "digits-cnn", "--plan", INT8_PLAN, "-o", str(tmp_path / "x.tflite")], capsys)
    assert_one_line_error(code, err, "give a .onnx file name")


def test_written_files_get_ordinary_permissions(tmp_path, capsys):
    import os
    import stat

    target = tmp_path / "counts.json"
    assert run(["inspect", "lenet-5", "--format", "json", "-o", str(target)], capsys)[0] == 0
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


# -- for people: units, terminal width, help, messages ----------------------------------------------------------


def test_format_bytes_uses_binary_units():
    from simulator.output import format_bytes

    assert format_bytes(2 * 1024**2) == "2 MiB"
    assert format_bytes(512 * 1024) == "512 KiB"
    assert format_bytes(267_840) == "261.6 KiB"  # 267840 / 1024 = 261.5625
    assert format_bytes(768) == "768 B"
    assert format_bytes(1000 * 1024) == "1,000 KiB"  # below 1 MiB, no exponent
    assert format_bytes(4 * 2**64) == "67,108,864 TiB"


@pytest.mark.parametrize("command", [["models", "list"], ["hw", "list"]])
def test_listings_fit_the_terminal(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    code, out, _ = run(command, capsys)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 90
    # the wrapped column keeps every word: json carries the same text
    code, full, _ = run([*command, "--format", "json"], capsys)
    words = " ".join(out.split())
    for row in json.loads(full):
        text = row.get("description") or row.get("chip")
        assert " ".join(text.split())[:40] in words or all(w in words for w in text.split())


def test_help_names_every_model_format_and_argument(capsys):
    with pytest.raises(SystemExit):
        main(["estimate", "--help"])
    assert ".tflite" in capsys.readouterr().out
    for command, argument in ((["hw", "show", "--help"], "PROFILE"), (["hw", "validate", "--help"], "FILE")):
        with pytest.raises(SystemExit):
            main(command)
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.strip().startswith(argument))
        assert len(line.split()) > 1, out  # the argument has a help text


def test_plan_field_error_names_the_value_once(tmp_path, capsys):
    plan = tmp_path / "p.yaml"
    plan.write_text("name: x\npasses:\n  - pass: quantize\n    weights: {bits: 99}\n")
    code, _, err = run(["estimate", "lenet-5", "--hw", "cortex-m4", "--plan", str(plan)], capsys)
    assert_one_line_error(code, err, "weights: bits: expected a value in [2, 16], got 99")
    assert err.count("got") == 1


def test_input_shape_names_are_stripped():
    from simulator.cli import parse_input_shape

    assert parse_input_shape(" data_0 = 1, 3,224,224") == ("data_0", (1, 3, 224, 224))


def test_allow_unknown_after_binding_dynamic_dims(tmp_path, capsys):
    """The issue's case: an unknown op between dynamic dims; the hint names the dims, and once they are bound
    --allow-unknown estimates everything around the op."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Shrink", ["c"], ["s"], name="odd"),
        helper.make_node("GlobalAveragePool", ["s"], ["y"], name="gap"),
    ]
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    path = tmp_path / "dyn_224.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", ["N", 3, "H", "W"])], [tensor_info("y", None)], {"w": w}), path)
    code, _, err = run(["inspect", str(path), "--allow-unknown"], capsys)
    assert_one_line_error(code, err, "dims 0 (N), 2 (H), 3 (W)", "--input-shape x=1,3,224,224")
    args = ["estimate", str(path), "--hw", "cortex-m7", "--precision", "int8", "--allow-unknown"]
    code, out, err = run([*args, "--input-shape", "x=1,3,224,224", "--format", "json"], capsys)
    assert code == 0 and "unknown op Shrink" in err
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}
    assert layers["conv"]["macs"] == 4 * 224 * 224 * 27 and layers["gap"]["latency_ms"] > 0
    assert layers["odd"]["latency_ms"] == 0


def _branchy_cnn() -> onnx.ModelProto:
    """Conv branches joined by Add and Concat: quantize_static's QOperator output uses com.microsoft.QLinearAdd and
    QLinearConcat (with inputs of different scales)."""
    rng = np.random.default_rng(3)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], **pads),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], **pads),
        helper.make_node("Conv", ["x", "w2", "b2"], ["c2"], **pads),
        helper.make_node("Add", ["c1", "c2"], ["a"]),
        helper.make_node("Concat", ["r0", "a"], ["k"], axis=1),
        helper.make_node("Conv", ["k", "w3", "b3"], ["y"]),
    ]
    inits = {"w0": w(8, 3, 3, 3), "b0": w(8), "w1": w(4, 8, 3, 3), "b1": w(4), "w2": w(4, 3, 3, 3), "b2": w(4),
             "w3": w(5, 12, 1, 1), "b3": w(5)}  # fmt: skip
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 5, 8, 8])], inits, opset=13)


@pytest.mark.parametrize("activations", ["QUInt8", "QInt8"])
def test_run_ort_qoperator_model_with_contrib_ops_equals_onnxruntime(tmp_path, capsys, activations):
    """A QOperator model runs from the command line (it used to stop at the generic importer's unknown-op check),
    also with the model's value_info removed (the contrib ops' shapes are then derived), bit for bit."""
    ort = pytest.importorskip("onnxruntime")
    path = quantize_with_onnxruntime(_branchy_cnn(), tmp_path / "model.onnx", "QOperator", activations)
    model = onnx.load(str(path))
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    assert {("com.microsoft", "QLinearConcat"), ("com.microsoft", "QLinearAdd")} <= ops
    del model.graph.value_info[:]
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in range(3):
        x = (np.random.default_rng(seed).standard_normal((1, 3, 8, 8)) * (1 + seed)).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        args = ["run", str(path), "--mode", "ort", "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
        code, _, err = run(args, capsys)
        assert code == 0, err
        assert np.array_equal(np.load(tmp_path / "y.npy"), session.run(None, {"x": x})[0])


def test_run_float_mode_on_a_quantized_streaming_model(tmp_path, capsys):
    """--mode float on an int8 .tflite with a resource variable: the int8 frame is read as the values it stands
    for, the state starts from its initial value, and the float result lands within two output steps of
    tflite-micro's first-call output."""
    stream = Path(__file__).resolve().parent / "data" / "tflite_stream"
    calls = np.load(stream / "streaming_window_calls.npz")
    np.save(tmp_path / "x.npy", calls["frames"][0])
    args = ["run", str(stream / "streaming_window.tflite"), "--mode", "float", "--input", str(tmp_path / "x.npy"),
            "-o", str(tmp_path / "y.npy")]  # fmt: skip
    code, _, _ = run(args, capsys)
    from simulator.importers import load_model

    graph = load_model(str(stream / "streaming_window.tflite"))
    q = graph.tensors[graph.outputs[0]].quant
    expected = (calls["tflm_outputs"][0].astype(np.float64) - int(q.zero_point)) * float(q.scale)
    assert code == 0 and np.abs(np.load(tmp_path / "y.npy") - expected).max() <= 2 * float(q.scale)
