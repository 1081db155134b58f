"""TFLM's integer LSTM (tflm_lstm) beyond the reference vectors: the int16 sigmoid / tanh against the real
functions and at hand-derived points, layouts, states, and a whole quantized LSTM against the float ONNX LSTM
kernel (ops/recurrent.py) on the same weights, which checks gate roles and scales independently of the vectors.
Bit-exactness itself is proven by tests/execute/test_tflm_vectors.py (lstm_*)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import EdgesimError
from simulator.execute import fixedpoint as fp
from simulator.execute import tflm_lstm as tl
from simulator.graph import Node
from simulator.ops import get_op


def test_sigmoid_and_tanh_at_known_points():
    # sigmoid(0) = 1/2 in Q0.15; tanh(0) = 0; both odd-symmetric around their centre to within one LSB
    assert int(tl.sigmoid_int16(0)) == 16384
    assert int(tl.tanh_int16(0, *tl.cell_tanh_params(-12))) == 0
    x = np.arange(-32768, 32768, 97)
    s = tl.sigmoid_int16(x).astype(np.int64)
    assert np.all(np.abs(s + tl.sigmoid_int16(-x) - 32768) <= 1)
    assert np.all(np.diff(s) >= 0)


def test_sigmoid_and_tanh_track_the_real_functions():
    x = np.arange(-32768, 32768, dtype=np.int64)
    real = x / 4096.0  # Q3.12
    sig = tl.sigmoid_int16(x) / 32768.0
    assert np.max(np.abs(sig - 1 / (1 + np.exp(-real)))) < 2e-4
    tanh = tl.tanh_int16(x, *tl.cell_tanh_params(-12)) / 32768.0
    assert np.max(np.abs(tanh - np.tanh(real))) < 4e-4
    # a cell state at scale 2^-11 (power -11): tanh of x / 2048
    tanh11 = tl.tanh_int16(x, *tl.cell_tanh_params(-11)) / 32768.0
    assert np.max(np.abs(tanh11 - np.tanh(x / 2048.0))) < 4e-4
    assert tl.cell_tanh_params(-9) == (0, 3) and tl.cell_tanh_params(-14) == (3, 2)


def _quantized_lstm(rng, size, hidden, dtype):
    """Float weights (ONNX gate order i, o, f, c) and the TFLite-style integer model of them: int8 symmetric
    weights per tensor, activations at ``in_scale`` / ``h_scale``, cell state at 2^-11."""
    w = rng.uniform(-0.5, 0.5, (4 * hidden, size)).astype(np.float32)
    r = rng.uniform(-0.5, 0.5, (4 * hidden, hidden)).astype(np.float32)
    b = rng.uniform(-0.3, 0.3, 4 * hidden).astype(np.float32)
    in_scale, h_scale, cell_power = (1 / 64, 1 / 128, -11) if dtype == np.int8 else (1 / 8192, 1 / 16384, -11)
    gates = {}
    for k, name in enumerate(("input", "output", "forget", "cell")):
        rows = slice(k * hidden, (k + 1) * hidden)
        ws, rs = np.abs(w[rows]).max() / 127, np.abs(r[rows]).max() / 127
        bias_scale = in_scale * ws
        bias_dtype = np.int32 if dtype == np.int8 else np.int64
        gates[name] = tl.Gate(
            np.round(w[rows] / ws).astype(np.int8),
            np.round(r[rows] / rs).astype(np.int8),
            np.round(b[rows] / bias_scale).astype(bias_dtype),
            fp.quantize_multiplier(in_scale * ws / 2.0**-12),
            fp.quantize_multiplier(h_scale * rs / 2.0**-12),
        )
    cell_scale = 2.0**cell_power
    params = dict(
        forget_cell_requant=fp.quantize_multiplier(2.0**-15 * cell_scale / cell_scale),
        input_cell_requant=fp.quantize_multiplier(2.0**-30 / cell_scale),
        hidden_requant=fp.quantize_multiplier(2.0**-30 / h_scale),
        cell_scale_power=cell_power,
    )
    return (w, r, b), gates, params, in_scale, h_scale


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_quantized_lstm_follows_the_float_lstm(dtype):
    rng = np.random.default_rng(3)
    steps, batch, size, hidden = 6, 2, 5, 4
    (w, r, b), gates, params, in_scale, h_scale = _quantized_lstm(rng, size, hidden, dtype)
    x = rng.uniform(-1, 1, (steps, batch, size)).astype(np.float32)
    zp = -3 if dtype == np.int8 else 0
    hidden_zp = 5 if dtype == np.int8 else 0
    info = np.iinfo(dtype)
    xq = np.clip(np.round(x / in_scale) + zp, info.min, info.max).astype(dtype)
    y, h, c = tl.unidirectional_sequence_lstm(
        xq, gates, time_major=True, input_zero_point=zp, hidden_zero_point=hidden_zp, **params
    )
    node = Node("lstm", "LSTM", ["X", "W", "R", "B"], ["Y"], {"hidden_size": hidden})
    bias = np.concatenate([b, np.zeros_like(b)])[None]
    [expected] = get_op("LSTM").run(node, (xq.astype(np.float32) - zp) * in_scale, w[None], r[None], bias)
    got = (y.astype(np.float32) - hidden_zp) * h_scale
    # int8 hidden states carry 1/128 steps; int16 ones 2^-14: the error stays within a few steps of the grid
    tolerance = 6 * h_scale if dtype == np.int8 else 2e-3
    assert np.max(np.abs(got - expected[:, 0])) < tolerance
    assert y.dtype == dtype and h.shape == (batch, hidden) and c.dtype == np.int16
    assert np.array_equal(h, y[-1])


def test_batch_major_equals_time_major_transposed():
    rng = np.random.default_rng(4)
    _, gates, params, _, _ = _quantized_lstm(rng, 3, 5, np.int16)
    x = rng.integers(-8000, 8000, (4, 3, 3)).astype(np.int16)  # [time, batch, features]
    common = dict(input_zero_point=0, hidden_zero_point=0, **params)
    y_tm, h_tm, c_tm = tl.unidirectional_sequence_lstm(x, gates, time_major=True, **common)
    y_bm, h_bm, c_bm = tl.unidirectional_sequence_lstm(np.swapaxes(x, 0, 1), gates, time_major=False, **common)
    assert np.array_equal(np.swapaxes(y_bm, 0, 1), y_tm) and np.array_equal(h_bm, h_tm) and np.array_equal(c_bm, c_tm)
    # a call resumed from the returned states equals one call over the whole sequence
    y1, h1, c1 = tl.unidirectional_sequence_lstm(x[:2], gates, time_major=True, **common)
    y2, _, _ = tl.unidirectional_sequence_lstm(x[2:], gates, time_major=True, hidden_state=h1, cell_state=c1, **common)
    assert np.array_equal(np.concatenate([y1, y2]), y_tm)


def test_cell_clip_bounds_the_cell_state():
    rng = np.random.default_rng(5)
    _, gates, params, _, _ = _quantized_lstm(rng, 3, 4, np.int16)
    x = rng.integers(-30000, 30000, (8, 2, 3)).astype(np.int16)
    _, _, c = tl.unidirectional_sequence_lstm(
        x, gates, time_major=True, input_zero_point=0, hidden_zero_point=0, quantized_cell_clip=700, **params
    )
    assert np.abs(c.astype(np.int64)).max() <= 700


def test_prepare_requires_a_power_of_two_cell_scale_and_clips_in_cell_units():
    scales = {g: 0.01 for g in tl.GATES}
    common = dict(input_scale=0.02, input_weight_scales=scales, hidden_weight_scales=scales, hidden_scale=1 / 128)
    with pytest.raises(EdgesimError, match="not a power of two"):
        tl.prepare(cell_scale=0.001, **common)
    gates, updates = tl.prepare(cell_scale=2.0**-11, cell_clip=0.25, **common)
    assert updates["cell_scale_power"] == -11 and updates["quantized_cell_clip"] == 512
    assert updates["forget_cell_requant"] == (1 << 30, -14)  # exactly 2^-15
    assert gates["input"][0] == fp.quantize_multiplier(float(np.float32(0.02)) * float(np.float32(0.01)) * 4096)
    assert tl.prepare(cell_scale=2.0**-11, cell_clip=100.0, **common)[1]["quantized_cell_clip"] == 32767
