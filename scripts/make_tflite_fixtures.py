"""Build the small int8, 16x8 and int4-weight .tflite fixtures under tests/data/tflite/ (run by hand, not in CI).

Each fixture is a tiny Keras model with seeded weights, converted by TensorFlow's TFLite converter to a
full-integer model (int8 input and output, int8 activations, per-channel int8 weights, int32 biases) with a
seeded representative data set. Beside each ``NAME.tflite`` goes ``NAME_input.npz`` holding

* ``input``: a seeded float batch in the model's own NHWC (or NC) layout,
* ``input_int8``: that batch quantized with the model's input parameters (what the tests feed); for the
  ``*_levels`` fixtures every int8 level once instead (and ``input`` their real values),
* ``tflm_output``: the int8 output of the tflite-micro interpreter on ``input_int8`` (kept so that the peer
  test still has a reference when tflite-micro cannot be installed; the test prefers a live run).

Two more schemes reuse some of the same Keras models:

* ``a16w8_NAME``: TFLite's 16x8 scheme (the converter's EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
  op set): int16 input, output and activations with zero point 0, int8 weights, int64 biases; the npz holds
  ``input_int16`` instead of ``input_int8``;
* ``w4_NAME``: int4 weights. The converter has no post-training int4 path, so the int8 model it wrote is
  rewritten: each conv / depthwise / fully-connected weight is requantized to 4-bit levels in [-7, 7] (scale
  max|w| / 7 per channel), stored as an INT4 tensor packed two per byte (low nibble first, packed here,
  independently of edgesim) and its bias re-expressed at the new s_in * s_w. TFLM unpacks it and runs the
  int8 kernel;
* ``float_io_NAME``: the converter's default float32 input and output around the int8 model (a QUANTIZE
  first, a DEQUANTIZE last); the npz holds ``input_float32``, the float batch with a third of its values
  moved onto float32 ties of the QUANTIZE (x / scale exactly k + 1/2) and a tenth far outside its range, and
  a float32 ``tflm_output``.

``a16w8_float_io_NAME`` is the 16x8 model with float input and output (QUANTIZE to int16, DEQUANTIZE from it).
``a16w8_concat`` joins int16 branches of different scales: the 16x8 converter puts a QUANTIZE
(int16 -> int16 requantization) before the CONCATENATION.

Needs ``pip install tensorflow tflite-micro``. Usage (``--only`` builds the fixtures whose file names start
with one of the given prefixes, leaving the others untouched)::

    python scripts/make_tflite_fixtures.py [OUT_DIR] [--only a16w8_,w4_]

"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 1234
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tflite"
#: models also converted with the 16x8 scheme, as a16w8_NAME
A16W8 = ("conv", "depthwise", "dense", "add", "maxpool", "avgpool", "softmax", "cnn", "mean_global", "mean_keepdims",
         "mean_channels", "mul", "mul_const", "pad", "relu_concat", "concat", "tanh", "attention",
         "tanh_levels", "conv_transpose")  # fmt: skip
#: models whose int8 conversion is rewritten with INT4 weights, as w4_NAME
W4 = ("conv", "depthwise", "depthwise_stride2", "dense", "cnn")
#: models also converted with float input and output (QUANTIZE first, DEQUANTIZE last), as float_io_NAME
FLOAT_IO = ("cnn", "quantize_ties")
#: models also converted as float32 models (f32_NAME) and with float16 weights (f16_NAME), for --mode float
FLOAT32 = ("cnn", "prelu", "flatten_dynamic", "attention", "tensor_ops", "conv_transpose")
#: models also converted with the 16x8 scheme and float input and output, as a16w8_float_io_NAME
A16W8_FLOAT_IO = ("cnn",)


def _models():
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)

    def model(name, shape, build):
        inp = keras.Input(shape=shape, batch_size=1, name="input")
        return name, keras.Model(inp, build(inp), name=name)

    def seeded(layer_seed: int):
        # a non-trivial bias makes the int32 bias path matter
        return dict(
            kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed),
            bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=layer_seed + 1),
        )

    yield model(
        "conv",
        (12, 12, 3),
        lambda x: layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", **seeded(1))(x),
    )
    yield model(
        "conv_valid_relu6",
        (10, 9, 4),
        lambda x: layers.ReLU(6.0)(layers.Conv2D(6, (3, 2), padding="valid", **seeded(3))(x)),
    )
    yield model(
        "depthwise",
        (10, 10, 4),
        lambda x: layers.DepthwiseConv2D(
            3, padding="same", depth_multiplier=2, activation="relu",
            depthwise_initializer=keras.initializers.GlorotUniform(seed=5),
            bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=6),
        )(x),
    )  # fmt: skip
    yield model(
        "depthwise_stride2",
        (11, 11, 6),
        lambda x: layers.DepthwiseConv2D(
            3, strides=2, padding="same",
            depthwise_initializer=keras.initializers.GlorotUniform(seed=15),
            bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=16),
        )(x),
    )  # fmt: skip
    yield model(
        "conv_dilated",
        (12, 12, 2),
        lambda x: layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="relu", **seeded(17))(x),
    )
    yield model("dense", (20,), lambda x: layers.Dense(10, activation="relu", **seeded(7))(x))
    yield model(
        "add",
        (8, 8, 4),
        lambda x: layers.Add()(
            [layers.Conv2D(4, 1, **seeded(9))(x), layers.Conv2D(4, 3, padding="same", **seeded(11))(x)]
        ),
    )
    yield model("maxpool", (9, 9, 3), lambda x: layers.MaxPooling2D(2, padding="same")(x))
    yield model("avgpool", (9, 9, 3), lambda x: layers.AveragePooling2D(3, strides=2, padding="same")(x))
    yield model("softmax", (16,), lambda x: layers.Softmax()(layers.Dense(16, **seeded(13))(x)))

    def cnn(x):
        y = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", **seeded(21))(x)
        d = layers.DepthwiseConv2D(
            3, padding="same", activation="relu6",
            depthwise_initializer=keras.initializers.GlorotUniform(seed=23),
            bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=24),
        )(y)  # fmt: skip
        p = layers.Conv2D(8, 1, **seeded(25))(d)
        y = layers.ReLU()(layers.Add()([y, p]))
        y = layers.MaxPooling2D(2)(y)
        y = layers.AveragePooling2D(2)(y)
        y = layers.Flatten()(y)
        y = layers.Dense(12, activation="relu", **seeded(27))(y)
        return layers.Softmax()(layers.Dense(5, **seeded(29))(y))

    yield model("cnn", (16, 16, 3), cnn)
    # RESHAPE to rank 4 (NHWC in TFLite: the importer goes back to NCHW after it) and a softmax over channels
    yield model(
        "reshape_conv_softmax",
        (12,),
        lambda x: layers.Softmax()(
            layers.Conv2D(4, 3, padding="same", **seeded(31))(
                layers.Reshape((4, 4, 2))(layers.Dense(32, **seeded(33))(x))
            )
        ),
    )
    # Keras' global average pooling becomes MEAN over H and W (keep_dims false)
    yield model("mean_global", (4, 4, 3), lambda x: layers.GlobalAveragePooling2D()(x))
    # a wide conv output, so that inputs beyond the logistic's radius saturate both ways
    wide = dict(kernel_initializer=keras.initializers.RandomUniform(-2.0, 2.0, seed=35))
    yield model("logistic", (6, 6, 3), lambda x: layers.Activation("sigmoid")(layers.Conv2D(8, 3, **wide)(x)))
    yield model(
        "hard_swish",
        (6, 6, 3),
        lambda x: layers.Activation("hard_swish")(layers.Conv2D(8, 3, padding="same", **seeded(37))(x)),
    )
    yield model(
        "mean_keepdims",
        (7, 5, 4),
        lambda x: layers.GlobalAveragePooling2D(keepdims=True)(layers.Conv2D(6, 3, **seeded(39))(x)),
    )
    yield model("mean_channels", (5, 6, 8), lambda x: keras.ops.mean(layers.Conv2D(8, 1, **seeded(41))(x), axis=-1))

    def concat(x):
        # branches of very different ranges (weights of about +-0.1 and +-3) joined on channels, then a conv
        small = layers.Conv2D(4, 1, kernel_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=43))(x)
        large = layers.Conv2D(
            6, 3, padding="same", activation="relu",
            kernel_initializer=keras.initializers.RandomUniform(-3.0, 3.0, seed=45),
        )(x)  # fmt: skip
        return layers.Conv2D(5, 1, **seeded(47))(layers.Concatenate()([small, large]))

    yield model("concat", (6, 6, 3), concat)
    # "_levels" fixtures are fed every int8 level once: a 1x1 conv of constant weight w maps them onto (nearly)
    # every level of the activation's input grid, spanning about +-w (the logistic saturates beyond +-8)
    for name, act, w in (("logistic_levels", "sigmoid", 10.0), ("hard_swish_levels", "hard_swish", 5.0)):
        scale = dict(kernel_initializer=keras.initializers.Constant(w), bias_initializer="zeros")
        yield model(name, (16, 16, 1), lambda x, a=act, k=scale: layers.Activation(a)(layers.Conv2D(1, 1, **k)(x)))
    # TANH has no importer mapping: the tests check the error names it and its operator index
    yield model("tanh", (4, 4, 3), lambda x: layers.Activation("tanh")(x))
    # models added later go below, so that the seeds of the ones above (their index) stay as they were
    yield model(
        "mul",
        (6, 6, 3),
        lambda x: layers.Multiply()(
            [layers.Conv2D(4, 1, **seeded(51))(x), layers.Conv2D(4, 3, padding="same", **seeded(53))(x)]
        ),
    )
    # a constant per-channel factor (MUL with a constant operand: after a pool, so that no conv absorbs it)
    factor = np.linspace(-1.5, 2.0, 3).astype(np.float32)
    yield model("mul_const", (6, 6, 3), lambda x: layers.MaxPooling2D(2)(x) * factor)
    yield model(
        "pad", (5, 4, 3), lambda x: layers.ZeroPadding2D(((1, 2), (0, 1)))(layers.Conv2D(4, 1, **seeded(57))(x))
    )
    # a non-zero constant pad value makes PADV2 (TFLM has no int16 PADV2, so no a16w8_ variant)
    yield model(
        "padv2",
        (5, 4, 3),
        lambda x: keras.ops.pad(layers.Conv2D(4, 1, **seeded(59))(x), [[0, 0], [1, 0], [2, 1], [0, 0]],
                                constant_values=0.25),
    )  # fmt: skip

    def relu_concat(x):
        # RELU and RELU6 that no kernel absorbs: the ADD's output has two readers, and TFLite's CONCATENATION
        # (of two pools of one tensor, so that 16x8 needs no QUANTIZE to align scales) takes no RELU6
        a = layers.Add()([layers.Conv2D(4, 1, **seeded(61))(x), layers.Conv2D(4, 3, padding="same", **seeded(63))(x)])
        r = layers.ReLU()(a)
        pools = [layers.MaxPooling2D(3, 1, "same")(a), layers.AveragePooling2D(3, 1, "same")(a)]
        r6 = layers.ReLU(6.0)(layers.Concatenate()(pools))
        return layers.Add()([layers.Conv2D(3, 1, **seeded(65))(r), layers.Conv2D(3, 1, **seeded(67))(r6)])

    yield model("relu_concat", (6, 6, 3), relu_concat)
    # a 1x1 max pool passes its int8 input through: with float input and output, TFLM's output is exactly
    # what its QUANTIZE made of each float (ties and saturation included), dequantized
    yield model("quantize_ties", (8, 8, 4), lambda x: layers.MaxPooling2D(1)(x))

    # a whole network as Keras builds it: MobileNetV2 (width 0.35, 96x96; seeded random weights): 17 inverted
    # residual blocks, stride-2 depthwise convs, ReLU6, residual adds, mean, then a dense layer of 10 logits (with
    # a softmax after it, tflite-micro 0.dev aborts the process while preparing: the logits of random weights
    # span a range its softmax preparation refuses)
    def mobilenet_v2(x):
        base = keras.applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, include_top=False, pooling="avg"
        )
        return layers.Dense(10, **seeded(71))(base(x))

    yield model("mobilenet_v2_035", (96, 96, 3), mobilenet_v2)
    yield from _wild_models(keras, layers, seeded)


def _wild_models(keras, layers, seeded):
    """Models written the way converters write real ones: a Flatten on a dynamic batch (SHAPE, STRIDED_SLICE,
    PACK before the RESHAPE), PRELU, attention-style BATCH_MATMUL between activations with keep_num_dims
    FULLY_CONNECTED, and tensor manipulation (TRANSPOSE, SPLIT, GATHER, UNPACK / PACK, STRIDED_SLICE)."""

    def dynamic(name, shape, build, batch_size=None):
        inp = keras.Input(shape=shape, batch_size=batch_size, name="input")  # batch None: as Keras users write it
        return name, keras.Model(inp, build(inp), name=name)

    yield dynamic(
        "flatten_dynamic", (6, 6, 3),
        lambda x: layers.Dense(5, **seeded(81))(layers.Flatten()(layers.Conv2D(4, 3, **seeded(83))(x))),
    )  # fmt: skip
    yield dynamic(
        "prelu", (6, 6, 3),
        lambda x: layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=85),
                               shared_axes=[1, 2])(layers.Conv2D(4, 1, **seeded(87))(x)),
    )  # fmt: skip

    def attention(x):
        q, k, v = (layers.Dense(8, **seeded(s))(x) for s in (89, 91, 93))
        scores = layers.Softmax()(keras.ops.matmul(q, keras.ops.transpose(k, (0, 2, 1))) * 0.35)
        return layers.Dense(6, **seeded(95))(keras.ops.matmul(scores, v))

    # (a fixed batch: on a dynamic one the converter computes Dense's reshapes with REDUCE_PROD, which TFLM lacks)
    yield dynamic("attention", (5, 12), attention, 1)

    def tensor_ops(x):
        t = keras.ops.transpose(layers.Conv2D(6, 1, **seeded(97))(x), (0, 2, 1, 3))
        a, c = keras.ops.split(t, 2, axis=3)
        g = keras.ops.take(a, np.array([3, 0, 2], np.int32), axis=1)  # (TFLM gathers with int32 positions only)
        rows = keras.ops.unstack(c[:, :3, :, :], axis=1)
        stacked = keras.ops.stack(rows[::-1], axis=1)
        return layers.Concatenate(axis=2)([g, stacked, x[:, ::2, 1:4, :][:, :3, :, 0:3]])

    yield dynamic("tensor_ops", (6, 5, 3), tensor_ops, 1)
    yield dynamic("unsupported_elu", (4, 4, 3), lambda x: layers.ELU()(x))
    scale = dict(kernel_initializer=keras.initializers.Constant(4.0), bias_initializer="zeros")
    yield dynamic("tanh_levels", (16, 16, 1), lambda x: layers.Activation("tanh")(layers.Conv2D(1, 1, **scale)(x)), 1)
    yield dynamic(
        "conv_transpose", (5, 5, 3),
        lambda x: layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", **seeded(99))(x), 1,
    )  # fmt: skip


def _convert(model, shape: tuple[int, ...], seed: int, a16w8: bool = False, float_io: bool = False) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    calibration = [rng.uniform(-1, 1, (1, *shape)).astype(np.float32) for _ in range(32)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    if a16w8:
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [ops]
        if not float_io:
            converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if not float_io:  # the converter's default keeps float32 input and output around the int8 graph
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def _pack_nibbles(levels: np.ndarray) -> np.ndarray:
    """TFLite's INT4 storage: two values per byte, the first in the low nibble; an odd count pads with 0."""
    v = (levels.astype(np.int64).ravel() & 0xF).tolist()
    if len(v) % 2:
        v.append(0)
    return np.array([lo | (hi << 4) for lo, hi in zip(v[0::2], v[1::2], strict=True)], np.uint8)


