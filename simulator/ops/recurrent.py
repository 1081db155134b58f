"""Recurrent layers: ONNX LSTM, GRU and RNN, in every form the spec allows (forward, reverse, bidirectional;
sequence_lens; initial states; per-direction activations with their alpha / beta; clip; GRU's
linear_before_reset; LSTM's peepholes and input_forget; layout 0 = time-major, 1 = batch-major).

Counting convention: ``macs`` = batch x steps x directions x gates x hidden x (input + hidden), i.e. the
gate matrix-vector products ``W x_t`` and ``R h_{t-1}`` of every step (LSTM has 4 gates, GRU 3, RNN 1), as
the papers and onnx-tool count them. ``sequence_lens`` can only shorten a run, so the count is the static upper
bound every runtime has to budget for. Gate biases, peepholes, activations and the cell/state blends are
``ops`` (one per elementary operation). The estimator prices the layer as ``matmul``: its time goes into the
gate products, which runtimes issue as GEMV/GEMM calls.

The float kernel computes in float64 and rounds once at the end, like the other reductions (see
registry.widened), and checks nothing the spec leaves open: it is compared with onnxruntime in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from simulator.graph import Node
from simulator.ops.registry import OpDef, fail, register, shape_of

# name -> (function of x, alpha, beta; default alpha; default beta). None: the activation takes no such
# parameter, so it does not consume an entry of activation_alpha / activation_beta.
_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray, float, float], np.ndarray], float | None, float | None]] = {
    "sigmoid": (lambda x, a, b: 1.0 / (1.0 + np.exp(-x)), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "relu": (lambda x, a, b: np.maximum(x, 0.0), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0.0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0.0, 1.0), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1.0)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1.0 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.log1p(np.exp(x)), None, None),
}

Activation = Callable[[np.ndarray], np.ndarray]


class _Recurrent(OpDef):
    """Shared by LSTM, GRU and RNN: inputs X, W, R, B, sequence_lens, initial_h (LSTM adds initial_c, P)."""

    op_class = "matmul"
    weight_inputs: ClassVar[tuple[int, ...]] = (1, 2, 3)
    bias_inputs: ClassVar[tuple[int, ...]] = (3,)
    min_inputs, max_inputs = 3, 6
    #: gates per direction, the default activations of one direction, and the state inputs / outputs
    gates: ClassVar[int] = 1
    default_activations: ClassVar[tuple[str, ...]] = ("Tanh",)
    state_inputs: ClassVar[tuple[int, ...]] = (5,)

    # -- attributes ------------------------------------------------------------------------------------

    def directions(self, node: Node) -> tuple[bool, ...]:
        """One flag per direction: is it run in reverse."""
        direction = node.attr("direction", "forward")
        flags = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}
        if direction not in flags:
            raise fail(node, f"direction {direction!r} is not one of forward, reverse, bidirectional")
        return flags[direction]

    def layout(self, node: Node) -> int:
        layout = int(node.attr("layout", 0))
        if layout not in (0, 1):
            raise fail(node, f"layout {layout} is not 0 (time-major) or 1 (batch-major)")
        return layout

    def activations(self, node: Node) -> list[list[Activation]]:
        """Per direction, its activation functions with alpha / beta bound, in the spec's order."""
        per_dir = len(self.default_activations)
        num_dir = len(self.directions(node))
        names = list(node.attr("activations") or self.default_activations * num_dir)
        if len(names) == per_dir and num_dir == 2:
            names = names * 2
        if len(names) != per_dir * num_dir:
            raise fail(node, f"activations lists {len(names)} functions; {per_dir} per direction are needed")
        alphas = list(node.attr("activation_alpha") or [])
        betas = list(node.attr("activation_beta") or [])
        bound = []
        for name in names:
            entry = _ACTIVATIONS.get(str(name).lower())
            if entry is None:
                raise fail(node, f"activation {name!r} is not one the ONNX spec defines for recurrent ops")
            fn, alpha, beta = entry
            if alpha is not None and alphas:
                alpha = alphas.pop(0)
            if beta is not None and betas:
                beta = betas.pop(0)
            bound.append(lambda x, fn=fn, a=alpha, b=beta: fn(x, a, b))
        return [bound[i * per_dir : (i + 1) * per_dir] for i in range(num_dir)]

    # -- shapes ----------------------------------------------------------------------------------------

    def dims(self, node: Node, inputs) -> tuple[int, int, int, int, int]:
        """(steps, batch, input size, hidden size, directions), checked against W and R."""
        x = shape_of(node, inputs[0], "input X")
        w = shape_of(node, inputs[1], "weights W")
        r = shape_of(node, inputs[2], "recurrence weights R")
        if len(x) != 3:
            raise fail(node, f"input X must be 3-D, got {x}")
        steps, batch = (x[1], x[0]) if self.layout(node) else (x[0], x[1])
        num_dir = len(self.directions(node))
        hidden = int(node.attr("hidden_size", r[-1] if len(r) == 3 else 0))
        want_w = (num_dir, self.gates * hidden, x[2])
        want_r = (num_dir, self.gates * hidden, hidden)
        if tuple(w) != want_w or tuple(r) != want_r:
            raise fail(node, f"W {w} and R {r} do not fit X {x} and hidden_size {hidden}; expected {want_w}, {want_r}")
        return steps, batch, x[2], hidden, num_dir

    def infer(self, node, inputs):
        steps, batch, _, hidden, num_dir = self.dims(node, inputs)
        self.activations(node)  # a bad list fails at import, not at run time
        dtype = inputs[0].dtype
        if self.layout(node):
            y, state = (batch, steps, num_dir, hidden), (batch, num_dir, hidden)
        else:
            y, state = (steps, num_dir, batch, hidden), (num_dir, batch, hidden)
        for i in self.state_inputs:
            t = inputs[i] if i < len(inputs) else None
            if t is not None and tuple(shape_of(node, t, "initial state")) != state:
                raise fail(node, f"initial state {t.name!r} has shape {t.shape}; expected {state}")
        return [(y, dtype)] + [(state, dtype)] * (len(node.outputs) - 1)

    # -- counts ----------------------------------------------------------------------------------------

    def macs(self, node, inputs, outputs):
        steps, batch, size, hidden, num_dir = self.dims(node, inputs)
        return batch * steps * num_dir * self.gates * hidden * (size + hidden)

    def step_ops(self, hidden: int, has_bias: bool, has_peepholes: bool) -> int:
        """Non-MAC arithmetic of one step of one direction for one sequence."""
        gate_sums = self.gates * hidden * (1 + (2 if has_bias else 0))
        return gate_sums + self.cell_ops(hidden, has_peepholes)

    def cell_ops(self, hidden: int, has_peepholes: bool) -> int:
        return hidden  # the activation

    def ops(self, node, inputs, outputs):
        steps, batch, _, hidden, num_dir = self.dims(node, inputs)
        has_bias = len(inputs) > 3 and inputs[3] is not None
        has_peepholes = len(inputs) > 7 and inputs[7] is not None
        return batch * steps * num_dir * self.step_ops(hidden, has_bias, has_peepholes)

    # -- float kernel ----------------------------------------------------------------------------------

    def step(self, node, fns, x_proj, h, c, r, rb, p, clip):
        """One step: (new hidden state, new cell state or None). ``x_proj`` = x W^T + Wb for all gates."""
        raise NotImplementedError

    def run(self, node, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None):
        dtype = x.dtype
        layout = self.layout(node)
        if layout:
            x = np.swapaxes(x, 0, 1)
            h0 = None if h0 is None else np.swapaxes(h0, 0, 1)
            c0 = None if c0 is None else np.swapaxes(c0, 0, 1)
        steps, batch, _ = x.shape
        num_dir, gh, hidden = r.shape
        x = x.astype(np.float64)
        lengths = np.full(batch, steps) if seq_lens is None else np.asarray(seq_lens, np.int64)
        clip = node.attr("clip")
        ys, hs, cs = [], [], []
        for d, (reverse, fns) in enumerate(zip(self.directions(node), self.activations(node), strict=True)):
            wb = rb = np.zeros(gh)
            if b is not None:
                wb, rb = b[d, :gh].astype(np.float64), b[d, gh:].astype(np.float64)
            x_proj = x @ w[d].astype(np.float64).T + wb  # (steps, batch, gates * hidden)
            h = np.zeros((batch, hidden)) if h0 is None else h0[d].astype(np.float64)
            c = np.zeros((batch, hidden)) if c0 is None else c0[d].astype(np.float64)
            pd = None if p is None else p[d].astype(np.float64)
            y = np.zeros((steps, batch, hidden))
            for t in range(steps - 1, -1, -1) if reverse else range(steps):
                active = (t < lengths)[:, None]
                h_new, c_new = self.step(node, fns, x_proj[t], h, c, r[d].astype(np.float64), rb, pd, clip)
                h = np.where(active, h_new, h)
                if c_new is not None:
                    c = np.where(active, c_new, c)
                y[t] = np.where(active, h_new, 0.0)
            ys.append(y)
            hs.append(h)
            cs.append(c)
        y = np.stack(ys, axis=1)  # (steps, dirs, batch, hidden)
        h_n, c_n = np.stack(hs), np.stack(cs)
        if layout:
            y, h_n, c_n = np.transpose(y, (2, 0, 1, 3)), np.swapaxes(h_n, 0, 1), np.swapaxes(c_n, 0, 1)
        results = [y, h_n, c_n][: max(1, len(node.outputs))]
        return [v.astype(dtype) for v in results]


