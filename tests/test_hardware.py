"""Hardware profiles: every shipped profile validates; bad profiles give one line naming the field path."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from simulator.cli import main
from simulator.errors import EdgesimError
from simulator.hardware import load_hardware, profile_names, read_profile

TINY = Path(__file__).resolve().parent / "data" / "tiny-hw.yaml"
BASE = yaml.safe_load(TINY.read_text())


@pytest.mark.parametrize("name", profile_names())
def test_shipped_profiles_validate_with_every_stack(name):
    hw = load_hardware(name)
    assert hw.name == name
    for stack in hw.stacks:
        assert load_hardware(f"{name}:{stack}").stack.name == stack


def _write(tmp_path, data) -> Path:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _mutated(change):
    data = copy.deepcopy(BASE)
    change(data)
    return data


CASES = [
    ("missing field", lambda d: d.pop("clock_hz"), "(top level): 'clock_hz' is a required property"),
    ("mistyped field", lambda d: d.update(clock_hz="fast"), "clock_hz: 'fast' is not of type 'number'"),
    (
        "misspelled field",
        lambda d: d["memory"][1].update(bandwith_bytes_per_cycle=2),
        "memory[1]: Additional properties are not allowed ('bandwith_bytes_per_cycle' was unexpected)",
    ),
    (
        "zero bandwidth",
        lambda d: d["memory"][1].update(bandwidth_bytes_per_cycle=0),
        "memory[1].bandwidth_bytes_per_cycle: 0 is less than or equal to the minimum of 0",
    ),
    (
        "negative capacity",
        lambda d: d["memory"][0].update(capacity_bytes=-5),
        "memory[0].capacity_bytes: -5 is less than or equal to the minimum of 0",
    ),
    ("unknown precision", lambda d: d["compute"].update(int9=d["compute"]["int8"]), "compute: 'int9' is not one of"),
    (
        "efficiency above one",
        lambda d: d["stacks"]["fast"]["efficiency"].update(conv=1.5),
        "stacks.fast.efficiency.conv: 1.5 is greater than the maximum of 1",
    ),
    (
        "placement on a missing level",
        lambda d: d["placement"].update(weights="dram"),
        "placement.weights: 'dram' is not a memory level; expected one of sram, flash",
    ),
    (
        "stack precision the chip lacks",
        lambda d: d["stacks"]["fast"]["precisions"].append("fp16"),
        "stacks.fast.precisions: fp16 not in compute",
    ),
    (
        "number without a source",
        lambda d: d["sources"].pop("static_power_mw"),
        "static_power_mw: this number has no entry in sources",
    ),
    (
        "source naming no field",
        lambda d: d["sources"].update({"clock_mhz": "a datasheet"}),
        "sources.clock_mhz: names no field of the profile",
    ),
    (
        "sparse support without its numbers",
        lambda d: d["sparsity"]["unstructured"].pop("index_bits"),
        "sparsity.unstructured: 'index_bits' is a required property",
    ),
]


@pytest.mark.parametrize("change, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_profile_names_the_field(tmp_path, change, expected):
    path = _write(tmp_path, _mutated(change))
    with pytest.raises(EdgesimError) as exc:
        read_profile(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text("name: x\ncompute: {int8: [1, 2\n")
    with pytest.raises(EdgesimError, match=r"invalid YAML at line \d"):
        read_profile(path)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(EdgesimError, match="unknown hardware profile; known: ") as exc:
        load_hardware("cortex-m99")
    for name in profile_names():
        assert name in str(exc.value)


def test_unknown_stack_lists_the_stacks():
    with pytest.raises(EdgesimError, match="tiny has no stack 'turbo'; its stacks: fast, slow"):
        load_hardware(f"{TINY}:turbo")


def test_int4_runs_at_the_next_wider_integer_precision():
    hw = load_hardware(str(TINY))
    assert hw.precision_for("int4") == "int8"
    assert hw.precision_for("int16") == "int16"
    with pytest.raises(EdgesimError, match="no fp16 kernels"):
        hw.precision_for("fp16")


def test_cli_hw_validate(tmp_path, capsys):
    assert main(["hw", "validate", str(TINY)]) == 0
    assert "valid profile 'tiny'" in capsys.readouterr().out
    bad = _write(tmp_path, _mutated(lambda d: d["memory"][0].update(capacity_bytes=0)))
    assert main(["hw", "validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "memory[0].capacity_bytes" in err