def _along(scale: np.ndarray, axis: int | None, shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel scales shaped to broadcast along ``axis`` of a tensor of ``shape`` (a scalar when None)."""
    if axis is None:
        return scale.reshape(())
    view = [1] * len(shape)
    view[axis] = -1
    return scale.reshape(view)


def _int4_weights(flatbuffer: bytes) -> bytes:
    """Rewrite the int8 weights of conv / depthwise / fully-connected ops as INT4 (see the module docstring)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    sg = model.subgraphs[0]
    ops = schema.BuiltinOperator
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin not in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.FULLY_CONNECTED):
            continue
        w = sg.tensors[op.inputs[1]]
        assert w.type == schema.TensorType.INT8
        shape = tuple(int(d) for d in w.shape)
        scale8 = np.asarray(w.quantization.scale, np.float64)
        axis = int(w.quantization.quantizedDimension) if scale8.size > 1 else None
        real = np.frombuffer(bytes(model.buffers[w.buffer].data), np.int8).reshape(shape) * _along(scale8, axis, shape)
        if builtin == ops.FULLY_CONNECTED:
            axis = None  # TFLM's int4 FULLY_CONNECTED takes per-tensor weights only
        rows = np.moveaxis(real, axis, 0).reshape(shape[axis], -1) if axis is not None else real.reshape(1, -1)
        scale4 = (np.abs(rows).max(axis=1) / 7).astype(np.float32)
        scale4 = np.where(scale4 > 0, scale4, np.float32(1)).astype(np.float32)
        levels4 = np.clip(np.rint(real / _along(scale4.astype(np.float64), axis, shape)), -7, 7)
        model.buffers[w.buffer].data = _pack_nibbles(levels4)
        w.type = schema.TensorType.INT4
        w.quantization.scale = scale4.tolist()
        w.quantization.zeroPoint = [0] * scale4.size
        w.quantization.quantizedDimension = axis or 0
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = sg.tensors[op.inputs[2]]
            s_in = np.float64(sg.tensors[op.inputs[0]].quantization.scale[0])
            old = np.frombuffer(bytes(model.buffers[b.buffer].data), np.int32).astype(np.float64)
            real_bias = old * np.asarray(b.quantization.scale, np.float64)
            new_scale = (s_in * scale4.astype(np.float64)).astype(np.float32)
            new = np.rint(real_bias / np.broadcast_to(new_scale, old.shape).astype(np.float64)).astype(np.int32)
            model.buffers[b.buffer].data = np.frombuffer(new.astype("<i4").tobytes(), np.uint8)
            b.quantization.scale = new_scale.tolist()
            b.quantization.zeroPoint = [0] * new_scale.size
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tflm_output(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=8 << 20)  # enough for the whole network
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0)).copy()


