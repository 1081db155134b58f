"""Expected outputs of mediapipe 0.10.21's float .tflite models from TensorFlow's own TFLite interpreter, for
tests/corpus/test_tflite_corpus.py (run by hand in a venv with tensorflow; CI never needs it).

Usage: python scripts/make_mediapipe_expected.py MODEL_DIR NAME... (NAME as ``face_landmark/face_landmark``;
MODEL_DIR the wheel's mediapipe/modules folder as the corpus test extracts it). Each model is fed the seeded
input uniform(-1, 1) (numpy default_rng(3)) in its NHWC layout.
"""

import sys

import numpy as np
import tensorflow as tf

out = {}
for name in sys.argv[2:]:
    p = f"{sys.argv[1]}/{name}.tflite"
    it = tf.lite.Interpreter(model_path=p)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    shape = tuple(d["shape"])
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    it.set_tensor(d["index"], x)
    it.invoke()
    for k, o in enumerate(it.get_output_details()):
        out[f"{name}:{k}"] = it.get_tensor(o["index"])
np.savez_compressed("tests/data/corpus/mediapipe_tflite_outputs.npz", **out)
print({k: v.shape for k, v in out.items()})
