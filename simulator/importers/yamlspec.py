"""The YAML layer-list format for what-if models (documented in docs/yaml-models.md).

A spec names its inputs and lists layers; each layer reads the previous layer's output unless it names its
``input``/``inputs``, which is enough for residual and branching networks. Layers lower to the same ONNX ops
the ONNX importer produces, so everything downstream sees one kind of graph. Weights are drawn lazily from a
generator seeded by the spec's ``seed`` and the tensor's name: deterministic, and free until first used.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simulator.arrays import load_arrays
from simulator.errors import EdgesimError
from simulator.graph import Graph, Node, Tensor
from simulator.ops import get_op
from simulator.passes.fold_batchnorm import fold_batchnorm
from simulator.passes.infer_shapes import infer_shapes
from simulator.yamlio import read_yaml

_COMMON = {"type", "name", "input", "inputs", "activation"}
_CONV = {"kernel", "stride", "padding", "dilation", "bias", "batchnorm"}
#: layer type -> (required fields, optional fields)
LAYER_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "conv": ({"filters", "kernel"}, _CONV | {"groups"}),
    "depthwise": ({"kernel"}, _CONV | {"multiplier"}),
    "dense": ({"units"}, {"bias", "batchnorm"}),
    "maxpool": ({"kernel"}, {"stride", "padding", "ceil_mode"}),
    "avgpool": ({"kernel"}, {"stride", "padding", "ceil_mode"}),
    "globalavgpool": (set(), set()),
    "globalmaxpool": (set(), set()),
    "flatten": (set(), set()),
    "batchnorm": (set(), set()),
    "add": (set(), set()),
    "mul": (set(), set()),
    "concat": (set(), {"axis"}),
    "reshape": ({"shape"}, set()),
    "dropout": (set(), {"rate"}),
    "softmax": (set(), {"axis"}),
    "relu": (set(), set()),
    "relu6": (set(), set()),
    "sigmoid": (set(), set()),
    "tanh": (set(), set()),
    "hardswish": (set(), set()),
    "hardsigmoid": (set(), set()),
    "leakyrelu": (set(), {"alpha"}),
}
_MAX_DIM = 2**31 - 1


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_DIM


def _int_or_ints(value: Any) -> bool:
    return _positive_int(value) or (isinstance(value, list) and bool(value) and all(map(_positive_int, value)))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e30


def _names(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


#: field -> (check, what it must be): a spec's values are checked before any layer is built from them
_FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "filters": (_positive_int, "a positive integer"),
    "units": (_positive_int, "a positive integer"),
    "groups": (_positive_int, "a positive integer"),
    "multiplier": (_positive_int, "a positive integer"),
    "kernel": (_int_or_ints, "a positive integer or a list of them"),
    "stride": (_int_or_ints, "a positive integer or a list of them"),
    "dilation": (_int_or_ints, "a positive integer or a list of them"),
    "axis": (lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) < 64, "an integer axis"),
    "bias": (lambda v: isinstance(v, bool), "true or false"),
    "batchnorm": (lambda v: isinstance(v, bool), "true or false"),
    "ceil_mode": (lambda v: isinstance(v, bool), "true or false"),
    "rate": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "alpha": (_finite, "a finite number"),
    "name": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "input": (_names, "a layer name or a list of layer names"),
    "inputs": (_names, "a layer name or a list of layer names"),
}
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leakyrelu", "softmax")
_TOP_FIELDS = {"name", "description", "source", "seed", "inputs", "layers", "outputs", "weights", "dataset"}


def _seeded(seed: int, name: str, draw: Callable[[np.random.Generator], np.ndarray]) -> Callable[[], np.ndarray]:
    def factory() -> np.ndarray:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        return draw(rng).astype(np.float32)

    return factory


class _Builder:
    """Adds nodes one at a time, inferring shapes as it goes (layer sizes depend on input channels)."""

    def __init__(self, seed: int, trained: dict[str, np.ndarray] | None = None):
        self.seed = seed
        self.trained = trained
        self.used: set[str] = set()
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}

    def weight(self, name: str, shape: tuple[int, ...], kind: str, fan_in: int = 1) -> str:
        if self.trained is not None:
            if name not in self.trained:
                raise EdgesimError(f"the weights file has no array {name!r} (shape {shape})")
            values = np.asarray(self.trained[name], dtype=np.float32)
            if values.shape != shape:
                raise EdgesimError(f"weights array {name!r} has shape {values.shape}, the layer needs {shape}")
            self.used.add(name)
            self.tensors[name] = Tensor.from_array(name, values)
            return name
        draws = {
            # He-normal, as for ReLU networks
            "weight": lambda rng: rng.normal(0.0, np.sqrt(2.0 / fan_in), shape),
            "bias": lambda rng: rng.normal(0.0, 0.05, shape),
            "gamma": lambda rng: rng.uniform(0.5, 1.5, shape),
            "beta": lambda rng: rng.normal(0.0, 0.1, shape),
            "mean": lambda rng: rng.normal(0.0, 0.1, shape),
            "var": lambda rng: rng.uniform(0.5, 1.5, shape),
        }
        factory = _seeded(self.seed, name, draws[kind])
        self.tensors[name] = Tensor(name, shape, "float32", constant=True, factory=factory)
        return name

    def constant(self, name: str, values: np.ndarray) -> str:
        self.tensors[name] = Tensor.from_array(name, values)
        return name

    def add(self, name: str, op_type: str, inputs: list[str], **attrs: Any) -> str:
        node = Node(name, op_type, inputs, [name], attrs)
        op = get_op(op_type)
        [(shape, dtype)] = op.infer(node, [self.tensors[i] if i else None for i in inputs])[:1]
        self.tensors[name] = Tensor(name, shape, dtype)
        self.nodes.append(node)
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape


def _ints(value: Any, rank: int, where: str, field: str) -> list[int]:
    values = [value] * rank if isinstance(value, int) else value
    if not isinstance(values, list) or len(values) != rank or not all(isinstance(v, int) for v in values):
        raise EdgesimError(f"{where}: {field} must be an integer or a list of {rank} integers, got {value!r}")
    return values


def _padding(value: Any, rank: int, where: str) -> dict[str, Any]:
    """ONNX attributes for a padding spec: 'valid', 'same' (TensorFlow's), an int, per-dim, or begin+end."""
    if value in (None, "valid"):
        return {"pads": [0] * (2 * rank)}
    if value == "same":
        return {"auto_pad": "SAME_UPPER"}
    if isinstance(value, list) and len(value) == 2 * rank and all(isinstance(v, int) for v in value):
        return {"pads": value}
    return {"pads": _ints(value, rank, where, "padding") * 2}


def _layer_where(index: int, layer: dict) -> str:
    name = layer.get("name")
    return f"layer {index}" + (f" ({name})" if name else "")


def _check_fields(layer: Any, index: int) -> str:
    if not isinstance(layer, dict) or "type" not in layer:
        raise EdgesimError(f"layer {index}: each layer must be a mapping with a 'type' field")
    kind = layer["type"]
    where = _layer_where(index, layer)
    if not isinstance(kind, str) or kind not in LAYER_FIELDS:
        raise EdgesimError(f"{where}: unknown layer type {kind!r}; valid types: {', '.join(sorted(LAYER_FIELDS))}")
    required, optional = LAYER_FIELDS[kind]
    allowed = _COMMON | required | optional
    for key in layer:
        if key not in allowed:
            raise EdgesimError(f"{where}: unknown field {key!r} for {kind}; valid fields: {', '.join(sorted(allowed))}")
    for key in required:
        if key not in layer:
            raise EdgesimError(f"{where}: {kind} needs the field {key!r}")
    for key, value in layer.items():
        check, expected = _FIELD_CHECKS.get(key, (None, ""))
        if check is not None and not check(value):
            raise EdgesimError(f"{where}: {key} must be {expected}, got {str(value)[:80]!r}")
    if layer.get("activation") not in (None, *ACTIVATIONS):
        raise EdgesimError(
            f"{where}: unknown activation {layer['activation']!r}; valid activations: {', '.join(ACTIVATIONS)}"
        )
    return kind


def _activation(b: _Builder, name: str, kind: str, x: str, layer: dict) -> str:
    if kind == "relu6":
        lo = b.constant(f"{name}.min", np.array(0.0, np.float32))
        hi = b.constant(f"{name}.max", np.array(6.0, np.float32))
        return b.add(name, "Clip", [x, lo, hi])
    if kind == "leakyrelu":
        return b.add(name, "LeakyRelu", [x], alpha=float(layer.get("alpha", 0.01)))
    if kind == "softmax":
        return b.add(name, "Softmax", [x], axis=int(layer.get("axis", -1)))
    op_type = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hardswish": "HardSwish"}.get(kind, "HardSigmoid")
    return b.add(name, op_type, [x])


def _batchnorm(b: _Builder, name: str, x: str) -> str:
    channels = b.shape(x)[1]
    params = [b.weight(f"{name}.{p}", (channels,), p) for p in ("gamma", "beta", "mean", "var")]
    return b.add(name, "BatchNormalization", [x, *params], epsilon=1e-3)


def _build_layer(b: _Builder, kind: str, name: str, xs: list[str], layer: dict, where: str) -> str:
    x = xs[0]
    rank = len(b.shape(x))
    spatial = rank - 2
    if kind in ("conv", "depthwise"):
        if spatial < 1:
            raise EdgesimError(f"{where}: {kind} needs an N x C x spatial input, got shape {b.shape(x)}")
        channels = b.shape(x)[1]
        kernel = _ints(layer["kernel"], spatial, where, "kernel")
        if kind == "conv":
            groups = int(layer.get("groups", 1))
            filters = int(layer["filters"])
            if channels % groups or filters % groups:
                raise EdgesimError(f"{where}: groups={groups} must divide {channels} inputs and {filters} filters")
        else:
            groups, filters = channels, channels * int(layer.get("multiplier", 1))
        fan_in = channels // groups * int(np.prod(kernel))
        w = b.weight(f"{name}.weight", (filters, channels // groups, *kernel), "weight", fan_in)
        inputs = [x, w]
        batchnorm = bool(layer.get("batchnorm", False))
        if layer.get("bias", not batchnorm):
            inputs.append(b.weight(f"{name}.bias", (filters,), "bias"))
        attrs = {
            "kernel_shape": kernel,
            "strides": _ints(layer.get("stride", 1), spatial, where, "stride"),
            "dilations": _ints(layer.get("dilation", 1), spatial, where, "dilation"),
            **_padding(layer.get("padding"), spatial, where),
        }
        if groups != 1:
            attrs["group"] = groups
        out = b.add(name, "Conv", inputs, **attrs)
        return _batchnorm(b, f"{name}.bn", out) if batchnorm else out
    if kind == "dense":
        if rank != 2:
            raise EdgesimError(f"{where}: dense needs a 2-D input, got {b.shape(x)}; add a flatten layer before it")
        features, units = b.shape(x)[1], int(layer["units"])
        inputs = [x, b.weight(f"{name}.weight", (units, features), "weight", features)]
        batchnorm = bool(layer.get("batchnorm", False))
        if layer.get("bias", not batchnorm):
            inputs.append(b.weight(f"{name}.bias", (units,), "bias"))
        out = b.add(name, "Gemm", inputs, transB=1)
        return _batchnorm(b, f"{name}.bn", out) if batchnorm else out
    if kind in ("maxpool", "avgpool"):
        if spatial < 1:
            raise EdgesimError(f"{where}: {kind} needs an N x C x spatial input, got shape {b.shape(x)}")
        kernel = _ints(layer["kernel"], spatial, where, "kernel")
        attrs = {
            "kernel_shape": kernel,
            "strides": _ints(layer.get("stride", layer["kernel"]), spatial, where, "stride"),
            "ceil_mode": int(bool(layer.get("ceil_mode", False))),
            **_padding(layer.get("padding"), spatial, where),
        }
        return b.add(name, "MaxPool" if kind == "maxpool" else "AveragePool", [x], **attrs)
    if kind in ("globalavgpool", "globalmaxpool"):
        return b.add(name, "GlobalAveragePool" if kind == "globalavgpool" else "GlobalMaxPool", [x])
    if kind == "flatten":
        return b.add(name, "Flatten", [x], axis=1)
    if kind == "batchnorm":
        return _batchnorm(b, name, x)
    if kind in ("add", "mul"):
        if len(xs) < 2:
            raise EdgesimError(f"{where}: {kind} needs at least two inputs, given as inputs: [a, b]")
        op_type = "Add" if kind == "add" else "Mul"
        out = xs[0]
        for i, other in enumerate(xs[1:], start=1):
            out = b.add(name if i == len(xs) - 1 else f"{name}.{i}", op_type, [out, other])
        return out
    if kind == "concat":
        return b.add(name, "Concat", xs, axis=int(layer.get("axis", 1)))
    if kind == "reshape":
        shape = layer["shape"]
        if not isinstance(shape, list) or not all(isinstance(v, int) for v in shape):
            raise EdgesimError(f"{where}: shape must be a list of integers, got {shape!r}")
        return b.add(name, "Reshape", [x, b.constant(f"{name}.shape", np.array(shape, np.int64))])
    if kind == "dropout":
        return b.add(name, "Dropout", [x])
    return _activation(b, name, kind, x, layer)


def _beside(base: Path | None, value: Any, field: str) -> Path:
    """A data file named in a spec: a plain file name in the spec's own directory, nothing else."""
    if not isinstance(value, str) or not value or Path(value).name != value or value in (".", ".."):
        raise EdgesimError(f"{field} must be a file name beside the spec (no directories), got {value!r}")
    if base is None:
        raise EdgesimError(f"{field} needs the spec to be read from a file")
    path = base / value
    if not path.is_file():
        raise EdgesimError(f"{field}: {value!r} is not a file beside the spec")
    return path


def _load_arrays(path: Path, field: str) -> dict[str, np.ndarray]:
    arrays = load_arrays(path, f"{field} (.npz)", finite=True)
    if not isinstance(arrays, dict):
        raise EdgesimError(f"{field}: {path.name} is a single .npy array; weights are an .npz of named arrays")
    return arrays


def parse_spec(spec: Any, default_name: str, base: Path | None = None) -> tuple[Graph, dict]:
    """Build the raw op graph (before batch-norm folding) of a parsed spec; also return its metadata."""
    if not isinstance(spec, dict):
        raise EdgesimError("a model spec must be a mapping with 'inputs' and 'layers'")
    for key in spec:
        if key not in _TOP_FIELDS:
            raise EdgesimError(f"unknown top-level field {key!r}; valid fields: {', '.join(sorted(_TOP_FIELDS))}")
    seed = spec.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise EdgesimError(f"seed must be an integer in [0, 2**63), got {str(seed)[:40]!r}")
    trained = _load_arrays(_beside(base, spec["weights"], "weights"), "weights") if "weights" in spec else None
    b = _Builder(seed, trained)
    inputs = spec.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise EdgesimError("'inputs' must be a list like [{name: input, shape: [1, 3, 32, 32]}]")
    input_names = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict) or set(item) - {"name", "shape"} or "shape" not in item:
            raise EdgesimError(f"inputs[{i}] must be a mapping with 'name' and 'shape'")
        shape = item["shape"]
        if not isinstance(shape, list) or not all(_positive_int(d) for d in shape):
            raise EdgesimError(f"inputs[{i}].shape must be a list of positive integers, got {shape!r}")
        name = str(item.get("name", f"input{i}"))
        b.tensors[name] = Tensor(name, tuple(shape), "float32")
        input_names.append(name)
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise EdgesimError("'layers' must be a non-empty list of layers")
    previous = input_names[0]
    output_of = {n: n for n in input_names}  # layer name -> the tensor it outputs (after its activation)
    for index, layer in enumerate(layers):
        kind = _check_fields(layer, index)
        where = _layer_where(index, layer)
        name = str(layer.get("name", f"{kind}{index}"))
        if name in output_of:
            raise EdgesimError(f"{where}: the name {name!r} is already used; layer names must be unique")
        sources = layer.get("inputs", layer.get("input", previous))
        sources = [sources] if isinstance(sources, str) else sources
        if not isinstance(sources, list) or not sources:
            raise EdgesimError(f"{where}: inputs must be a layer name or a list of layer names")
        for source in sources:
            if source not in output_of:
                raise EdgesimError(
                    f"{where}: input {source!r} is not a model input or an earlier layer; "
                    f"known: {', '.join(sorted(output_of))}"
                )
        activation = layer.get("activation")
        try:
            out = _build_layer(b, kind, name, [output_of[s] for s in sources], layer, where)
            if activation:
                out = _activation(b, f"{name}.{activation}", activation, out, layer)
        except EdgesimError as exc:
            message = str(exc)
            raise EdgesimError(message if message.startswith(where) else f"{where}: {message}") from None
        output_of[name], previous = out, name
    outputs = spec.get("outputs", [layers[-1].get("name", f"{layers[-1]['type']}{len(layers) - 1}")])
    if not isinstance(outputs, list) or any(not isinstance(o, str) or o not in output_of for o in outputs):
        raise EdgesimError(f"outputs must list layer names; known: {', '.join(sorted(output_of))}")
    if trained is not None and set(trained) - b.used:
        raise EdgesimError(f"weights file has arrays no layer uses: {', '.join(sorted(set(trained) - b.used))}")
    meta = {k: spec[k] for k in ("description", "source") if k in spec}
    if "dataset" in spec:
        meta["dataset"] = str(_beside(base, spec["dataset"], "dataset"))
    graph = Graph(
        str(spec.get("name", default_name)),
        b.nodes,
        b.tensors,
        input_names,
        [output_of[o] for o in outputs],
        metadata=meta,
    )
    return graph, meta


def read_spec(path: Path) -> Any:
    return read_yaml(path, "model spec")


def load_spec(path: Path) -> Graph:
    """Read a YAML model spec into a shape-inferred op graph with batch norm folded."""
    graph, _ = parse_spec(read_spec(path), path.stem, path.resolve().parent)
    return fold_batchnorm(infer_shapes(graph))
