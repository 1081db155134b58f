"""Elementwise math on one tensor. Rounding and sign ops are one operation per element (``elementwise``);
exponentials, logarithms, square roots and the error function are evaluated by a library routine of tens of
instructions, so they form the ``transcendental`` class the profiles price per element."""

from __future__ import annotations

import math

import numpy as np

from simulator.ops.registry import OpDef, register


class _Unary(OpDef):
    """y = fn(x), same shape and dtype."""

    op_class = "elementwise"

    @staticmethod
    def fn(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self, node, x):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN / inf as a runtime gives them
            return [np.asarray(self.fn(x)).astype(x.dtype, copy=False)]


class _Transcendental(_Unary):
    op_class = "transcendental"


def _unary(op_type: str, fn, base: type[_Unary] = _Unary, doc: str = "") -> type[_Unary]:
    cls = type(op_type, (base,), {"op_type": op_type, "fn": staticmethod(fn), "__doc__": doc or None})
    return register(cls)


_unary("Neg", np.negative)
_unary("Abs", np.abs)
_unary("Sign", np.sign)
_unary("Floor", np.floor)
_unary("Ceil", np.ceil)
_unary("Round", np.round, doc="Halves to even, as ONNX specifies and np.round does.")
_unary("Reciprocal", np.reciprocal, doc="One divide per element.")

_unary("Exp", np.exp, _Transcendental)
_unary("Log", np.log, _Transcendental)
_unary("Sqrt", np.sqrt, _Transcendental)
_unary("Sin", np.sin, _Transcendental)
_unary("Cos", np.cos, _Transcendental)

_erf64 = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64 (numpy has none; math.erf is correctly rounded to about 1 ulp)."""
    return _erf64(np.asarray(x, np.float64)).astype(np.float64)


_unary("Erf", erf, _Transcendental)