def _write(out: Path, name: str, flatbuffer: bytes, x: np.ndarray) -> None:
    """NAME.tflite and NAME_input.npz (the float input, its integers as the model's input type, TFLM's output)."""
    import tensorflow as tf

    (out / f"{name}.tflite").write_bytes(flatbuffer)
    detail = tf.lite.Interpreter(model_content=flatbuffer).get_input_details()[0]
    if detail["dtype"] == np.float32:  # float input: fed as floats, with ties and saturating values mixed in
        fed = _ties_and_saturation(x, *_first_quantize(flatbuffer), np.random.default_rng(SEED))
        arrays = {"input": x, "input_float32": fed, "tflm_output": _tflm_output(flatbuffer, fed)}
        np.savez_compressed(out / f"{name}_input.npz", **arrays)
        print(f"{name}: {len(flatbuffer)} bytes")
        return
    scale, zero_point = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    info = np.iinfo(dtype)
    q = np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)
    if name.endswith("_levels"):  # every int8 level once (the input holds 256 values)
        q = np.arange(-128, 128).astype(dtype).reshape(q.shape)
        x = ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)
    arrays = {"input": x, f"input_{dtype.name}": q, "tflm_output": _tflm_output(flatbuffer, q)}
    np.savez_compressed(out / f"{name}_input.npz", **arrays)
    print(f"{name}: {len(flatbuffer)} bytes")


