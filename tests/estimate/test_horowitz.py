"""The seed lecture's energy table (Horowitz, ISSCC 2014, 45 nm) through the estimator: the compute energy of
a layer is its MACs times (multiply + accumulate) from the table, so INT8 inference costs about 15x less
arithmetic energy than FP32."""

from __future__ import annotations

import pytest

from simulator.estimate import estimate
from simulator.hardware import load_hardware
from simulator.importers import load_model

# Horowitz 45 nm: INT8 mult 0.2 pJ, INT32 add 0.1 pJ (int8 products accumulate in int32); FP32 mult 3.7, add 0.9
INT8_MAC_PJ = 0.2 + 0.1
FP32_MAC_PJ = 3.7 + 0.9


def test_mac_energy_comes_from_the_table():
    hw = load_hardware("horowitz-45nm")
    assert hw.compute["int8"].mac_energy_pj == pytest.approx(INT8_MAC_PJ)
    assert hw.compute["fp32"].mac_energy_pj == pytest.approx(FP32_MAC_PJ)
    assert hw.energy_only


def test_int8_vs_fp32_compute_energy_on_lenet_300_100():
    hw = load_hardware("horowitz-45nm")
    graph = load_model("lenet-300-100")
    fp32 = {layer.name: layer for layer in estimate(graph, hw, precision="fp32").layers}
    int8 = {layer.name: layer for layer in estimate(graph, hw, precision="int8").layers}
    # fc1: 784 x 300 MACs, nothing else arithmetic (its ReLU is fused into it)
    assert fp32["fc1"].energy_datapath_uj == pytest.approx(784 * 300 * FP32_MAC_PJ * 1e-6)
    assert int8["fc1"].energy_datapath_uj == pytest.approx(784 * 300 * INT8_MAC_PJ * 1e-6)
    assert fp32["fc1"].energy_datapath_uj / int8["fc1"].energy_datapath_uj == pytest.approx(FP32_MAC_PJ / INT8_MAC_PJ)
    # energy-only: no latency, no static energy
    assert fp32["fc1"].latency_ms is None and fp32["fc1"].energy_baseline_uj == 0.0
