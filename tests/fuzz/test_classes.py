"""One regression test (at least) per class of hostile input issue 12 found, through the CLI.

Each asserts the one-line refusal (exit 2, ``edgesim: error:``, no traceback) and what the line must say.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from simulator.cli import main
from tests.fuzz.cases import ROOT, base_onnx
from tests.helpers import make_model, tensor_info

PLAN = str(ROOT / "plans" / "int8-per-channel.yaml")


def refused(argv, capsys, *fragments) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("edgesim: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


# -- 1. allocation from hostile shapes -------------------------------------------------------------------------


def _conv_model(shape) -> onnx.ModelProto:
    w = np.ones((4, shape[1], 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    return make_model(nodes, [tensor_info("x", shape)], [tensor_info("y", [shape[0], 4, *shape[2:]])], {"w": w})


@pytest.mark.parametrize("command", ["compare", "verify", "estimate"])
def test_seeded_inputs_of_a_huge_shape_are_refused_before_allocating(tmp_path, capsys, command):
    model = save(_conv_model([1, 3, 100000, 100000]), tmp_path / "huge.onnx")
    argv = {
        "compare": ["compare", model, "--hw", "cortex-m4", "--samples", "1"],
        "verify": ["verify", model, "--plan", PLAN, "--samples", "1"],
        "estimate": ["estimate", model, "--hw", "cortex-m4", "--plan", PLAN],
    }[command]
    refused(argv, capsys, "30,000,000,000 elements", "--max-elements")


def test_estimate_without_allocation_still_works_on_a_huge_shape(tmp_path, capsys):
    model = save(_conv_model([1, 3, 100000, 100000]), tmp_path / "huge.onnx")
    assert main(["estimate", model, "--hw", "cortex-m4", "--precision", "int8", "--format", "json"]) == 0
    assert '"macs": 120000000000' in capsys.readouterr().out


@pytest.mark.parametrize("op", ["Expand", "ConstantOfShape"])
def test_folded_constants_of_a_huge_shape_are_refused(tmp_path, capsys, op):
    shape = np.array([100000, 1000000], np.int64)
    if op == "Expand":
        nodes = [helper.make_node("Expand", ["one", "shape"], ["big"], name="grow")]
        inits = {"one": np.ones(1, np.float32), "shape": shape}
    else:
        nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="grow")]
        inits = {"shape": shape}
    nodes.append(helper.make_node("Add", ["x", "big"], ["y"], name="add"))
    model = make_model(nodes, [tensor_info("x", [1])], [tensor_info("y", [100000, 1000000])], inits)
    refused(["inspect", save(model, tmp_path / "fold.onnx")], capsys, "'grow'", "100,000,000,000 elements")


def test_max_elements_option_lowers_and_raises_the_limit(tmp_path, capsys):
    refused(["--max-elements", "100", "compare", "lenet-5", "--hw", "cortex-m4", "--samples", "1"], capsys,
            "784 elements", "--max-elements 784")  # fmt: skip
    assert main(["--max-elements", "1000000", "compare", "lenet-5", "--hw", "cortex-m4", "--samples", "1"]) == 0


def test_environment_variable_sets_the_limit(monkeypatch, capsys):
    monkeypatch.setenv("EDGESIM_MAX_ELEMENTS", "100")
    refused(["compare", "lenet-5", "--hw", "cortex-m4", "--samples", "1"], capsys, "EDGESIM_MAX_ELEMENTS")
    monkeypatch.setenv("EDGESIM_MAX_ELEMENTS", "lots")
    refused(["compare", "lenet-5", "--hw", "cortex-m4", "--samples", "1"], capsys, "EDGESIM_MAX_ELEMENTS='lots'")


def _npy_header(shape, descr="<f4") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def test_npy_header_claiming_ten_billion_elements_is_refused(tmp_path, capsys):
    path = tmp_path / "x.npy"
    path.write_bytes(_npy_header((10**10,)) + b"\0" * 64)
    refused(["run", "digits-cnn", "--plan", PLAN, "--input", path], capsys, "10,000,000,000 elements")


def test_npy_header_larger_than_its_file_is_refused(tmp_path, capsys):
    path = tmp_path / "x.npy"
    path.write_bytes(_npy_header((1, 1, 8, 8)) + b"\0" * 16)
    refused(["run", "digits-cnn", "--plan", PLAN, "--input", path], capsys, "cannot read it")


# -- 2. unbounded reads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_model_path_that_is_a_device_is_refused_without_reading(tmp_path, capsys, device):
    link = tmp_path / "model.onnx"
    link.symlink_to(device)
    refused(["inspect", link], capsys, "not a regular file")


def test_model_path_that_is_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    refused(["inspect", fifo], capsys, "not a regular file")


def test_calibration_path_that_is_a_device_is_refused(tmp_path, capsys):
    link = tmp_path / "calib.npy"
    link.symlink_to("/dev/urandom")
    refused(["estimate", "lenet-5", "--hw", "cortex-m4", "--plan", PLAN, "--calib", link], capsys, "not a regular")


def _external(tmp_path, **fields) -> str:
    model = base_onnx()
    tensor = next(t for t in model.graph.initializer if t.name == "w")
    (tmp_path / "w.bin").write_bytes(numpy_helper.to_array(tensor).tobytes())
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "w.bin", **fields}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return save(model, tmp_path / "model.onnx")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"offset": "-1"}, "offset '-1' is not a non-negative integer"),
        ({"length": "-5"}, "length '-5' is not a non-negative integer"),
        ({"offset": "abc"}, "offset 'abc'"),
        ({"length": "1e3"}, "length '1e3'"),
        ({"offset": "100000"}, "beyond the end"),
        ({"length": "100000"}, "beyond the end"),
        ({"location": "w\0.bin"}, "no file name"),
        ({"location": "../w.bin"}, "outside the model's directory"),
        ({"location": "/etc/passwd"}, "outside the model's directory"),
        ({"location": "missing.bin"}, "missing"),
    ],
)
def test_external_data_fields_are_checked_before_onnx_reads_them(tmp_path, capsys, fields, says):
    refused(["inspect", _external(tmp_path, **fields)], capsys, "initializer 'w'", says)


def test_external_data_within_the_file_loads(tmp_path, capsys):
    assert main(["inspect", _external(tmp_path, offset="0", length="144")]) == 0


# -- 3. YAML ---------------------------------------------------------------------------------------------------


def _profile_text() -> str:
    return (ROOT / "hwprofiles" / "cortex-m4.yaml").read_text()


@pytest.mark.parametrize("field", ["sources", "chip", "clock_hz"])
def test_alias_bomb_under_a_profile_field_is_refused_quickly(tmp_path, capsys, field):
    bomb = "b0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"b{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
    )
    text = bomb + _profile_text().replace(f"\n{field}:", f"\n{field}: *a8\nignored:", 1)
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    refused(["hw", "validate", path], capsys, "expands to more than")


def test_deep_nesting_is_refused_without_recursion_error(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("passes: " + "[" * 5000 + "]" * 5000 + "\n")
    refused(["estimate", "lenet-5", "--hw", "cortex-m4", "--plan", path], capsys, "nested 65 levels deep")


def test_python_tags_are_not_constructed(tmp_path, capsys):
    path = tmp_path / "evil.yaml"
    path.write_text("name: x\npasses: !!python/object/apply:os.system ['touch pwned']\n")
    refused(["estimate", "lenet-5", "--hw", "cortex-m4", "--plan", path], capsys, "invalid YAML")
    assert not (tmp_path / "pwned").exists()


# -- 4. numbers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("clock_hz", ".nan", "clock_hz: nan is not a finite number"),
        ("clock_hz", ".inf", "clock_hz: inf is not a finite number"),
        ("clock_hz", "9" * 400, "clock_hz"),
        ("clock_hz", "100", "clock_hz"),
        ("static_power_mw", "-.inf", "static_power_mw"),
    ],
)
def test_non_physical_profile_numbers_are_refused(tmp_path, capsys, field, value, says):
    data = yaml.safe_load(_profile_text())
    text = yaml.safe_dump(data, sort_keys=False).replace(f"\n{field}: {data[field]}\n", f"\n{field}: {value}\n")
    assert f"{field}: {value}" in text
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    refused(["hw", "validate", path], capsys, says)


def test_energy_beyond_a_microjoule_per_operation_is_refused(tmp_path, capsys):
    data = yaml.safe_load(_profile_text())
    data["compute"]["int8"]["mac_energy_pj"] = 1e7
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    refused(["hw", "validate", path], capsys, "compute.int8.mac_energy_pj")


def test_shipped_profiles_pass_the_ranges(capsys):
    assert main(["hw", "validate", *sorted(str(p) for p in (ROOT / "hwprofiles").glob("*.yaml"))]) == 0


@pytest.mark.parametrize("value", ["9" * 400, "1e400", "nan", "inf"])
def test_budget_values_that_overflow_are_refused(capsys, value):
    metric = "flash_bytes" if value.isdigit() else "latency_ms"
    refused(["estimate", "lenet-5", "--hw", "cortex-m4", "--precision", "int8", "--budget", f"{metric}={value}"],
            capsys, f"{metric}=")  # fmt: skip


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e300])
def test_tflm_input_that_float32_cannot_hold_is_refused(tmp_path, capsys, value):
    path = tmp_path / "x.npy"
    np.save(path, np.full((1, 1, 8, 8), value))
    refused(["run", "digits-cnn", "--plan", PLAN, "--input", path], capsys, "NaN, infinite or beyond-float32")


def test_tflm_input_whose_quotient_overflows_int32_names_the_overflow(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.full((1, 1, 8, 8), 3e38, np.float32))
    refused(["run", "digits-cnn", "--plan", PLAN, "--input", path], capsys, "quantize", "worst inf")


def test_nan_calibration_data_is_refused(tmp_path, capsys):
    path = tmp_path / "calib.npy"
    np.save(path, np.full((4, 1, 8, 8), np.nan, np.float32))
    refused(["estimate", "digits-cnn", "--hw", "cortex-m4", "--plan", PLAN, "--calib", path], capsys, "NaN")


@pytest.mark.parametrize("command", ["verify", "compare"])
def test_zero_samples_are_refused(capsys, command):
    extra = ["--plan", PLAN] if command == "verify" else ["--hw", "cortex-m4"]
    refused([command, "digits-cnn", *extra, "--samples", "0"], capsys, "--samples 0")


# -- 5. structure the ONNX checker refuses ---------------------------------------------------------------------


def test_graph_output_no_node_produces_is_refused(tmp_path, capsys):
    model = base_onnx()
    model.graph.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1]))
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "'ghost' is computed by no node")


def test_string_input_is_refused(tmp_path, capsys):
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    model = make_model(nodes, [tensor_info("x", [1], TensorProto.STRING)], [tensor_info("y", [1], TensorProto.STRING)])
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "input 'x' holds strings")


def test_string_initializer_is_refused(tmp_path, capsys):
    model = base_onnx()
    model.graph.initializer.append(helper.make_tensor("words", TensorProto.STRING, [2], [b"a", b"b"]))
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "'words' holds strings")


def test_float16_initializer_with_float32_bytes_is_refused(tmp_path, capsys):
    model = base_onnx()
    tensor = next(t for t in model.graph.initializer if t.name == "w")
    tensor.data_type = TensorProto.FLOAT16  # the raw bytes stay float32: twice what FLOAT16 needs
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "'w'", "need 72 bytes", "stores 144")


def test_lrn_size_zero_is_refused(tmp_path, capsys):
    model = base_onnx()
    lrn = next(n for n in model.graph.node if n.op_type == "LRN")
    next(a for a in lrn.attribute if a.name == "size").i = 0
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "'lrn'", "size 0")


@pytest.mark.parametrize("fraction", [0.99, 0.9, 0.5])
def test_truncated_model_is_refused(tmp_path, capsys, fraction):
    data = base_onnx().SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    refused(["inspect", path], capsys, "m.onnx")


def test_the_intact_fuzz_model_is_accepted(tmp_path, capsys):
    assert main(["inspect", save(base_onnx(), tmp_path / "m.onnx")]) == 0


# -- 7. other tracebacks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [np.nan, np.inf, 0.0])
def test_resize_with_a_non_finite_scale_is_refused(tmp_path, capsys, scale):
    model = base_onnx()
    scales = next(t for t in model.graph.initializer if t.name == "scales")
    scales.CopyFrom(numpy_helper.from_array(np.array([1, 1, scale, 2], np.float32), "scales"))
    refused(["inspect", save(model, tmp_path / "m.onnx")], capsys, "'resize'", "not a positive finite number")


def test_string_calibration_data_is_refused(tmp_path, capsys):
    path = tmp_path / "calib.npy"
    np.save(path, np.array(["a", "b"]))
    refused(["estimate", "digits-cnn", "--hw", "cortex-m4", "--plan", PLAN, "--calib", path], capsys, "<U1 data")


def test_calibration_with_zero_samples_is_refused(tmp_path, capsys):
    path = tmp_path / "calib.npy"
    np.save(path, np.zeros((0, 1, 8, 8), np.float32))
    refused(["estimate", "digits-cnn", "--hw", "cortex-m4", "--plan", PLAN, "--calib", path], capsys, "0 calibration")


def test_pickled_arrays_are_never_loaded(tmp_path, capsys):
    path = tmp_path / "calib.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(["estimate", "digits-cnn", "--hw", "cortex-m4", "--plan", PLAN, "--calib", path], capsys, "object")


# -- 8. no file left by a failed run ---------------------------------------------------------------------------


def test_failed_run_writes_no_output(tmp_path, capsys):
    out = tmp_path / "y.npy"
    bad = tmp_path / "x.npy"
    np.save(bad, np.full((1, 1, 8, 8), np.nan, np.float32))
    refused(["run", "digits-cnn", "--plan", PLAN, "--input", bad, "-o", out], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
