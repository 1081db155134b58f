"""Deep Compression's size table (Han, Mao, Dally, ICLR 2016, Table 1; Tables 2-5 and 7 for the intermediate
steps) recomputed with plans/deep-compression-*.yaml on the zoo models, printed beside the published numbers,
with the time edgesim takes (load, apply the plan, estimate).

Columns, each "edgesim / published":
  original   the estimator's flash for the float32 model
  pruned     kept weights and all biases at 4 bytes each, without the sparse index, as the paper counts its
             pruning-only row (Table 7: "not including index overhead"); in brackets, edgesim's size with
             float32 values in relative-index CSR (index and fillers counted)
  +sharing   codebook indices + relative indices + codebooks, before Huffman coding (the tables' P+Q rate)
  +Huffman   the estimator's flash for the compressed model (Table 1's compressed size)
  ratio      original / +Huffman
The published pruned and +sharing sizes are the paper's original size over its ratio (12x / 32x, 12x / 33x,
9x / 27x, 13x / 31x); Table 7 gives AlexNet's as 27 MB and 8.9 MB. KB and MB are 1000 and 10^6 bytes, the
paper's units. The zoo's weights are seeded random, not trained: the Huffman gain is the one of random
weights (smaller than the paper's), everything before it does not depend on the weight values.

Run: python benchmarks/bench_deep_compression.py [model ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.estimate import estimate  # noqa: E402
from simulator.estimate.storage import stored_size  # noqa: E402
from simulator.graph import Encoding  # noqa: E402
from simulator.hardware import load_hardware  # noqa: E402
from simulator.importers import load_model  # noqa: E402
from simulator.passes.prune import weight_slot, weighted_layers  # noqa: E402
from simulator.plan import apply_plan, load_plan  # noqa: E402

KB, MB = 1000, 1000**2
# model: (unit, original, pruned, pruned + shared (P+Q), compressed (P+Q+H), compress ratio) from the paper
PUBLISHED = {
    "lenet-300-100": ("KB", 1070 * KB, 1070 * KB / 12, 1070 * KB / 32, 27 * KB, 40),
    "lenet-5": ("KB", 1720 * KB, 1720 * KB / 12, 1720 * KB / 33, 44 * KB, 39),
    "alexnet": ("MB", 240 * MB, 27 * MB, 8.9 * MB, 6.9 * MB, 35),
    "vgg-16": ("MB", 552 * MB, 552 * MB / 13, 552 * MB / 31, 11.3 * MB, 49),
}


def measure(model: str, hw) -> dict[str, float]:
    start = time.perf_counter()
    graph = load_model(model)
    original = estimate(graph, hw, precision="fp32").flash_bytes
    compressed = apply_plan(graph, load_plan(ROOT / "plans" / f"deep-compression-{model}.yaml"))
    applied = time.perf_counter()
    flash = estimate(compressed, hw, precision="fp32").flash_bytes
    weights = [compressed.tensors[n.inputs[weight_slot(compressed, n)]] for n in weighted_layers(compressed)]
    sizes = [stored_size(t, 32, t.encoding) for t in weights]
    elapsed = time.perf_counter() - start
    bias = flash - sum(s.total_bytes for s in sizes)  # biases stay float32 dense
    values_only = bias + sum(4 * int(t.mask.sum()) for t in weights)
    float_csr = bias + sum(
        stored_size(
            t.with_values(t.data, codebook=None), 32, Encoding(t.encoding.format, t.encoding.index_bits)
        ).total_bytes
        for t in weights
    )
    return {
        "original": original,
        "pruned": values_only,
        "pruned_csr": float_csr,
        "shared": bias + sum(s.plain_bytes for s in sizes),
        "huffman": flash,
        "apply_s": applied - start,
        "total_s": elapsed,
    }


def size(value: float, unit: str) -> str:
    return f"{value / KB:.1f}" if unit == "KB" else f"{value / MB:.2f}"


def pair(ours: float, published: float, unit: str) -> str:
    return f"{size(ours, unit)} / {size(published, unit)} {unit}"


def main() -> None:
    hw = load_hardware(ROOT / "tests" / "data" / "tiny-hw.yaml")
    models = sys.argv[1:] or list(PUBLISHED)
    print(
        f"{'model':<14} {'original':>22} {'pruned [float CSR]':>28} {'+sharing (P+Q)':>20} {'+Huffman':>20} "
        f"{'ratio':>12} {'time (apply plan)':>18}"
    )
    for model in models:
        unit, original, pruned, shared, compressed, ratio = PUBLISHED[model]
        m = measure(model, hw)
        pruned_cell = f"{pair(m['pruned'], pruned, unit)} [{size(m['pruned_csr'], unit)}]"
        print(
            f"{model:<14} {pair(m['original'], original, unit):>22} {pruned_cell:>28} "
            f"{pair(m['shared'], shared, unit):>20} {pair(m['huffman'], compressed, unit):>20} "
            f"{m['original'] / m['huffman']:5.1f}x / {ratio}x {m['total_s']:6.1f} s ({m['apply_s']:.1f})"
        )
    print("each cell: edgesim / published; [pruned weights in float32 relative-index CSR, index and fillers counted]")


if __name__ == "__main__":
    main()
