"""Quantization parameters for known ranges, fake quantization, binary and ternary weights."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.graph import QuantParams
from simulator.importers import load_model
from simulator.passes.prune import weighted_layers
from simulator.passes.quantize import affine_params, fake_quantize, quantize_weights


def test_symmetric_int8_uses_the_narrow_range():
    scale, zp = affine_params(np.array(-1.0), np.array(0.5), 8, symmetric=True)
    assert scale == pytest.approx(1 / 127) and zp == 0


def test_asymmetric_int8_represents_zero_exactly():
    scale, zp = affine_params(np.array(-1.0), np.array(3.0), 8, symmetric=False)
    assert scale == pytest.approx(4 / 255)
    # zero point: -128 - (-1) / (4/255) = -64.25 -> -64
    assert zp == -64
    q = QuantParams(8, scale, zp, symmetric=False)
    assert fake_quantize(np.array([0.0], np.float32), q)[0] == 0.0


def test_range_is_widened_to_include_zero():
    scale, zp = affine_params(np.array(2.0), np.array(4.0), 8, symmetric=False)
    assert scale == pytest.approx(4 / 255) and zp == -128


def test_fake_quantize_rounds_half_to_even_and_saturates():
    q = QuantParams(4, np.array(1.0, np.float32), np.array(0), symmetric=True)
    x = np.array([0.5, 1.5, 2.5, -2.5, 9.0, -9.0], np.float32)
    # 4-bit symmetric narrow range: [-7, 7]
    assert fake_quantize(x, q).tolist() == [0.0, 2.0, 2.0, -2.0, 7.0, -7.0]


def test_per_channel_scales_follow_each_filter():
    g = load_model("lenet-5")
    conv1 = weighted_layers(g)[:1]
    q = quantize_weights(g, conv1, 8, symmetric=True, granularity="per-channel")
    w = g.tensors["conv1.weight"].data
    t = q.tensors["conv1.weight"]
    expected = np.abs(w).reshape(20, -1).max(axis=1) / 127
    assert t.quant.axis == 0 and np.allclose(t.quant.scale, expected)
    levels = t.data / t.quant.scale.reshape(-1, 1, 1, 1)
    assert np.allclose(levels, np.rint(levels), atol=1e-3) and np.abs(levels).max() <= 127.001
    per_tensor = quantize_weights(g, conv1, 8, granularity="per-tensor").tensors["conv1.weight"]
    assert per_tensor.quant.axis is None and per_tensor.quant.scale == pytest.approx(np.abs(w).max() / 127)


def test_binary_and_ternary_weights():
    g = load_model("lenet-300-100")
    layer = weighted_layers(g)[:1]
    w = g.tensors["fc1.weight"].data
    binary = quantize_weights(g, layer, "binary", granularity="per-tensor").tensors["fc1.weight"]
    alpha = np.abs(w).mean()
    assert set(np.unique(binary.data).round(6)) == {round(-alpha, 6), round(alpha, 6)} and binary.quant.bits == 1
    ternary = quantize_weights(g, layer, "ternary", granularity="per-tensor").tensors["fc1.weight"]
    delta = 0.7 * np.abs(w).mean()
    kept = np.abs(w) > delta
    level = np.abs(w)[kept].mean()
    assert np.allclose(ternary.data, np.sign(w) * kept * level, atol=1e-6) and ternary.quant.bits == 2
