"""tflm_lstm against the tflite-micro interpreter itself: seeded one-op UNIDIRECTIONAL_SEQUENCE_LSTM models
(int8 and 16x8 activations, non-zero biases and zero points, time- and batch-major, with and without a cell
clip) are written as .tflite flatbuffers here, run by tflite-micro, and must equal edgesim's kernel bit for bit,
with every multiplier derived from the scales as TFLM's Prepare derives them."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from simulator.execute import tflm_lstm as tl

tflite = pytest.importorskip("tflite")
flatbuffers = pytest.importorskip("flatbuffers")


def _module(name: str):
    return importlib.import_module(f"tflite.{name}")


def _vector(builder, values, dtype) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=dtype))


class _Writer:
    """Just enough of the TFLite schema to write one subgraph with one operator."""

    def __init__(self):
        self.b = flatbuffers.Builder(1 << 16)
        self.buffers: list[bytes] = [b""]
        self.tensors: list[int] = []

    def tensor(self, name, shape, tensor_type, scale, zero_point=0, data=None, variable=False) -> int:
        b, T, Q = self.b, _module("Tensor"), _module("QuantizationParameters")
        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buffer = len(self.buffers) - 1
        scales = _vector(b, [scale], np.float32)
        zero_points = _vector(b, [zero_point], np.int64)
        Q.Start(b)
        Q.AddScale(b, scales)
        Q.AddZeroPoint(b, zero_points)
        quant = Q.End(b)
        shape_vec = _vector(b, shape, np.int32)
        name_str = b.CreateString(name)
        T.Start(b)
        T.AddShape(b, shape_vec)
        T.AddType(b, tensor_type)
        T.AddBuffer(b, buffer)
        T.AddName(b, name_str)
        T.AddQuantization(b, quant)
        T.AddIsVariable(b, variable)
        self.tensors.append(T.End(b))
        return len(self.tensors) - 1

    def finish(self, inputs: list[int], output: int, time_major: bool, cell_clip: float) -> bytes:
        b = self.b
        O, Opts = _module("Operator"), _module("UnidirectionalSequenceLSTMOptions")
        Opts.Start(b)
        Opts.AddFusedActivationFunction(b, tflite.ActivationFunctionType.TANH)
        Opts.AddCellClip(b, cell_clip)
        Opts.AddTimeMajor(b, time_major)
        options = Opts.End(b)
        op_inputs = _vector(b, inputs, np.int32)
        op_outputs = _vector(b, [output], np.int32)
        O.Start(b)
        O.AddOpcodeIndex(b, 0)
        O.AddInputs(b, op_inputs)
        O.AddOutputs(b, op_outputs)
        O.AddBuiltinOptionsType(b, tflite.BuiltinOptions.UnidirectionalSequenceLSTMOptions)
        O.AddBuiltinOptions(b, options)
        operator = O.End(b)
        S = _module("SubGraph")
        tensors = self._offsets(S.StartTensorsVector, self.tensors)
        operators = self._offsets(S.StartOperatorsVector, [operator])
        sub_inputs = _vector(b, [inputs[0]], np.int32)
        sub_outputs = _vector(b, [output], np.int32)
        S.Start(b)
        S.AddTensors(b, tensors)
        S.AddInputs(b, sub_inputs)
        S.AddOutputs(b, sub_outputs)
        S.AddOperators(b, operators)
        subgraph = S.End(b)
        C = _module("OperatorCode")
        code = tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
        C.Start(b)
        C.AddDeprecatedBuiltinCode(b, code)
        C.AddBuiltinCode(b, code)
        C.AddVersion(b, 1)
        opcode = C.End(b)
        B = _module("Buffer")
        buffers = []
        for data in self.buffers:
            vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            B.Start(b)
            if vec is not None:
                B.AddData(b, vec)
            buffers.append(B.End(b))
        M = _module("Model")
        subgraphs = self._offsets(M.StartSubgraphsVector, [subgraph])
        opcodes = self._offsets(M.StartOperatorCodesVector, [opcode])
        buffer_vec = self._offsets(M.StartBuffersVector, buffers)
        M.Start(b)
        M.AddVersion(b, 3)
        M.AddOperatorCodes(b, opcodes)
        M.AddSubgraphs(b, subgraphs)
        M.AddBuffers(b, buffer_vec)
        b.Finish(M.End(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def _offsets(self, start, offsets: list[int]) -> int:
        start(self.b, len(offsets))
        for offset in reversed(offsets):
            self.b.PrependUOffsetTRelative(offset)
        return self.b.EndVector()


def _case(dtype, time_major, cell_clip, seed):
    rng = np.random.default_rng(seed)
    batch, steps, size, hidden = 2, 5, 6, 4
    int16 = dtype == np.int16
    act_type = tflite.TensorType.INT16 if int16 else tflite.TensorType.INT8
    in_scale, in_zp = (np.float32(3e-4), 0) if int16 else (np.float32(0.02), -7)
    h_scale, h_zp = (np.float32(1 / 16000), 0) if int16 else (np.float32(1 / 120), 4)
    cell_scale = np.float32(2.0**-11)
    w = _Writer()
    shape = [steps, batch, size] if time_major else [batch, steps, size]
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    inputs = [w.tensor("input", shape, act_type, in_scale, in_zp)]
    gates = {}
    weight_scales = {}
    for kind, cols in (("input_to", size), ("recurrent_to", hidden)):
        for g in ("input", "forget", "cell", "output"):
            scale = np.float32(rng.uniform(0.002, 0.01))
            values = rng.integers(-127, 128, (hidden, cols)).astype(np.int8)
            weight_scales[kind, g] = (scale, values)
            inputs.append(w.tensor(f"{kind}_{g}", [hidden, cols], tflite.TensorType.INT8, scale, 0, values))
    inputs += [-1, -1, -1]  # no peepholes
    bias_type, bias_dtype = (tflite.TensorType.INT64, np.int64) if int16 else (tflite.TensorType.INT32, np.int32)
    for g in ("input", "forget", "cell", "output"):
        bias = rng.integers(-20000, 20000, hidden).astype(bias_dtype)
        inputs.append(w.tensor(f"{g}_bias", [hidden], bias_type, in_scale * weight_scales["input_to", g][0], 0, bias))
        gates[g] = bias
    inputs += [-1, -1]  # no projection
    inputs.append(w.tensor("output_state", [batch, hidden], act_type, h_scale, h_zp, variable=True))
    inputs.append(w.tensor("cell_state", [batch, hidden], tflite.TensorType.INT16, cell_scale, 0, variable=True))
    inputs += [-1, -1, -1, -1]  # no layer norm
    out_shape = [steps, batch, hidden] if time_major else [batch, steps, hidden]
    output = w.tensor("output", out_shape, act_type, h_scale, h_zp)
    model = w.finish(inputs, output, time_major, cell_clip)

    requants, params = tl.prepare(
        input_scale=in_scale, hidden_scale=h_scale, cell_scale=cell_scale, cell_clip=cell_clip,
        input_weight_scales={g: weight_scales["input_to", g][0] for g in tl.GATES},
        hidden_weight_scales={g: weight_scales["recurrent_to", g][0] for g in tl.GATES},
    )  # fmt: skip
    edgesim_gates = {
        g: tl.Gate(weight_scales["input_to", g][1], weight_scales["recurrent_to", g][1], gates[g], *requants[g])
        for g in tl.GATES
    }
    params.update(time_major=time_major, input_zero_point=in_zp, hidden_zero_point=h_zp)
    return model, x, edgesim_gates, params


@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["int8", "16x8"])
@pytest.mark.parametrize("time_major", [False, True], ids=["batch-major", "time-major"])
@pytest.mark.parametrize("cell_clip", [0.0, 0.25], ids=["no-clip", "clip"])
def test_bit_exact_with_live_tflite_micro(dtype, time_major, cell_clip):
    runtime = pytest.importorskip("tflite_micro").runtime
    model, x, gates, params = _case(dtype, time_major, cell_clip, seed=int(time_major) * 2 + int(cell_clip > 0))
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    expected = np.asarray(interpreter.get_output(0))
    got, _, _ = tl.unidirectional_sequence_lstm(x, gates, **params)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    diff = np.flatnonzero(got != expected)
    assert diff.size == 0, f"{diff.size} of {got.size} differ: {got.ravel()[diff[:5]]} vs {expected.ravel()[diff[:5]]}"
