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


# -- activations --------------------------------------------------------------------------------------------


def test_activation_range_methods_by_hand():
    from simulator.passes.quantize import activation_range

    samples = np.concatenate([np.linspace(-1, 1, 10001), [50.0]])  # one outlier
    assert activation_range(samples, 8, False, "minmax", 99.99) == (-1.0, 50.0)
    lo, hi = activation_range(samples, 8, False, "percentile", 99.0)
    assert lo == pytest.approx(np.percentile(samples, 1.0)) and hi == pytest.approx(np.percentile(samples, 99.0))
    # MSE clips the outlier: a range far narrower than 51 wins on 10,000 well-behaved samples
    lo, hi = activation_range(samples, 4, False, "mse", 99.99)
    assert hi - lo < 51 * 0.5


def test_calibrated_activations_and_int32_bias():
    from simulator.passes.quantize import quantize_activations

    g = load_model("lenet-300-100")
    layers = weighted_layers(g)
    q = quantize_weights(g, layers, 8)
    feeds = [{"input": np.full((1, 784), 0.5, np.float32)}, {"input": np.full((1, 784), -0.25, np.float32)}]
    q = quantize_activations(q, layers[:1], 8, symmetric=False, method="minmax", calibration=feeds)
    x = q.tensors["input"].quant
    # inputs span [-0.25, 0.5]: asymmetric 8-bit scale 0.75 / 255, zero point -128 + 0.25 / scale
    assert x.scale == pytest.approx(0.75 / 255) and x.zero_point == round(-128 + 0.25 / (0.75 / 255))
    # fc1's output and its fused Relu's output are calibrated too; fc2's are not (not selected)
    assert q.tensors["fc1"].quant is not None and q.tensors["fc1.relu"].quant is not None
    assert q.tensors["fc2"].quant is None
    bias = q.tensors["fc1.bias"]
    w_scale = q.tensors["fc1.weight"].quant.scale
    assert bias.quant.bits == 32 and np.allclose(bias.quant.scale, x.scale * w_scale)
    levels = bias.data / bias.quant.scale
    assert np.allclose(levels, np.rint(levels), atol=1e-3)


# -- parameters TFLite's converter imposes ------------------------------------------------------------------

# two branches of different ranges (a 1x1 conv without activation, a 3x3 conv with ReLU) concatenated, the
# wide one also through a max pool into a second concatenation; then hard-swish, global average pool, sigmoid
BRANCHES = """
name: branches
seed: 5
inputs:
  - {name: input, shape: [1, 3, 10, 10]}
layers:
  - {type: conv, name: stem, filters: 8, kernel: 3, padding: same, activation: relu}
  - {type: conv, name: narrow, input: stem, filters: 4, kernel: 1}
  - {type: conv, name: wide, input: stem, filters: 6, kernel: 3, padding: same, activation: relu}
  - {type: concat, name: cat, inputs: [narrow, wide]}
  - {type: maxpool, name: pool, input: wide, kernel: 3, stride: 1, padding: same}
  - {type: concat, name: cat2, inputs: [cat, pool]}
  - {type: conv, name: mix, filters: 8, kernel: 1}
  - {type: hardswish, name: hs}
  - {type: globalavgpool, name: gap}
  - {type: conv, name: gate, filters: 8, kernel: 1}
  - {type: sigmoid, name: sig}
"""


@pytest.fixture(scope="module")
def branches(tmp_path_factory):
    from simulator.fidelity import random_inputs
    from simulator.passes.quantize import quantize_activations

    path = tmp_path_factory.mktemp("spec") / "branches.yaml"
    path.write_text(BRANCHES)
    g = load_model(str(path))
    layers = weighted_layers(g)
    feeds = random_inputs(g, 4, seed=3).feeds
    weights_only = quantize_weights(g, layers, 8)
    q = quantize_activations(weights_only, layers, 8, False, "minmax", feeds)
    return weights_only, q, feeds


def _float_range(graph, feeds, names):
    from simulator.execute.float_exec import run_graph

    runs = [run_graph(graph, f, keep=True) for f in feeds]
    values = np.concatenate([run[n].reshape(-1) for run in runs for n in names])
    return float(values.min()), float(values.max())


def test_concat_inputs_share_the_output_parameters_covering_every_input(branches):
    """As TFLite's converter does for CONCATENATION: one parameter set for the output and every input (and, through
    the max pool, which must keep its input's, for the pool's input too), spanning the union of their ranges."""
    calibrated, q, feeds = branches
    members = ["narrow", "wide.relu", "cat", "pool", "cat2"]
    quants = [q.tensors[n].quant for n in members]
    assert all(
        float(p.scale) == float(quants[0].scale) and int(p.zero_point) == int(quants[0].zero_point) for p in quants
    )
    lo, hi = _float_range(calibrated, feeds, members)
    assert lo < 0 < hi  # the narrow branch goes negative, the ReLU branch does not
    # asymmetric int8 over [lo, hi]: scale (hi - lo) / 255, zero point -128 - lo / scale rounded
    scale = (hi - lo) / 255
    assert float(quants[0].scale) == pytest.approx(scale, rel=1e-6)
    assert int(quants[0].zero_point) == round(-128 - lo / scale)
    # the ReLU branch alone spans [0, a] with a < hi: calibrated on its own it would have had other parameters
    own_lo, own_hi = _float_range(calibrated, feeds, ["wide.relu"])
    assert own_lo == 0 and own_hi < hi


def test_sigmoid_output_is_fixed_and_hard_swish_and_mean_are_calibrated(branches):
    calibrated, q, feeds = branches
    sig = q.tensors["sig"].quant
    assert float(sig.scale) == 1 / 256 and int(sig.zero_point) == -128
    for name, source in (("hs", "mix"), ("gap", "hs")):
        lo, hi = _float_range(calibrated, feeds, [name])
        own = q.tensors[name].quant
        assert float(own.scale) == pytest.approx((max(hi, 0) - min(lo, 0)) / 255, rel=1e-6)
        assert float(own.scale) != float(q.tensors[source].quant.scale)


def test_branches_run_in_tflm_mode_close_to_float(branches):
    """End to end: the concatenations (shared parameters), hard-swish, mean and logistic kernels run, and the
    int8 result stays close to float execution."""
    from simulator.execute.float_exec import run_graph
    from simulator.execute.int_exec import run_tflm_float
    from simulator.fidelity import sqnr_db

    calibrated, q, feeds = branches
    (out,) = q.outputs
    for f in feeds:
        assert sqnr_db(run_graph(calibrated, f)[out], run_tflm_float(q, f)[out]) > 40  # about 51 dB here
