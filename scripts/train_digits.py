"""Train the two digits zoo models (``digits-mlp``, ``digits-cnn``) on scikit-learn's bundled 8x8 digits.

Pure numpy: forward and backward passes are written out here (im2col for the convolutions), trained with Adam
from fixed seeds, so a rerun reproduces the committed arrays bit for bit on the same numpy/BLAS. scikit-learn
is used only for ``load_digits`` (the data ships inside the wheel, nothing is downloaded) and the stratified
``train_test_split``.

Writes, into ``--out`` (default: models/):

* ``digits-mlp.npz``: ``fc1.weight`` (300, 64), ``fc1.bias``, ``fc2.*`` (100, 300), ``fc3.*`` (10, 100) --
  dense weights are (units, in_features), as ONNX Gemm with transB=1 reads them;
* ``digits-cnn.npz``: ``conv1.weight`` (16, 1, 3, 3), ``conv1.bias``, ``conv2.*`` (32, 16, 3, 3),
  ``fc.*`` (10, 128);
* ``digits-test.npz``: the held-out 25% (450 images).

Dataset convention (digits-test.npz): ``x`` is float32 (N, 1, 8, 8), NCHW, pixels 0..16 scaled to 0..1;
``y`` is int64 (N,), the digit 0..9. A model is fed one sample at a time, ``x[i:i+1]`` reshaped (row-major) to
the model's input shape: (1, 1, 8, 8) for digits-cnn as is, (1, 64) for digits-mlp -- row-major flattening
gives exactly scikit-learn's ``data`` pixel order. The models end in softmax; the prediction is the argmax.

Usage: ``PYTHONPATH=. python scripts/train_digits.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

SEED = 0
TEST_SIZE = 0.25
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

Params = dict[str, np.ndarray]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread: these matrices are tiny, and a multi-threaded OpenBLAS on a busy machine is
    10x slower (results are the same either way). Uses threadpoolctl (installed with scikit-learn) if present."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ---- data ------------------------------------------------------------------------------------------------------


def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): x float32 (N, 1, 8, 8) in 0..1, y int64; stratified, seeded split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=seed, shuffle=True
    )
    return x_train, y_train, x_test, y_test


# ---- layers (float64 while training) ---------------------------------------------------------------------------


def im2col3x3(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C*9, H*W) patches of a 3x3, stride 1, pad 1 convolution; rows ordered (c, kh, kw)
    like a flattened (O, C, 3, 3) weight."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, c, 3, 3, h, w), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i : i + h, j : j + w]
    return cols.reshape(n, c * 9, h * w)


def col2im3x3(dcols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of :func:`im2col3x3`: scatter-add patch gradients back to (N, C, H, W)."""
    n, c, h, w = shape
    dcols = dcols.reshape(n, c, 3, 3, h, w)
    dxp = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i : i + h, j : j + w] += dcols[:, :, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 'same' convolution (stride 1, pad 1); returns the output and the im2col patches for backward."""
    n, _, h, w = x.shape
    cols = im2col3x3(x)
    out = np.matmul(weight.reshape(weight.shape[0], -1), cols) + bias[:, None]
    return out.reshape(n, weight.shape[0], h, w), cols


def conv3x3_backward(
    dout: np.ndarray, cols: np.ndarray, weight: np.ndarray, x_shape: tuple[int, ...] | None
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) of :func:`conv3x3`; dx is None when ``x_shape`` is (the first layer needs none)."""
    n, o = dout.shape[:2]
    dout = dout.reshape(n, o, -1)
    dweight = (dout.transpose(1, 0, 2).reshape(o, -1) @ cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])).reshape(
        weight.shape
    )
    dbias = dout.sum(axis=(0, 2))
    if x_shape is None:
        return None, dweight, dbias
    return col2im3x3(np.matmul(weight.reshape(o, -1).T, dout), x_shape), dweight, dbias


