"""Op definitions, one registry entry per ONNX op type (see registry.py)."""

from simulator.ops.registry import OpDef, get_op, register, registered_ops

__all__ = ["OpDef", "get_op", "register", "registered_ops"]