def _first_quantize(flatbuffer: bytes) -> tuple[float, int, type]:
    """(scale, zero point, integer type) of the output of the model's first operator, its QUANTIZE."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    sg = model.subgraphs[0]
    op = sg.operators[0]
    code = model.operatorCodes[op.opcodeIndex]
    assert max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.QUANTIZE
    t = sg.tensors[op.outputs[0]]
    dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.INT16: np.int16}[t.type]
    return float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0]), dtype


def _ties_and_saturation(x: np.ndarray, scale: float, zero_point: int, dtype, rng) -> np.ndarray:
    """``x`` with a third of its values replaced by float32 ties of the quantization (``x / scale`` in float32
    is exactly k + 1/2, for every k of the integer range and a few beyond it, both signs) and a tenth by values
    far outside the range (up to 10^4 steps away), at seeded positions."""
    s = np.float32(scale)
    info = np.iinfo(dtype)
    halves = np.arange(info.min - zero_point - 3, info.max - zero_point + 3) + 0.5
    candidates = np.float32(halves * np.float64(s))
    ties = candidates[candidates / s == np.float32(halves)]
    far = np.float32(rng.choice([-1.0, 1.0], 64) * rng.uniform(2, 80, 64) * (info.max - info.min) * np.float64(s))
    flat = x.reshape(-1).copy()
    spots = rng.permutation(flat.size)
    n_ties, n_far = flat.size // 3, flat.size // 10
    flat[spots[:n_ties]] = rng.choice(ties, n_ties)
    flat[spots[n_ties : n_ties + n_far]] = rng.choice(far, n_far)
    return flat.reshape(x.shape).astype(np.float32)


def _build(model, shape: tuple[int, ...], seed: int, scheme: str) -> bytes:
    """The flatbuffer of one fixture: ``int8``, ``a16w8`` (16x8), ``w4`` (int8 model with INT4 weights) or
    ``float_io`` (int8 inside, float32 input and output)."""
    if scheme == "a16w8":
        return _convert(model, shape, seed, a16w8=True)
    if scheme in ("float_io", "a16w8_float_io"):
        return _convert(model, shape, seed, a16w8=scheme.startswith("a16w8"), float_io=True)
    flatbuffer = _convert(model, shape, seed)
    return _int4_weights(flatbuffer) if scheme == "w4" else flatbuffer


def _write_float(out: Path, name: str, model, x: np.ndarray) -> None:
    """A float32 model as the converter writes it without optimizations (float16 weights behind DEQUANTIZE
    for ``f16_``), beside ``NAME_io.npz``: the NHWC input and TensorFlow's TFLite interpreter's output."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if name.startswith("f16_"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.tflite").write_bytes(flatbuffer)
    np.savez_compressed(out / f"{name}_io.npz", input=x, output=y)
    print(f"{name}: {len(flatbuffer)} bytes (float)")


