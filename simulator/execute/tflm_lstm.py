"""TFLite Micro's integer UNIDIRECTIONAL_SEQUENCE_LSTM (kernels/lstm_eval.h), int8 and 16x8 activations.

Per step and gate, as TFLM's LstmStep does it: two fully connected layers (input -> gate and hidden state ->
gate, each requantized to int16 on the fixed gate scale 2^-12, Q3.12), their saturating int16 sum, then the
gate non-linearity on int16 (sigmoid for forget / input / output, tanh for the cell gate, both Q3.12 -> Q0.15
through TFLite's 256-entry sigmoid table with linear interpolation). The cell state is int16 on the scale
2^cell_scale_power: c = sat(f * c) + sat(i * g) with two int16 MULs, clipped to the quantized cell clip; the
hidden state is tanh(c) * o requantized to the activation type with its zero point, and is also the step's
output. 16x8 differs only in the FCs: int16 input, int64 bias, the int64 requantization of 16x8 kernels.

Sources read (no code taken): tflite-micro tensorflow/lite/micro/kernels/lstm_eval.{h,cc},
lstm_eval_common.cc and tensorflow/lite/kernels/internal/reference/integer_ops/{logistic,tanh,mul}.h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import EdgesimError
from simulator.execute import fixedpoint as fp
from simulator.execute import tflm_kernels as tk
from simulator.execute.tflm_activations import SIGMOID_TABLE_UINT16

INT16_MIN, INT16_MAX = -32768, 32767
#: where TFLite's constant tables are kept (data, outside the repository; see _tables_dir)

GATES = ("input", "forget", "cell", "output")


@dataclass(frozen=True)
class Gate:
    """One gate's two fully connected layers: weights [hidden, input] and [hidden, hidden] (int8), the bias
    (int32 with int8 activations, int64 with int16; None for none) and each FC's (multiplier, shift) to Q3.12."""

    input_weights: np.ndarray
    hidden_weights: np.ndarray
    bias: np.ndarray | None
    input_requant: tuple[int, int]
    hidden_requant: tuple[int, int]


def sigmoid_table() -> np.ndarray:
    """TFLite's sigmoid_table_uint16 (sigmoid(i / 24), i = 0..255, in Q0.16) as int64: the table the int16
    LOGISTIC / TANH kernels interpolate in (one copy, in tflm_activations)."""
    return _SIGMOID_TABLE


_SIGMOID_TABLE = SIGMOID_TABLE_UINT16.astype(np.int64)


def _interpolated(magnitude: np.ndarray, fraction_bits: int, saturated: int) -> np.ndarray:
    """The table linearly interpolated at ``magnitude`` (table steps of 2^fraction_bits), scaled by
    2^fraction_bits; ``saturated`` from the last segment on, as TFLite's kernels do."""
    index = magnitude >> fraction_bits
    table = sigmoid_table()
    low = table[np.minimum(index, 254)]
    high = table[np.minimum(index, 254) + 1]
    fraction = magnitude & ((1 << fraction_bits) - 1)
    return np.where(index < 255, (low << fraction_bits) + fraction * (high - low), np.int64(saturated))


