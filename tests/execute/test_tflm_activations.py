"""TFLM's TANH and PRELU integer kernels: hand-derived edges, and every int16 input against tflite-micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.execute import tflm_activations as ta

DATA = Path(__file__).resolve().parent.parent / "data" / "tflite"


def test_int8_tanh_is_odd_saturates_and_stays_within_one_step_of_tanh():
    scale = 0.05
    multiplier, shift, radius = ta.tanh_int8_params(scale)
    x = np.arange(-128, 128).astype(np.int8)
    y = ta.tanh_int8(x, input_zero_point=0, input_multiplier=multiplier, input_left_shift=shift,
                     input_range_radius=radius).astype(np.int64)  # fmt: skip
    assert y[x == 0] == 0
    assert np.abs(y[1:] + y[1:][::-1]).max() <= 1  # odd up to the rounding of ties
    assert np.abs(y / 128 - np.tanh(x * scale)).max() <= 1 / 128 + 1e-9  # output scale 1/128


def test_tanh_fixed_point_of_zero_and_of_large_values():
    one_q4 = 1 << 27  # 1.0 in Q4.27
    t = ta.tanh_fixed_point(np.array([0, one_q4, -one_q4, (1 << 31) - 1]), 4)
    assert t[0] == 0 and t[1] == -t[2]
    assert abs(t[1] / 2**31 - np.tanh(1.0)) < 2e-7 and abs(t[3] / 2**31 - 1) < 1e-6


def test_int16_tanh_params_follow_the_power_of_two_rule():
    assert ta.tanh_int16_params(2.0**-12, 2.0**-15) == (0, 0)  # 3 << 0 at run time
    assert ta.tanh_int16_params(2.0**-11, 2.0**-15) == (0, 1)
    multiplier, shift = ta.tanh_int16_params(1e-4, 2.0**-15)
    assert 16383 < multiplier <= 32767 and multiplier == int(1e-4 * 3 * 4096 * 2**shift)
    with pytest.raises(ValueError, match="2\\^-15"):
        ta.tanh_int16_params(1e-4, 1e-4)


def test_prelu_uses_the_slope_below_zero_only():
    m1, s1 = 1 << 30, 1  # x 1 (s_in / s_out)
    m2, s2 = 1 << 30, -6  # x 2^-7 (s_in s_alpha / s_out with s_alpha = 2^-7: alpha level 32 is 0.25)
    y = ta.prelu(np.array([-20, -1, 0, 7]), np.array([32, 32, 32, 32]), input_zero_point=0, alpha_zero_point=0,
                 output_zero_point=3, multiplier_1=m1, shift_1=s1, multiplier_2=m2, shift_2=s2,
                 output_dtype=np.int8)  # fmt: skip
    # -20 * 32 / 128 = -5, -1 * 32 / 128 = -0.25 -> 0, 0 and 7 unscaled, then + 3
    assert y.tolist() == [-2, 3, 3, 10]


def test_int16_tanh_equals_tflite_micro_on_every_int16_input():
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from simulator.execute.int_exec import run_tflm
    from simulator.importers import load_model

    path = DATA / "a16w8_tanh_levels.tflite"
    interpreter = runtime.Interpreter.from_file(str(path), arena_size=1 << 16)
    graph = load_model(str(path))
    (name,) = graph.inputs
    every = np.arange(-(1 << 15), 1 << 15).astype(np.int16).reshape(-1, 1, 16, 16, 1)
    for x in every:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        values, _ = run_tflm(graph, {name: x.transpose(0, 3, 1, 2)})
        assert np.array_equal(values[graph.outputs[0]].transpose(0, 2, 3, 1), interpreter.get_output(0))
