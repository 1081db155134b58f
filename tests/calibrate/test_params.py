"""Profile numbers addressed by dotted path, with the bounds the schema gives them."""

from __future__ import annotations

import math

import pytest

from simulator.calibrate.params import get_value, parameter, with_values
from simulator.errors import EdgesimError

from .conftest import shipped


def test_paths_bounds_and_inheritance():
    data = shipped("cortex-m7")
    conv = parameter(data, "stacks.cmsis-nn.efficiency.conv")
    assert (conv.start, conv.high) == (data["stacks"]["cmsis-nn"]["efficiency"]["conv"], 1.0)  # a fraction
    sram = next(m for m in data["memory"] if m["name"] == "sram")
    bandwidth = parameter(data, "memory.sram.bandwidth_bytes_per_cycle")  # memory levels by name
    assert bandwidth.start == sram["bandwidth_bytes_per_cycle"] and bandwidth.high == math.inf
    assert parameter(data, "memory.sram.capacity_bytes").integer
    # the stack has no overhead of its own: it starts from the profile's, which it inherits
    assert "layer_overhead_cycles" not in data["stacks"]["cmsis-nn"]
    assert get_value(data, "stacks.cmsis-nn.layer_overhead_cycles") == data["layer_overhead_cycles"]
    assert parameter(shipped("jetson-nano"), "stacks.tensorrt.winograd_3x3_speedup").low == 1.0


def test_with_values_copies():
    data = shipped("cortex-m7")
    out = with_values(data, {"stacks.cmsis-nn.layer_overhead_cycles": 1234.0, "memory.sram.capacity_bytes": 1024})
    assert out["stacks"]["cmsis-nn"]["layer_overhead_cycles"] == 1234.0
    assert next(m for m in out["memory"] if m["name"] == "sram")["capacity_bytes"] == 1024
    assert "layer_overhead_cycles" not in data["stacks"]["cmsis-nn"]  # the input is not changed


@pytest.mark.parametrize(
    "path, message",
    [
        ("memory.nope.bandwidth_bytes_per_cycle", "no memory.nope"),
        ("stacks.cmsis-nn.description", "not a number"),
        ("stacks.cmsis-nn.efficiency", "not a number"),
        ("stacks.cmsis-nn.efficiency.warp", "not a number"),
    ],
)
def test_bad_paths(path, message):
    with pytest.raises(EdgesimError, match=message):
        parameter(shipped("cortex-m7"), path)