def _clipped(v: np.ndarray, clip) -> np.ndarray:
    return v if clip is None else np.clip(v, -clip, clip)


@register
class RNN(_Recurrent):
    """H_t = f(x_t W^T + H_{t-1} R^T + Wb + Rb)."""

    op_type = "RNN"

    def step(self, node, fns, x_proj, h, c, r, rb, p, clip):
        return fns[0](_clipped(x_proj + h @ r.T + rb, clip)), None


@register
class GRU(_Recurrent):
    """Gates z, r, h (W, R and B in that order); linear_before_reset applies r after the recurrence product."""

    op_type = "GRU"
    gates = 3
    default_activations = ("Sigmoid", "Tanh")

    def cell_ops(self, hidden, has_peepholes):
        return 3 * hidden + hidden + 3 * hidden  # activations, the reset product, (1 - z) h + z H

    def step(self, node, fns, x_proj, h, c, r, rb, p, clip):
        f, g = fns
        n = h.shape[1]
        rec = h @ r[: 2 * n].T + rb[: 2 * n]
        z = f(_clipped(x_proj[:, :n] + rec[:, :n], clip))
        reset = f(_clipped(x_proj[:, n : 2 * n] + rec[:, n:], clip))
        if node.attr("linear_before_reset", 0):
            candidate = x_proj[:, 2 * n :] + reset * (h @ r[2 * n :].T + rb[2 * n :])
        else:
            candidate = x_proj[:, 2 * n :] + (reset * h) @ r[2 * n :].T + rb[2 * n :]
        hidden = g(_clipped(candidate, clip))
        return (1.0 - z) * hidden + z * h, None


