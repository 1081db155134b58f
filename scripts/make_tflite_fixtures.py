"""Build the small int8 .tflite fixtures under tests/data/tflite/ (run by hand, not in CI).

Each fixture is a tiny Keras model with seeded weights, converted by TensorFlow's TFLite converter to a
full-integer model (int8 input and output, int8 activations, per-channel int8 weights, int32 biases) with a
seeded representative data set. Beside each ``NAME.tflite`` goes ``NAME_input.npz`` holding

* ``input``: a seeded float batch in the model's own NHWC (or NC) layout,
* ``input_int8``: that batch quantized with the model's input parameters (what the tests feed); for the
  ``*_levels`` fixtures every int8 level once instead (and ``input`` their real values),
* ``tflm_output``: the int8 output of the tflite-micro interpreter on ``input_int8`` (kept so that the peer
  test still has a reference when tflite-micro cannot be installed; the test prefers a live run).

Needs ``pip install tensorflow tflite-micro``. Usage::

    python scripts/make_tflite_fixtures.py [OUT_DIR [NAME ...]]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 1234
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tflite"


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
    yield model("unsupported_tanh", (4, 4, 3), lambda x: layers.Activation("tanh")(x))


def _convert(model, shape: tuple[int, ...], seed: int) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    calibration = [rng.uniform(-1, 1, (1, *shape)).astype(np.float32) for _ in range(32)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _tflm_output(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(flatbuffer)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0)).copy()


def main(out: Path = OUT, names: list[str] | None = None) -> None:
    """Build every fixture, or only ``names`` (each keeps the seeds of its place in the list)."""
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    for i, (name, model) in enumerate(_models()):
        if names and name not in names:
            continue
        shape = tuple(int(d) for d in model.input_shape[1:])
        flatbuffer = _convert(model, shape, SEED + i)
        (out / f"{name}.tflite").write_bytes(flatbuffer)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        scale, zero_point = interpreter.get_input_details()[0]["quantization"]
        x = np.random.default_rng(SEED + 100 + i).uniform(-1, 1, (1, *shape)).astype(np.float32)
        q = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
        if name.endswith("_levels"):
            q = np.arange(-128, 128).astype(np.int8).reshape(q.shape)
            x = ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)
        np.savez_compressed(out / f"{name}_input.npz", input=x, input_int8=q, tflm_output=_tflm_output(flatbuffer, q))
        print(f"{name}: {len(flatbuffer)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT, sys.argv[2:])