def sigmoid_int16(x) -> np.ndarray:
    """int16 LOGISTIC at the power-of-two input scale 2^-12 (Q3.12 in, Q0.15 out), as TFLM's LSTM calls it:
    the input is scaled by 3 (x 3/4 of the table's 1/24 step in units of 2^-9), the table interpolated over
    9 fractional bits on |x|, negatives mirrored as 1 - sigmoid(|x|), and the result rounded to 15 bits."""
    v = np.asarray(x, dtype=np.int64) * 3
    result = _interpolated(np.abs(v), 9, 0x7FFF << 10)
    result = np.where(v >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def tanh_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """int16 TANH (Q0.15 out) with TFLite's input rescaling ``(x * multiplier + round) >> shift``: a zero
    multiplier means a power-of-two scale, handled as multiplier 3 << shift. tanh(x) = 2 sigmoid(2x) - 1 on the
    same table, interpolated over 8 fractional bits."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    rounding = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    v = (np.asarray(x, dtype=np.int64) * input_multiplier + rounding) >> input_left_shift
    result = _interpolated(np.abs(v), 8, 0xFFFF << 8)
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


def cell_tanh_params(cell_scale_power: int) -> tuple[int, int]:
    """(multiplier, left shift) of the tanh of the cell state at scale 2^cell_scale_power (TFLM's Tanh wrapper:
    the Q3.12 input's shift is (15 + power) - 3; a negative shift becomes multiplier 3 and a right shift)."""
    shift = 15 + cell_scale_power - 3
    return (0, shift) if shift >= 0 else (3, -shift)


def _saturating_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(np.int64) + b, INT16_MIN, INT16_MAX).astype(np.int16)


def _gate(x, h, gate: Gate, input_zero_point: int, hidden_zero_point: int) -> np.ndarray:
    """The gate's pre-activation in Q3.12: FC(x) + FC(h), each requantized to int16 then added saturating."""
    int16 = {"output_dtype": np.int16, "activation_min": INT16_MIN, "activation_max": INT16_MAX}
    from_input = tk.fully_connected(
        x, gate.input_weights, gate.bias, output_multiplier=gate.input_requant[0],
        output_shift=gate.input_requant[1], input_zero_point=input_zero_point, **int16,
    )  # fmt: skip
    from_hidden = tk.fully_connected(
        h, gate.hidden_weights, None if gate.bias is None else np.zeros_like(gate.bias),
        output_multiplier=gate.hidden_requant[0], output_shift=gate.hidden_requant[1],
        input_zero_point=hidden_zero_point, **int16,
    )  # fmt: skip
    return _saturating_add(from_input, from_hidden)


def prepare(
    *,
    input_scale: float,
    input_weight_scales: dict[str, float],
    hidden_weight_scales: dict[str, float],
    hidden_scale: float,
    cell_scale: float,
    cell_clip: float = 0.0,
) -> tuple[dict[str, tuple[tuple[int, int], tuple[int, int]]], dict]:
    """The integer parameters TFLM's Prepare derives from the tensors' float32 scales: per gate the (input FC,
    hidden FC) requantizations to 2^-12 (input or hidden scale x weight scale / 2^-12, in double), and the
    keyword arguments of :func:`unidirectional_sequence_lstm` for the cell and hidden updates: f * c and i * g
    at 2^-15 x 2^-15 over the cell scale, tanh(c) * o over the hidden scale, the cell scale's power of two
    (TFLM requires one) and the cell clip in cell units (truncated, within int16)."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731 -- TFLite keeps scales as float
    power = np.log2(f32(cell_scale))
    if power != round(power):
        raise EdgesimError(f"LSTM cell state scale {cell_scale} is not a power of two; TFLM requires one")
    gate_q, one_q = 2.0**-12, f32(2.0**-15)
    gates = {
        g: (
            fp.quantize_multiplier(f32(input_scale) * f32(input_weight_scales[g]) / gate_q),
            fp.quantize_multiplier(f32(hidden_scale) * f32(hidden_weight_scales[g]) / gate_q),
        )
        for g in GATES
    }
    clip = int(min(max(f32(cell_clip) / f32(cell_scale), -32768.0), 32767.0))
    updates = {
        "forget_cell_requant": fp.quantize_multiplier(one_q * f32(cell_scale) / f32(cell_scale)),
        "input_cell_requant": fp.quantize_multiplier(one_q * one_q / f32(cell_scale)),
        "hidden_requant": fp.quantize_multiplier(one_q * one_q / f32(hidden_scale)),
        "cell_scale_power": int(round(power)),
        "quantized_cell_clip": clip,
    }
    return gates, updates


def unidirectional_sequence_lstm(
    input,
    gates: dict[str, Gate],
    *,
    time_major: bool,
    input_zero_point: int,
    hidden_zero_point: int,
    forget_cell_requant: tuple[int, int],
    input_cell_requant: tuple[int, int],
    hidden_requant: tuple[int, int],
    cell_scale_power: int,
    quantized_cell_clip: int = 0,
    hidden_state=None,
    cell_state=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the sequence; returns (output, final hidden state, final cell state).

    ``input`` is [time, batch, features] when ``time_major`` else [batch, time, features], int8 or int16; the
    output has the same layout with ``hidden`` features and the input's type. States default to what TFLM's
    ResetVariableTensors leaves: the hidden state at its zero point (int8) or 0, the cell state 0.
    ``quantized_cell_clip`` > 0 clips the cell state to +-clip after every update, as a non-zero float
    cell_clip does in TFLM.
    """
    x = np.asarray(input)
    if x.dtype not in (np.int8, np.int16):
        raise TypeError(f"unidirectional_sequence_lstm takes int8 or int16 activations, not {x.dtype}")
    steps_first = x if time_major else np.swapaxes(x, 0, 1)  # [time, batch, features]
    batch = steps_first.shape[1]
    hidden = gates["forget"].hidden_weights.shape[0]
    h = np.full((batch, hidden), hidden_zero_point if x.dtype == np.int8 else 0, dtype=x.dtype)
    if hidden_state is not None:
        h = np.asarray(hidden_state, dtype=x.dtype).reshape(batch, hidden)
    c = (
        np.zeros((batch, hidden), np.int16)
        if cell_state is None
        else np.asarray(cell_state, np.int16).reshape(batch, hidden)
    )
    tanh_multiplier, tanh_shift = cell_tanh_params(cell_scale_power)
    lo, hi = (-128, 127) if x.dtype == np.int8 else (INT16_MIN, INT16_MAX)
    outputs = []
    for step in steps_first:
        pre = {name: _gate(step, h, gates[name], input_zero_point, hidden_zero_point) for name in GATES}
        forget = sigmoid_int16(pre["forget"])
        input_gate = sigmoid_int16(pre["input"])
        cell_gate = tanh_int16(pre["cell"], *cell_tanh_params(-12))  # the gate scale 2^-12, Q3.12 -> Q0.15
        kept = tk.mul(forget, c, output_multiplier=forget_cell_requant[0], output_shift=forget_cell_requant[1],
                      output_dtype=np.int16)  # fmt: skip
        added = tk.mul(input_gate, cell_gate, output_multiplier=input_cell_requant[0],
                       output_shift=input_cell_requant[1], output_dtype=np.int16)  # fmt: skip
        c = _saturating_add(kept, added)
        if quantized_cell_clip > 0:
            c = np.clip(c, -quantized_cell_clip, quantized_cell_clip).astype(np.int16)
        output_gate = sigmoid_int16(pre["output"])
        h = tk.mul(
            tanh_int16(c, tanh_multiplier, tanh_shift), output_gate, output_zero_point=hidden_zero_point,
            output_multiplier=hidden_requant[0], output_shift=hidden_requant[1], activation_min=lo,
            activation_max=hi, output_dtype=x.dtype,
        )  # fmt: skip
        outputs.append(h)
    y = np.stack(outputs)  # [time, batch, hidden]
    return (y if time_major else np.swapaxes(y, 0, 1)), h, c