def _write_streaming(out: Path) -> None:
    """``streaming_window``: a streaming model whose state is a resource variable, as TensorFlow converts a
    tf.Variable (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE, a CALL_ONCE init subgraph; the float variable
    is sliced, quantized, concatenated with the new int8 frame, dequantized and assigned): each call slides a
    4-frame window by one 8-value frame and applies a dense layer with ReLU. ``streaming_window_calls.npz``
    holds 8 seeded int8 frames and tflite-micro's output after each, the state kept between the calls."""
    import tensorflow as tf
    from tflite_micro import runtime

    class Stream(tf.Module):
        def __init__(self):
            super().__init__()
            self.state = tf.Variable(tf.zeros((1, 4, 8)), trainable=False)
            self.w = tf.constant(np.random.default_rng(5).uniform(-0.5, 0.5, (32, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((1, 1, 8), tf.float32)])
        def __call__(self, x):
            window = tf.concat([self.state[:, 1:, :], x], axis=1)
            self.state.assign(window)
            return tf.nn.relu(tf.matmul(tf.reshape(window, (1, 32)), self.w))

    module = Stream()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = True
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(6)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 1, 8)).astype(np.float32)] for _ in range(64))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=1 << 16)
    frames = np.random.default_rng(SEED).integers(-128, 128, (8, 1, 1, 8)).astype(np.int8)
    outputs = []
    for frame in frames:
        interpreter.set_input(frame, 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0)).copy())
    out.mkdir(parents=True, exist_ok=True)
    (out / "streaming_window.tflite").write_bytes(flatbuffer)
    np.savez_compressed(out / "streaming_window_calls.npz", frames=frames, tflm_outputs=np.stack(outputs))
    print(f"streaming_window: {len(flatbuffer)} bytes")


