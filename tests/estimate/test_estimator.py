"""The estimator against hand calculations on a round-number profile (tests/data/tiny-hw.yaml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from simulator.errors import EdgesimError
from simulator.estimate import estimate, prepare
from simulator.graph import QuantParams
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.importers.onnx_import import load_onnx
from tests.helpers import make_model, tensor_info

DATA = Path(__file__).resolve().parents[1] / "data"
HW = str(DATA / "tiny-hw.yaml")
MLP = str(DATA / "tiny-mlp.yaml")


@pytest.fixture(scope="module")
def mlp():
    return load_model(MLP)


def test_int8_mlp_by_hand(mlp):
    est = estimate(mlp, load_hardware(HW), precision="int8")
    # the Relu is fused into fc1 as a runtime does: two layers remain
    assert [layer.name for layer in est.layers] == ["fc1", "fc2"]
    fc1, fc2 = est.layers
    # fc1: 16x8 int8 weights + 8 int32 biases from flash; reads 16 B and writes 8 B of int8 activations
    assert fc1.weight_bytes == 16 * 8 + 8 * 4
    assert (fc1.activation_read_bytes, fc1.activation_write_bytes) == (16, 8)
    # compute: 128 MACs at 2/cycle x matmul efficiency 0.25 = 256 cycles; memory: 160 B / 2 + 24 B / 4 = 86
    assert fc1.compute_cycles == pytest.approx(256)
    assert fc1.memory_cycles == pytest.approx(86)
    # no overlap on this core: 256 + 86 + 100 overhead = 442 cycles at 1 MHz
    assert fc1.latency_ms == pytest.approx(0.442)
    assert fc1.bound == "compute"
    # energy: 128 MACs x 1 pJ; 160 B x 5 pJ + 16 B x 1 pJ + 8 B x 2 pJ; 1 mW x 0.442 ms = 0.442 uJ
    assert fc1.energy_datapath_uj == pytest.approx(128e-6)
    assert fc1.energy_memory_uj == pytest.approx((800 + 16 + 16) * 1e-6)
    assert fc1.energy_baseline_uj == pytest.approx(0.442)
    # fc2: 32 MACs -> 64 cycles; weights 32 + 16 B -> 24 cycles; acts 8 + 4 B -> 3 cycles; + 100
    assert fc2.latency_ms == pytest.approx((64 + 24 + 3 + 100) / 1e3)
    totals = est.totals()
    assert totals["latency_ms"] == pytest.approx(0.442 + 0.191)
    assert totals["flash_bytes"] == 160 + 48
    # arena: x(16) and fc1's output (8) live together at step 0, then fc1 out(8) and fc2 out(4), aligned to 16
    assert totals["peak_ram_bytes"] == 32
    assert est.fits == {"flash": True, "ram": True}


def test_fp32_mlp_by_hand(mlp):
    est = estimate(mlp, load_hardware(HW), precision="fp32")
    fc1 = est.layers[0]
    # float32 weights and biases: (128 + 8) x 4 B; activations 4 B each
    assert fc1.weight_bytes == 136 * 4
    assert fc1.compute_cycles == pytest.approx(128 / (1 * 0.25))
    assert fc1.memory_cycles == pytest.approx(544 / 2 + (64 + 32) / 4)
    assert fc1.energy_datapath_uj == pytest.approx(128 * 4e-6)


def test_precision_from_the_graph_is_float32(mlp):
    assert {layer.precision for layer in estimate(mlp, load_hardware(HW)).layers} == {"fp32"}


def test_stack_without_the_precision_is_an_error(mlp):
    with pytest.raises(EdgesimError, match="tiny:slow has no fp32 kernels; it runs int8"):
        estimate(mlp, load_hardware(HW + ":slow"))


def test_stack_overrides_overhead(mlp):
    est = estimate(mlp, load_hardware(HW + ":slow"), precision="int8")
    assert est.layers[0].overhead_cycles == 1000


def test_quantized_weights_set_the_layer_precision(mlp):
    # fc1's weights quantized to 4 bits, activations to 8: runs as int8 (no int4 here); weights stored at 4 bits
    tensors = dict(mlp.tensors)
    w = mlp.tensors["fc1.weight"]
    q4 = QuantParams(bits=4, scale=np.array(0.1), zero_point=np.array(0))
    q8 = QuantParams(bits=8, scale=np.array(0.1), zero_point=np.array(0))
    tensors[w.name] = mlp.copy_tensor(w.name, quant=q4)
    tensors["x"] = mlp.copy_tensor("x", quant=q8)
    est = estimate(mlp.replace(tensors=tensors), load_hardware(HW))
    fc1 = est.layers[0]
    assert fc1.precision == "int8"
    assert fc1.weight_bytes == 128 * 4 // 8 + 8 * 4


def test_asymmetric_weights_cost_the_zero_point_term(mlp):
    tensors = dict(mlp.tensors)
    w = mlp.tensors["fc1.weight"]
    tensors[w.name] = mlp.copy_tensor(
        w.name, quant=QuantParams(bits=8, scale=np.array(0.1), zero_point=np.array(3), symmetric=False)
    )
    sym = estimate(mlp, load_hardware(HW), precision="int8").layers[0]
    asym = estimate(mlp.replace(tensors=tensors), load_hardware(HW), precision="int8").layers[0]
    # Z_W * sum(x): one add per input feature per output row here = 128 MACs / 8 outputs = 16 adds
    assert asym.ops - sym.ops == 16
    assert asym.compute_cycles - sym.compute_cycles == pytest.approx(16 / (1 * 0.25))


def test_unstructured_sparsity_on_hardware_that_skips_zeros(mlp):
    tensors = dict(mlp.tensors)
    w = mlp.tensors["fc1.weight"]
    mask = np.zeros(w.shape, bool)
    mask[:, :4] = True  # 32 of 128 weights kept
    tensors[w.name] = mlp.copy_tensor(w.name, mask=mask)
    fc1 = estimate(mlp.replace(tensors=tensors), load_hardware(HW), precision="int8").layers[0]
    # CSR: 32 x (8-bit value + 8-bit index) + 9 int32 row pointers, plus the int32 bias
    assert fc1.weight_bytes == 32 * 2 + 4 * 9 + 8 * 4
    # 32 useful MACs at 2/cycle x 0.25 x sparse efficiency 0.5, plus one decode cycle per non-zero
    assert fc1.compute_cycles == pytest.approx(32 / (2 * 0.25 * 0.5) + 32)


def test_prepared_graph_gives_the_same_estimate(mlp):
    hw = load_hardware(HW)
    assert estimate(prepare(mlp), hw, precision="int8").totals() == estimate(mlp, hw, precision="int8").totals()


def test_does_not_fit_is_reported(tmp_path):
    # tiny-hw has 1000 B of SRAM: LeNet-5's float activations cannot fit
    est = estimate(load_model("lenet-5"), load_hardware(HW), precision="int8")
    assert est.fits["ram"] is False and est.peak_ram_bytes > 1000


def test_estimate_is_deterministic():
    hw = load_hardware(HW)
    a = estimate(load_model("resnet-8"), hw, precision="int8")
    b = estimate(load_model("resnet-8"), hw, precision="int8")
    assert a.totals() == b.totals() and a.arena.offsets() == b.arena.offsets()


def _variant(tmp_path, change) -> str:
    import yaml

    data = yaml.safe_load(Path(HW).read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_n_m_sparsity_on_hardware_that_accelerates_it(mlp, tmp_path):
    from simulator.passes.prune import prune_n_m, weighted_layers

    def two_four(d):
        d["sparsity"] = {"unstructured": {"skips_zeros": False}, "n_m_patterns": [[2, 4]]}

    hw = load_hardware(_variant(tmp_path, two_four))
    pruned = prune_n_m(mlp, weighted_layers(mlp)[:1], 2, 4)
    fc1 = estimate(pruned, hw, precision="int8").layers[0]
    assert fc1.sparse_mode == "n:m"
    # half the MACs at full efficiency: 64 / (2 x 0.25)
    assert fc1.compute_cycles == pytest.approx(128)
    # 64 int8 values with 2 bits of position each, plus 8 int32 biases
    assert fc1.weight_read_bytes == 64 * 10 // 8 + 32
    # an unpruned layer on the same hardware stays dense
    assert estimate(mlp, hw, precision="int8").layers[0].sparse_mode == "dense"


def test_codebook_lookups_on_hardware_that_supports_them(mlp, tmp_path):
    from simulator.passes.prune import weighted_layers
    from simulator.passes.share import share_weights

    def lookup(d):
        d["codebook"] = {"supported": True, "lookup_cycles_per_weight": 1, "lookup_energy_pj": 0.5}
        d["sources"]["codebook"] = "test values, chosen for hand calculation"

    hw = load_hardware(_variant(tmp_path, lookup))
    shared = share_weights(mlp, weighted_layers(mlp)[:1], 2)
    fc1 = estimate(shared, hw, precision="int8").layers[0]
    # 2-bit indices (32 B) and a 4-entry float32 codebook (16 B), plus 8 int32 biases
    assert fc1.weight_read_bytes == 32 + 16 + 32
    # 128 MACs at 2/cycle x 0.25, plus one lookup cycle per weight use
    assert fc1.compute_cycles == pytest.approx(256 + 128)
    assert fc1.energy_datapath_uj == pytest.approx((128 * 1.0 + 128 * 0.5) * 1e-6)
    # without support the runtime expands the codebook: dense int8 reads
    plain = estimate(shared, load_hardware(HW), precision="int8").layers[0]
    assert plain.weight_read_bytes == 128 + 32 and plain.compute_cycles == pytest.approx(256)


def test_winograd_speedup_applies_to_3x3_stride_1_convs_only(tmp_path):
    def winograd(d):
        d["stacks"]["fast"]["winograd_3x3_speedup"] = 2.25

    plain = estimate(load_model("resnet-8"), load_hardware(HW), precision="int8")
    fast = estimate(load_model("resnet-8"), load_hardware(_variant(tmp_path, winograd)), precision="int8")
    by_name = {x.name: x for x in plain.layers}
    for layer in fast.layers:
        before = by_name[layer.name]
        # 3x3 stride-1 convs: compute cycles / 2.25; the stride-2 3x3 and the 1x1 shortcuts are unchanged
        if layer.name in ("conv1", "stage1.block1.conv1", "stage2.block1.conv2", "stage3.block1.conv2"):
            assert layer.compute_cycles == pytest.approx(before.compute_cycles / 2.25)
        if layer.name in ("stage2.block1.conv1", "stage2.block1.shortcut", "fc"):
            assert layer.compute_cycles == pytest.approx(before.compute_cycles)


def test_quantize_and_dequantize_run_at_their_integer_width():
    """A .tflite with float input and output (QUANTIZE first, DEQUANTIZE last) estimates on an int8-only stack:
    the QuantizeLinear / DequantizeLinear layers count at the width of their integer side, like the rest."""
    tflite = Path(__file__).resolve().parent.parent / "data" / "tflite"
    pytest.importorskip("tflite")
    graph = load_model(str(tflite / "float_io_cnn.tflite"))
    est = estimate(graph, load_hardware("cortex-m7"))
    by_op = {layer.name: layer.precision for layer in est.layers}
    quantization = [n.name for n in graph.order if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(quantization) == 4 and {by_op[n] for n in quantization} == {"int8"}


def test_attention_transcendental_and_unknown_layers_by_hand(tmp_path):
    """q = x.Wq; scores = q.q^T (attention class); e = Exp(scores) (transcendental class); Shrink (unknown,
    --allow-unknown) costs nothing; the Add after it is still estimated."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="proj"),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1], name="t"),
        helper.make_node("MatMul", ["q", "qt"], ["s"], name="scores"),
        helper.make_node("Exp", ["s"], ["e"], name="exp"),
        helper.make_node("Shrink", ["e"], ["k"], name="odd"),
        helper.make_node("Add", ["k", "e"], ["y"], name="add"),
    ]
    wq = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    path = tmp_path / "attn.onnx"
    onnx.save(make_model(nodes, [tensor_info("x", [1, 4, 16])], [tensor_info("y", None)], {"wq": wq}), path)
    est = estimate(load_onnx(path, allow_unknown=True), load_hardware(HW), precision="fp32")
    layers = {layer.name: layer for layer in est.layers}
    scores = layers["scores"]
    # 4 x 4 scores of 16 products at 1 fp32 MAC/cycle x attention efficiency 0.25; no weights
    assert (scores.op_class, scores.macs, scores.weight_bytes) == ("attention", 4 * 4 * 16, 0)
    assert scores.compute_cycles == pytest.approx(256 / 0.25)
    # 16 exponentials at 1 op/cycle x transcendental efficiency 0.05
    assert layers["exp"].op_class == "transcendental" and layers["exp"].compute_cycles == pytest.approx(16 / 0.05)
    odd = layers["odd"]
    assert (odd.latency_ms, odd.energy_uj, odd.activation_read_bytes) == (0, 0, 0)
    assert layers["add"].latency_ms > 0
    assert any("Shrink" in w for w in est.warnings)
