"""Integer execution against float execution, layer by layer: what `edgesim verify` prints.

The float model (unquantized) and the integer run of its quantized form see the same inputs; every tensor
both have is compared after dequantizing the integers, so a layer whose SQNR collapses stands out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.execute.float_exec import run_graph
from simulator.execute.int_exec import dequantize, prepare_tflm
from simulator.fidelity import DataSet, sqnr_db
from simulator.graph import Graph


@dataclass(frozen=True)
class Verification:
    layer_sqnr_db: dict[str, float]
    output_sqnr_db: float
    top1_agreement: float
    integer_accuracy: float | None
    float_accuracy: float | None


def verify(reference: Graph, quantized: Graph, data: DataSet) -> Verification:
    ref_layers: dict[str, list[np.ndarray]] = {}
    int_layers: dict[str, list[np.ndarray]] = {}
    out = reference.outputs[0]
    ref_top, int_top = [], []
    session = prepare_tflm(quantized)  # prepared once for the whole data set
    for feeds in data.feeds:
        floats = run_graph(reference, feeds, keep=True)
        values, quant = session.run(feeds, keep=True)
        for name, value in values.items():
            if name in floats and name in quant and np.shape(floats[name]) == np.shape(value):
                ref_layers.setdefault(name, []).append(np.asarray(floats[name], np.float64).reshape(-1))
                int_layers.setdefault(name, []).append(dequantize(value, quant[name]).reshape(-1))
        ref_top.append(int(np.asarray(floats[out]).argmax()))
        int_top.append(int(dequantize(values[out], quant[out]).argmax()))
    layers = {
        name: sqnr_db(np.concatenate(ref_layers[name]), np.concatenate(int_layers[name]))
        for name in ref_layers
        if name not in reference.inputs
    }
    labels = data.labels
    return Verification(
        layer_sqnr_db=layers,
        output_sqnr_db=layers.get(out, float("nan")),
        top1_agreement=float(np.mean(np.array(ref_top) == np.array(int_top))),
        integer_accuracy=None if labels is None else float(np.mean(np.array(int_top) == labels)),
        float_accuracy=None if labels is None else float(np.mean(np.array(ref_top) == labels)),
    )
