"""The trained zoo models digits-mlp and digits-cnn (weights from scripts/train_digits.py, scikit-learn's digits).

* The committed weights reach the committed test accuracy, computed by a plain numpy forward pass written here
  (direct convolution, independent of edgesim and of the training script's im2col code), and onnxruntime on the
  graph edgesim imports agrees with it sample by sample.
* Retraining reproduces the committed arrays bit for bit (needs scikit-learn, a few seconds of CPU).
* Importing the specs gives exactly the trained arrays, the dataset path, and hand-counted parameters and MACs.

Dataset convention (digits-test.npz): ``x`` float32 (N, 1, 8, 8), pixels scaled to 0..1; ``y`` int64 labels.
Sample i is fed as ``x[i:i+1]`` reshaped row-major to the model's input shape: (1, 64) for the MLP.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from simulator.importers import load_model
from simulator.importers.yamlspec import read_spec
from simulator.importers.zoo import zoo_path
from simulator.summary import count

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
SCRIPT = ROOT / "scripts" / "train_digits.py"
NAMES = ("digits-mlp", "digits-cnn")
# correct predictions out of the 450 held-out images, as the spec descriptions state them
EXPECTED_CORRECT = {"digits-mlp": 443, "digits-cnn": 442}
TEST_SIZE = 450  # 25% of scikit-learn's 1797 digits, rounded up as train_test_split does


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def testset() -> tuple[np.ndarray, np.ndarray]:
    data = arrays(MODELS / "digits-test.npz")
    return data["x"], data["y"]


# ---- an independent numpy forward pass ---------------------------------------------------------------------


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return x @ w.T + b  # w is (units, in_features), as ONNX Gemm with transB=1


def conv_same3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Direct convolution: out[n, o] = b[o] + sum over c, i, j of w[o, c, i, j] * xpad[n, c, y+i, x+j]."""
    n, _, h, width = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.broadcast_to(b[None, :, None, None], (n, w.shape[0], h, width)).copy()
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + width], w[:, :, i, j])
    return out


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(name: str, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities for a batch of (N, 1, 8, 8) images."""
    if name == "digits-mlp":
        h = x.reshape(len(x), 64)  # the dataset convention: row-major to the [1, 64] input
        h = relu(dense(h, p["fc1.weight"], p["fc1.bias"]))
        h = relu(dense(h, p["fc2.weight"], p["fc2.bias"]))
        return softmax(dense(h, p["fc3.weight"], p["fc3.bias"]))
    h = maxpool2x2(relu(conv_same3x3(x, p["conv1.weight"], p["conv1.bias"])))  # 16 x 4 x 4
    h = maxpool2x2(relu(conv_same3x3(h, p["conv2.weight"], p["conv2.bias"])))  # 32 x 2 x 2
    return softmax(dense(h.reshape(len(h), -1), p["fc.weight"], p["fc.bias"]))  # flatten in C, H, W order


def test_forward_pass_helpers():
    """The test's own conv and pool against a brute-force loop on a small random case."""
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    brute = np.array(
        [[[[b[o] + np.sum(w[o] * xp[n, :, r : r + 3, c : c + 3]) for c in range(4)] for r in range(4)]
          for o in range(5)] for n in range(2)]
    )  # fmt: skip
    np.testing.assert_allclose(conv_same3x3(x, w, b), brute, rtol=1e-12)
    assert maxpool2x2(np.arange(16.0).reshape(1, 1, 4, 4)).ravel().tolist() == [5, 7, 13, 15]


# ---- the committed data ---------------------------------------------------------------------------------------


def test_testset_convention(testset):
    x, y = testset
    assert x.dtype == np.float32 and x.shape == (TEST_SIZE, 1, 8, 8)
    assert y.dtype == np.int64 and y.shape == (TEST_SIZE,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.all(np.isin(np.round(x * 16), np.arange(17)))  # 17 grey levels, 0..16 scaled by 1/16
    counts = np.bincount(y, minlength=10)
    # stratified: scikit-learn has 174 to 183 images of each digit, so a quarter is 43 to 46 of each
    assert counts.min() >= 43 and counts.max() <= 46 and counts.sum() == TEST_SIZE


@pytest.mark.parametrize("name", NAMES)
def test_committed_weights_reach_the_stated_accuracy(name, testset):
    x, y = testset
    probs = forward(name, arrays(MODELS / f"{name}.npz"), x)
    correct = int((probs.argmax(axis=1) == y).sum())
    assert correct == EXPECTED_CORRECT[name]
    assert correct / len(y) >= 0.97
    # the spec's description states the same figure
    description = read_spec(zoo_path(name))["description"]
    stated = re.search(r"test accuracy ([\d.]+)% \((\d+) / (\d+)\)", description)
    assert stated, description
    assert (int(stated[2]), int(stated[3])) == (correct, len(y))
    assert float(stated[1]) == round(100 * correct / len(y), 1)


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime_agrees_with_numpy(name, testset):
    import onnxruntime as ort

    from tests.helpers import graph_to_onnx

    graph = load_model(name)
    model = graph_to_onnx(graph)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    [input_name], [output_name] = graph.inputs, graph.outputs
    input_shape = graph.tensors[input_name].shape
    x, y = testset
    probs = np.concatenate(
        [session.run([output_name], {input_name: x[i : i + 1].reshape(input_shape)})[0] for i in range(len(x))]
    )
    expected = forward(name, arrays(MODELS / f"{name}.npz"), x.astype(np.float64))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert np.array_equal(probs.argmax(axis=1), expected.argmax(axis=1))
    assert int((probs.argmax(axis=1) == y).sum()) == EXPECTED_CORRECT[name]


# ---- determinism of the training script ---------------------------------------------------------------------


def load_script():
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retraining_reproduces_the_committed_arrays(tmp_path):
    pytest.importorskip("sklearn", reason="scikit-learn is needed to retrain (pip install scikit-learn)")
    script = load_script()
    results = script.train_all(tmp_path, verbose=False)  # about 5 s on an idle 2-core machine
    for file in ("digits-mlp.npz", "digits-cnn.npz", "digits-test.npz"):
        fresh, committed = arrays(tmp_path / file), arrays(MODELS / file)
        assert fresh.keys() == committed.keys(), file
        for key in committed:
            assert fresh[key].dtype == committed[key].dtype, (file, key)
            assert np.array_equal(fresh[key], committed[key]), f"{file}:{key} differs from the committed array"
    for name in NAMES:
        assert results[f"{name} test"] == EXPECTED_CORRECT[name] / TEST_SIZE


def test_script_split_matches_the_testset(testset):
    pytest.importorskip("sklearn", reason="scikit-learn is needed to rebuild the split (pip install scikit-learn)")
    _, _, x_test, y_test = load_script().load_split()
    x, y = testset
    assert np.array_equal(x_test, x) and np.array_equal(y_test, y)


# ---- importing the specs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_spec_loads_the_trained_weights(name):
    graph = load_model(name)
    trained = arrays(MODELS / f"{name}.npz")
    for key, values in trained.items():
        tensor = graph.tensors[key]
        assert tensor.constant and tensor.dtype == "float32"
        assert np.array_equal(tensor.data, values), key
    assert graph.metadata["dataset"] == str(MODELS / "digits-test.npz")
    assert Path(graph.metadata["dataset"]).is_file()
    assert graph.metadata["source"].startswith("trained by scripts/train_digits.py")


def test_mlp_fc1_weight_is_the_npz_array():
    graph = load_model("digits-mlp")
    assert np.array_equal(graph.tensors["fc1.weight"].data, arrays(MODELS / "digits-mlp.npz")["fc1.weight"])
    assert graph.tensors["fc1.weight"].shape == (300, 64)


# (params, MACs) per weighted layer, by hand: a dense layer has in*out weights + out biases and in*out MACs; a
# 3x3 conv has 9*cin*cout weights + cout biases, each weight used once per output pixel (8x8, then 4x4 after
# the first pool)
HAND = {
    "digits-mlp": [(64 * 300 + 300, 64 * 300), (300 * 100 + 100, 300 * 100), (100 * 10 + 10, 100 * 10)],
    "digits-cnn": [
        (9 * 1 * 16 + 16, 9 * 1 * 16 * 8 * 8),
        (9 * 16 * 32 + 32, 9 * 16 * 32 * 4 * 4),
        (32 * 2 * 2 * 10 + 10, 32 * 2 * 2 * 10),
    ],
}


@pytest.mark.parametrize("name", NAMES)
def test_counts_by_hand(name):
    counts = count(load_model(name))
    assert [(layer.params, layer.macs) for layer in counts.layers if layer.params] == HAND[name]
    assert counts.params == sum(p for p, _ in HAND[name])
    assert counts.params == sum(a.size for a in arrays(MODELS / f"{name}.npz").values())
    assert counts.macs == sum(m for _, m in HAND[name])


def test_hand_totals():
    assert sum(p for p, _ in HAND["digits-mlp"]) == 50_610
    assert sum(m for _, m in HAND["digits-mlp"]) == 50_200
    assert sum(p for p, _ in HAND["digits-cnn"]) == 6_090
    assert sum(m for _, m in HAND["digits-cnn"]) == 84_224