def main(out: Path = OUT, only: tuple[str, ...] = ("",)) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if "streaming_window".startswith(only):
        _write_streaming(out.parent / "tflite_stream")
    for i, (name, model) in enumerate(_models()):
        shape = tuple(int(d) for d in model.input_shape[1:])
        x = np.random.default_rng(SEED + 100 + i).uniform(-1, 1, (1, *shape)).astype(np.float32)
        for prefix in ("f32_", "f16_"):  # float models, in tests/data/tflite_float/
            if name in FLOAT32 and f"{prefix}{name}".startswith(only):
                _write_float(out.parent / "tflite_float", f"{prefix}{name}", model, x)
        variants = [(name, "int8")]
        variants += [(f"a16w8_{name}", "a16w8")] if name in A16W8 else []
        variants += [(f"w4_{name}", "w4")] if name in W4 else []
        variants += [(f"float_io_{name}", "float_io")] if name in FLOAT_IO else []
        variants += [(f"a16w8_float_io_{name}", "a16w8_float_io")] if name in A16W8_FLOAT_IO else []
        for fixture, scheme in variants:
            if fixture.startswith(only):
                _write(out, fixture, _build(model, shape, SEED + i, scheme), x)


if __name__ == "__main__":
    args = sys.argv[1:]
    prefixes = ("",)
    if "--only" in args:
        at = args.index("--only")
        prefixes = tuple(args[at + 1].split(","))
        del args[at : at + 2]
    main(Path(args[0]) if args else OUT, prefixes)