def maxpool2(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """2x2 stride-2 max pool; returns the output and, for backward, which of the four window positions won
    (on ties the first in row-major order takes the gradient)."""
    corners = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    out = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    taken = np.zeros(out.shape, bool)
    winners = []
    for corner in corners:
        won = (corner == out) & ~taken
        taken |= won
        winners.append(won)
    return out, winners


def maxpool2_backward(dout: np.ndarray, winners: list[np.ndarray]) -> np.ndarray:
    n, c, h2, w2 = dout.shape
    dx = np.zeros((n, c, 2 * h2, 2 * w2), dout.dtype)
    for (i, j), won in zip(((0, 0), (0, 1), (1, 0), (1, 1)), winners, strict=True):
        dx[:, :, i::2, j::2] = dout * won
    return dx


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---- the two models: forward (logits) and loss + gradients -----------------------------------------------------


def mlp_logits(p: Params, x: np.ndarray) -> np.ndarray:
    """64 -> 300 -> 100 -> 10 logits; ``x`` is (N, 64) or (N, 1, 8, 8)."""
    h = x.reshape(len(x), -1)
    h = np.maximum(h @ p["fc1.weight"].T + p["fc1.bias"], 0)
    h = np.maximum(h @ p["fc2.weight"].T + p["fc2.bias"], 0)
    return h @ p["fc3.weight"].T + p["fc3.bias"]


def mlp_grads(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    a0 = x.reshape(len(x), -1)
    a1 = np.maximum(a0 @ p["fc1.weight"].T + p["fc1.bias"], 0)
    a2 = np.maximum(a1 @ p["fc2.weight"].T + p["fc2.bias"], 0)
    probs = softmax(a2 @ p["fc3.weight"].T + p["fc3.bias"])
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    d3 = probs
    d3[np.arange(len(y)), y] -= 1
    d3 /= len(y)
    g = {"fc3.weight": d3.T @ a2, "fc3.bias": d3.sum(0)}
    d2 = (d3 @ p["fc3.weight"]) * (a2 > 0)
    g |= {"fc2.weight": d2.T @ a1, "fc2.bias": d2.sum(0)}
    d1 = (d2 @ p["fc2.weight"]) * (a1 > 0)
    g |= {"fc1.weight": d1.T @ a0, "fc1.bias": d1.sum(0)}
    return float(loss), g


def cnn_logits(p: Params, x: np.ndarray) -> np.ndarray:
    """1x8x8 -conv3x3 16, relu-> 16x8x8 -pool-> 16x4x4 -conv3x3 32, relu-> 32x4x4 -pool-> 32x2x2 -flatten->
    128 -dense-> 10 logits."""
    h, _ = conv3x3(x, p["conv1.weight"], p["conv1.bias"])
    h, _ = maxpool2(np.maximum(h, 0))
    h, _ = conv3x3(h, p["conv2.weight"], p["conv2.bias"])
    h, _ = maxpool2(np.maximum(h, 0))
    return h.reshape(len(h), -1) @ p["fc.weight"].T + p["fc.bias"]


def cnn_grads(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    z1, cols1 = conv3x3(x, p["conv1.weight"], p["conv1.bias"])
    a1 = np.maximum(z1, 0)
    q1, m1 = maxpool2(a1)
    z2, cols2 = conv3x3(q1, p["conv2.weight"], p["conv2.bias"])
    a2 = np.maximum(z2, 0)
    q2, m2 = maxpool2(a2)
    flat = q2.reshape(len(q2), -1)
    probs = softmax(flat @ p["fc.weight"].T + p["fc.bias"])
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    d = probs
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    g = {"fc.weight": d.T @ flat, "fc.bias": d.sum(0)}
    dq2 = (d @ p["fc.weight"]).reshape(q2.shape)
    dz2 = maxpool2_backward(dq2, m2) * (z2 > 0)
    dq1, g["conv2.weight"], g["conv2.bias"] = conv3x3_backward(dz2, cols2, p["conv2.weight"], q1.shape)
    dz1 = maxpool2_backward(dq1, m1) * (z1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv3x3_backward(dz1, cols1, p["conv1.weight"], None)
    return float(loss), g


def he_init(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]) -> Params:
    """He-normal weights (fan-in = every axis but the first), zero biases; drawn in ``shapes`` order."""
    params = {}
    for name, shape in shapes.items():
        if name.endswith(".bias"):
            params[name] = np.zeros(shape)
        else:
            params[name] = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
    return params


MLP_SHAPES = {
    "fc1.weight": (300, 64), "fc1.bias": (300,),
    "fc2.weight": (100, 300), "fc2.bias": (100,),
    "fc3.weight": (10, 100), "fc3.bias": (10,),
}  # fmt: skip
CNN_SHAPES = {
    "conv1.weight": (16, 1, 3, 3), "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3), "conv2.bias": (32,),
    "fc.weight": (10, 32 * 2 * 2), "fc.bias": (10,),
}  # fmt: skip


def train(
    grads: Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]],
    shapes: dict[str, tuple[int, ...]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    lr: float,
    batch: int = 32,
) -> Params:
    """Adam (beta 0.9 / 0.999, cosine-decayed rate) on minibatches reshuffled every epoch, float64 throughout;
    float32 result."""
    rng = np.random.default_rng(seed)
    p = he_init(rng, shapes)
    m = {k: np.zeros_like(val) for k, val in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    x = x.astype(np.float64)
    step = 0
    with single_threaded_blas():
        for epoch in range(epochs):
            rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                idx = order[start : start + batch]
                _, g = grads(p, x[idx], y[idx])
                step += 1
                for k in p:
                    m[k] = 0.9 * m[k] + 0.1 * g[k]
                    v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                    m_hat = m[k] / (1 - 0.9**step)
                    v_hat = v[k] / (1 - 0.999**step)
                    p[k] = p[k] - rate * m_hat / (np.sqrt(v_hat) + 1e-8)
    return {k: val.astype(np.float32) for k, val in p.items()}


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> Params:
    return train(mlp_grads, MLP_SHAPES, x, y, seed=seed, epochs=30, lr=1e-3)


def train_cnn(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> Params:
    # seed + 1: its own init and shuffle stream, not a copy of the MLP's
    return train(cnn_grads, CNN_SHAPES, x, y, seed=seed + 1, epochs=30, lr=3e-3)


def accuracy(logits: Callable[[Params, np.ndarray], np.ndarray], p: Params, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the float32 weights evaluated in float32."""
    return float((logits(p, x.astype(np.float32)).argmax(axis=1) == y).mean())


def train_all(out: Path, seed: int = SEED, verbose: bool = True) -> dict[str, float]:
    """Train both models, write the three .npz files into ``out``; return the accuracies."""
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_split(seed)
    np.savez_compressed(out / "digits-test.npz", x=x_test.astype(np.float32), y=y_test.astype(np.int64))
    results = {}
    for name, trainer, logits in (("digits-mlp", train_mlp, mlp_logits), ("digits-cnn", train_cnn, cnn_logits)):
        start = time.perf_counter()
        params = trainer(x_train, y_train, seed)
        seconds = time.perf_counter() - start
        np.savez_compressed(out / f"{name}.npz", **params)
        results[f"{name} train"] = accuracy(logits, params, x_train, y_train)
        results[f"{name} test"] = accuracy(logits, params, x_test, y_test)
        if verbose:
            print(
                f"{name}: train {results[f'{name} train']:.4f} ({len(y_train)}), "
                f"test {results[f'{name} test']:.4f} ({len(y_test)}), {seconds:.1f} s"
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="directory for the .npz files (models/)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    train_all(args.out, args.seed)


if __name__ == "__main__":
    main()