@register
class LSTM(_Recurrent):
    """Gates i, o, f, c (W, R and B in that order; peepholes P in order i, o, f); input_forget couples the
    forget gate to 1 - input gate (as onnxruntime does; the forget gate's weights are then unused)."""

    op_type = "LSTM"
    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    weight_inputs = (1, 2, 3, 7)
    max_inputs = 8
    state_inputs = (5, 6)

    def cell_ops(self, hidden, has_peepholes):
        # 5 activations, f*c + i*g (3), o*h(c); peepholes add a product and a sum per gate that has one
        return 5 * hidden + 4 * hidden + (6 * hidden if has_peepholes else 0)

    def step(self, node, fns, x_proj, h, c, r, rb, p, clip):
        f_act, g_act, h_act = fns
        n = h.shape[1]
        pre = x_proj + h @ r.T + rb
        pi, po, pf = (np.zeros(n),) * 3 if p is None else (p[:n], p[n : 2 * n], p[2 * n :])
        inp = f_act(_clipped(pre[:, :n] + pi * c, clip))
        coupled = node.attr("input_forget", 0)
        forget = 1.0 - inp if coupled else f_act(_clipped(pre[:, 2 * n : 3 * n] + pf * c, clip))
        cell = g_act(_clipped(pre[:, 3 * n :], clip))
        c_new = forget * c + inp * cell
        out = f_act(_clipped(pre[:, n : 2 * n] + po * c_new, clip))
        return out * h_act(c_new), c_new
