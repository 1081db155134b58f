"""Hostile inputs for the fuzz suite: each generator draws one case from a random source.

A generator takes a ``random.Random``-like object (hypothesis' ``st.randoms()`` in the test suite, so cases
shrink; a seeded ``random.Random`` in scripts/fuzz.py) and returns a :class:`Case`: the files to create in a
fresh directory and the edgesim command line to run there (``{d}`` stands for that directory). The inputs
start from real ones (a small CNN built with onnx.helper, the .tflite fixtures, the shipped profiles and
plans) and are mutated the way corrupt files and hostile users mutate them: bytes flipped and cut, dims,
attributes and dtypes replaced by extreme values, numbers by NaN / inf / 400-digit integers, aliases and
nesting added to YAML, array headers that lie.
"""

from __future__ import annotations

import copy
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
TFLITE_DIR = ROOT / "tests" / "data" / "tflite"
PLAN = "{root}/plans/int8-per-channel.yaml"  # {root}: the repository, wherever it is checked out

INTS = [0, 1, 2, 3, -1, -2, 7, 255, 256, 2**15, 2**31 - 1, 2**31, 2**32, 2**62, -(2**63), 10**5, 10**11]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e30, 1e300, -1e300, math.inf, -math.inf, math.nan, 3.5e38]
DTYPES = [v for k, v in TensorProto.DataType.items() if k != "UNDEFINED"] + [0, 99]


@dataclass
class Case:
    """Files to create (name -> bytes) and the argv to run with ``{d}`` replaced by their directory and
    ``{root}`` by the repository's."""

    kind: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # names edgesim may write: absent after a failure

    def resolved_argv(self, directory: Path) -> list[str]:
        return [a.replace("{d}", str(directory)).replace("{root}", str(ROOT)) for a in self.argv]

    def to_json(self) -> dict:
        return {"kind": self.kind, "argv": self.argv, "outputs": self.outputs}


def _pick(r, seq):
    return seq[r.randrange(len(seq))]


# -- ONNX ------------------------------------------------------------------------------------------------------


def base_onnx(integer_runnable: bool = False) -> onnx.ModelProto:
    """A small CNN touching the classes the hostile-input report named: folded shape chains (Shape, Gather,
    Concat -> Reshape), Expand / ConstantOfShape constants, LRN, Resize, Gemm, Softmax. ``integer_runnable``
    leaves out LRN and Resize, which the integer modes do not run."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    inits = {
        "w": rng.standard_normal((4, 1, 3, 3)).astype(f32),
        "b": rng.standard_normal(4).astype(f32),
        "scales": np.array([1, 1, 2, 2], f32),
        "roi": np.array([], f32),
        "zero": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "g": rng.standard_normal((64 if integer_runnable else 256, 10)).astype(f32),
        "gb": rng.standard_normal(10).astype(f32),
        "eshape": np.array([1, 10], np.int64),
        "one": np.array([1.0], f32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("LRN", ["r"], ["n"], size=3, alpha=1e-4, beta=0.75, bias=1.0, name="lrn"),
        helper.make_node("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Resize", ["p", "roi", "scales"], ["u"], mode="nearest", name="resize"),
        helper.make_node("Identity", ["p"], ["u"], name="identity"),
        helper.make_node("Shape", ["u"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["s0"], axis=0, name="gather"),
        helper.make_node("Concat", ["s0", "minus1"], ["target"], axis=0, name="concat"),
        helper.make_node("Reshape", ["u", "target"], ["flat"], name="reshape"),
        helper.make_node("Gemm", ["flat", "g", "gb"], ["logits"], name="gemm"),
        helper.make_node("Expand", ["one", "eshape"], ["ones"], name="expand"),
        helper.make_node("ConstantOfShape", ["eshape"], ["zeros"], value=helper.make_tensor("v", 1, [1], [0.0])),
        helper.make_node("Mul", ["ones", "zeros"], ["nothing"], name="mul"),
        helper.make_node("Add", ["logits", "ones"], ["shifted"], name="add"),
        helper.make_node("Add", ["shifted", "nothing"], ["shifted2"], name="add2"),
        helper.make_node("Softmax", ["shifted2"], ["y"], axis=1, name="softmax"),
    ]
    if integer_runnable:
        nodes = [n for n in nodes if n.op_type not in ("LRN", "Resize")]
        nodes[1].output[0] = "n"
    else:
        nodes = [n for n in nodes if n.op_type != "Identity"]
    graph = helper.make_graph(
        nodes,
        "fuzz-cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


_OPS = ["Conv", "Relu", "LRN", "Resize", "Expand", "Tile", "Range", "Gemm", "Softmax", "Reshape", "Concat",
        "MaxPool", "Celu", "ConstantOfShape", "Gather", "Slice", "Pad", "Transpose", "Split", ""]  # fmt: skip


def _mutate_structure(r, model: onnx.ModelProto, extra: dict[str, bytes]) -> None:
    g = model.graph
    choice = r.randrange(12)
    if choice == 0:  # input dims
        dims = g.input[0].type.tensor_type.shape.dim
        for d in dims:
            if r.random() < 0.5:
                d.dim_value = _pick(r, [1, 2, 8, 100000, 2**31, 0]) if r.random() < 0.9 else 1
        if r.random() < 0.2:
            dims[r.randrange(len(dims))].dim_param = "batch"
    elif choice == 1:  # an int attribute
        node = _pick(r, g.node)
        ints = [a for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
        if ints:
            a = _pick(r, ints)
            if a.type == onnx.AttributeProto.INT:
                a.i = _pick(r, INTS[:-1])
            else:
                a.ints[:] = [_pick(r, INTS[:-1]) for _ in range(r.randrange(0, 6))]
    elif choice == 2:  # a float attribute or a float constant
        node = _pick(r, g.node)
        floats = [a for a in node.attribute if a.type == onnx.AttributeProto.FLOAT]
        if floats:
            _pick(r, floats).f = _pick(r, FLOATS)
        else:
            t = _pick(r, [t for t in g.initializer if t.data_type == TensorProto.FLOAT])
            arr = numpy_helper.to_array(t).copy()
            if arr.size:
                arr.reshape(-1)[r.randrange(arr.size)] = _pick(r, FLOATS)
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), t.name))
    elif choice == 3:  # an integer constant (shapes, indices, repeats, range bounds)
        t = _pick(r, [t for t in g.initializer if t.data_type == TensorProto.INT64])
        arr = numpy_helper.to_array(t).copy()
        if arr.size:
            arr.reshape(-1)[r.randrange(arr.size)] = _pick(r, [v for v in INTS if -(2**63) <= v < 2**63])
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
    elif choice == 4:  # an initializer's dtype or dims lie about its data
        t = _pick(r, g.initializer)
        if r.random() < 0.5:
            t.data_type = _pick(r, DTYPES)
        else:
            t.dims[:] = [_pick(r, [0, 1, 2, 3, 4, 10, 100000, 2**40]) for _ in range(r.randrange(0, 5))]
    elif choice == 5:  # external data with hostile fields
        t = _pick(r, g.initializer)
        raw = numpy_helper.to_array(t).tobytes()
        t.ClearField("raw_data")
        for name in ("float_data", "int64_data", "int32_data"):
            t.ClearField(name)
        t.data_location = TensorProto.EXTERNAL
        location = _pick(r, ["w.bin", "../w.bin", "/etc/passwd", "w\0.bin", "", "missing.bin", ".", "sub/../w.bin"])
        entries = {"location": location}
        if r.random() < 0.7:
            entries["offset"] = str(_pick(r, [0, 1, -1, 10**30, len(raw), "x", "1e3", " 1"]))
        if r.random() < 0.7:
            entries["length"] = str(_pick(r, [len(raw), 0, -5, 10**12, "abc", len(raw) + 1]))
        for k, v in entries.items():
            e = t.external_data.add()
            e.key, e.value = k, v
        extra["w.bin"] = raw if r.random() < 0.8 else raw[: len(raw) // 2]
    elif choice == 6:  # op type
        _pick(r, g.node).op_type = _pick(r, _OPS)
    elif choice == 7:  # a node disappears (its output is then computed by nobody)
        del g.node[r.randrange(len(g.node))]
    elif choice == 8:  # wiring
        node = _pick(r, g.node)
        if node.input:
            node.input[r.randrange(len(node.input))] = _pick(r, ["", "undefined", "y", "x", "w"])
    elif choice == 9:  # graph outputs
        o = g.output.add()
        o.CopyFrom(helper.make_tensor_value_info(_pick(r, ["ghost", "c", "x"]), _pick(r, [1, 8, 10]), None))
    elif choice == 10:  # opset / ir version
        model.opset_import[0].version = _pick(r, [1, 6, 9, 11, 13, 17, 21, 30, 0])
        if r.random() < 0.3:
            model.ir_version = _pick(r, [0, 3, 7, 99])
    else:  # input element type: strings, float16, ints
        g.input[0].type.tensor_type.elem_type = _pick(r, DTYPES)


def _mutate_bytes(r, data: bytes) -> bytes:
    b = bytearray(data)
    choice = r.randrange(4)
    if choice == 0:  # truncate (a download cut short)
        return bytes(b[: int(len(b) * r.choice([0.0, 0.1, 0.5, 0.9, 0.99]))])
    for _ in range(r.randrange(1, 8)):
        if not b:
            break
        i = r.randrange(len(b))
        if choice == 1:
            b[i] = r.randrange(256)
        elif choice == 2:
            del b[i : i + r.randrange(1, 16)]
        else:
            b[i:i] = bytes(r.randrange(256) for _ in range(r.randrange(1, 16)))
    return bytes(b)


def _input_npy(shape=(1, 1, 8, 8)) -> bytes:
    return _npy(np.random.default_rng(1).standard_normal(shape).astype(np.float32))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _model_command(r, model: str, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """A command over a model file: inspect, estimate (with or without a plan), compare, run, verify."""
    plan = PLAN
    choice = r.randrange(7)
    if choice == 0:
        return ["inspect", model, "--format", _pick(r, ["table", "json", "csv"]), "-o", "{d}/out.txt"], ["out.txt"]
    if choice == 1:
        return ["estimate", model, "--hw", "cortex-m4", "--precision", "int8", "-o", "{d}/out.txt"], ["out.txt"]
    if choice == 2:
        return ["estimate", model, "--hw", "cortex-m7", "--plan", plan, "-o", "{d}/out.txt"], ["out.txt"]
    if choice == 3:
        return ["compare", model, "--hw", "cortex-m4", "--plan", plan, "--samples", "1", "-o", "{d}/o.txt"], ["o.txt"]
    if choice == 4:
        files.setdefault("x.npy", _input_npy())
        return ["run", model, "--plan", plan, "--input", "{d}/x.npy", "-o", "{d}/y.npy"], ["y.npy"]
    if choice == 5:
        files.setdefault("x.npy", _input_npy())
        mode = ["run", model, "--plan", plan, "--input", "{d}/x.npy", "--mode", "ort", "-o", "{d}/y.npy"]
        return mode, ["y.npy"]
    return ["verify", model, "--plan", plan, "--samples", "1", "-o", "{d}/v.txt"], ["v.txt"]


def onnx_case(r) -> Case:
    files: dict[str, bytes] = {}
    argv, outputs = _model_command(r, "{d}/model.onnx", files)
    model = base_onnx(integer_runnable=argv[0] in ("run", "verify"))
    for _ in range(r.randrange(1, 4)):
        try:
            with np.errstate(all="ignore"):
                _mutate_structure(r, model, files)
        except Exception:  # noqa: BLE001
            pass  # an earlier mutation made this one impossible (e.g. an initializer already external)
    try:
        data = model.SerializeToString()
    except Exception:  # a mutation protobuf itself refuses to encode (e.g. invalid UTF-8): mutate bytes only
        data = base_onnx().SerializeToString()
    if r.random() < 0.3:
        data = _mutate_bytes(r, data)
    files["model.onnx"] = data
    return Case("onnx", argv, files, outputs)


# -- TFLite ----------------------------------------------------------------------------------------------------

_TFLITE = ["conv.tflite", "dense.tflite", "cnn.tflite", "add.tflite", "softmax.tflite", "a16w8_conv.tflite",
           "w4_conv.tflite", "pad.tflite", "mean_global.tflite", "float_io_cnn.tflite"]  # fmt: skip


def tflite_case(r) -> Case:
    name = _pick(r, _TFLITE)
    data = bytearray((TFLITE_DIR / name).read_bytes())
    if r.random() < 0.5:
        data = bytearray(_mutate_bytes(r, bytes(data)))
    else:  # overwrite aligned 32-bit words: offsets, lengths, dims and enum values of the flatbuffer
        for _ in range(r.randrange(1, 6)):
            i = r.randrange(0, max(1, len(data) - 4)) & ~3
            data[i : i + 4] = int(_pick(r, INTS) % 2**32).to_bytes(4, "little")
    files = {"model.tflite": bytes(data)}
    with np.load(TFLITE_DIR / name.replace(".tflite", "_input.npz")) as inputs:
        files["x.npy"] = _npy(inputs[inputs.files[0]])
    choice = r.randrange(3)
    if choice == 0:
        argv, outputs = ["inspect", "{d}/model.tflite", "-o", "{d}/out.txt"], ["out.txt"]
    elif choice == 1:
        argv, outputs = ["estimate", "{d}/model.tflite", "--hw", "cortex-m4", "-o", "{d}/out.txt"], ["out.txt"]
    else:
        mode = _pick(r, ["tflm", "ort"])
        argv = ["run", "{d}/model.tflite", "--input", "{d}/x.npy", "--mode", mode, "-o", "{d}/y.npy"]
        outputs = ["y.npy"]
    return Case("tflite", argv, files, outputs)


# -- YAML (profiles, plans, specs) -----------------------------------------------------------------------------

_HOSTILE_VALUES = [math.nan, math.inf, -math.inf, 10**400, -1, 0, 1e-300, 1e300, "", "x", [], {}, None, True,
                   [1, [2, [3]]], 2**64]  # fmt: skip


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    yield path


def _set(doc, path, value):
    if not path:
        return value
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def _yaml_text(r, doc) -> str:
    """The document as YAML, sometimes with a hostile construct spliced in under a real field."""
    text = yaml.safe_dump(doc, sort_keys=False, width=10**6)
    choice = r.randrange(8)
    if choice == 0:  # alias bomb under a real key
        bomb = "bomb0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"bomb{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
        )
        key = _pick(r, ["sources", "chip", "clock_hz", "passes", "name", "layers"])
        return bomb + text.replace(f"{key}:", f"{key}: *a8\nignored_{key}:", 1)
    if choice == 1:  # deep nesting
        depth = _pick(r, [70, 500, 5000])
        return text + "deep: " + "[" * depth + "]" * depth + "\n"
    if choice == 2:  # python tags the safe loader must refuse
        return text + "evil: !!python/object/apply:os.system ['true']\n"
    if choice == 3:  # recursive alias
        return text + "loop: &l [*l]\n"
    if choice == 4:
        return _mutate_bytes(r, text.encode()).decode("utf-8", "replace")
    return text


def _mutated_doc(r, doc):
    for _ in range(r.randrange(1, 4)):
        paths = list(_leaves(doc))
        path = _pick(r, paths)
        if path and r.random() < 0.15:  # drop a field
            parent = doc
            for p in path[:-1]:
                parent = parent[p]
            del parent[path[-1]]
        else:
            doc = _set(doc, path, copy.deepcopy(_pick(r, _HOSTILE_VALUES)))
    return doc


def profile_case(r) -> Case:
    source = _pick(r, sorted((ROOT / "hwprofiles").glob("*.yaml")))
    doc = yaml.safe_load(source.read_text())
    if r.random() < 0.9:
        doc = _mutated_doc(r, doc)
    files = {"hw.yaml": _yaml_text(r, doc).encode("utf-8", "replace")}
    if r.random() < 0.5:
        return Case("profile", ["hw", "validate", "{d}/hw.yaml"], files)
    argv = ["estimate", "lenet-5", "--hw", "{d}/hw.yaml", "--precision", "int8", "-o", "{d}/out.txt"]
    return Case("profile", argv, files, ["out.txt"])


def plan_case(r) -> Case:
    source = _pick(r, sorted((ROOT / "plans").glob("*.yaml")))
    doc = yaml.safe_load(source.read_text())
    if r.random() < 0.9:
        doc = _mutated_doc(r, doc)
    files = {"plan.yaml": _yaml_text(r, doc).encode("utf-8", "replace")}
    model = _pick(r, ["lenet-5", "digits-mlp", "digits-cnn"])
    argv = ["estimate", model, "--hw", "cortex-m4", "--plan", "{d}/plan.yaml", "-o", "{d}/out.txt"]
    return Case("plan", argv, files, ["out.txt"])


def spec_case(r) -> Case:
    source = _pick(r, [ROOT / "models" / n for n in ("lenet-5.yaml", "ds-cnn.yaml", "cmsis-cifar10.yaml")])
    doc = yaml.safe_load(source.read_text())
    doc.pop("weights", None)
    doc.pop("dataset", None)
    if r.random() < 0.9:
        doc = _mutated_doc(r, doc)
    files = {"model.yaml": _yaml_text(r, doc).encode("utf-8", "replace")}
    argv, outputs = _model_command(r, "{d}/model.yaml", {})
    if "run" in argv or "verify" in argv or "compare" in argv:  # specs with their own input shapes
        argv, outputs = ["inspect", "{d}/model.yaml", "-o", "{d}/out.txt"], ["out.txt"]
    return Case("spec", argv, files, outputs)


# -- arrays ----------------------------------------------------------------------------------------------------


def _npy_with_header(shape, descr: str, payload: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def array_case(r) -> Case:
    shape = (1, 1, 8, 8)
    choice = r.randrange(8)
    if choice == 0:  # a header that claims far more than the file holds
        data = _npy_with_header(_pick(r, [(10**10,), (1, 3, 100000, 100000), (2**62, 4), (-1, 8)]), "<f4", b"\0" * 64)
    elif choice == 1:  # non-numeric dtypes
        data = _npy_with_header((2,), _pick(r, ["|O", "<U3", "|S4", "<c8", "[('a', '<f4')]", "bogus"]), b"\0" * 32)
    elif choice == 2:
        data = _npy(np.full(shape, _pick(r, FLOATS), np.float64))
    elif choice == 3:
        n = _pick(r, [0, 1, 3])
        data = _npy(np.zeros((n, *shape[1:]), _pick(r, [np.float32, np.int8, np.int64, np.bool_, np.float16])))
    elif choice == 4:
        data = _mutate_bytes(r, _input_npy())
    elif choice == 5:  # an .npz (zip) that is corrupt or holds odd arrays
        buffer = io.BytesIO()
        np.savez(buffer, **{_pick(r, ["x", "input", "data"]): np.ones(shape, np.float32)})
        data = _mutate_bytes(r, buffer.getvalue()) if r.random() < 0.5 else buffer.getvalue()
    elif choice == 6:
        data = _npy(np.ones(_pick(r, [(8, 8), (1, 8, 8, 1), (), (1, 1, 8, 8, 1)]), np.float32))
    else:
        data = _npy(np.array(["a", "b"]))
    files = {"x.npy": data}
    plan = PLAN
    which = r.randrange(4)
    if which == 0:
        argv = ["run", "digits-cnn", "--plan", plan, "--input", "{d}/x.npy", "--mode", _pick(r, ["tflm", "ort"])]
        return Case("array", [*argv, "-o", "{d}/y.npy"], files, ["y.npy"])
    if which == 1:
        return Case("array", ["estimate", "digits-cnn", "--hw", "cortex-m4", "--plan", plan, "--calib", "{d}/x.npy"],
                    files)  # fmt: skip
    if which == 2:
        return Case("array", ["verify", "digits-cnn", "--plan", plan, "--data", "{d}/x.npy"], files)
    return Case("array", ["compare", "digits-cnn", "--hw", "cortex-m4", "--plan", plan, "--calib", "{d}/x.npy",
                          "--samples", "1"], files)  # fmt: skip


# -- flags -----------------------------------------------------------------------------------------------------

_PATHS = ["/dev/zero", "/dev/urandom", "/dev/null", "{d}", "{d}/missing.onnx", "{d}/nodir/x", "", "-", "\0",
          "a" * 5000, "{d}/plain.txt", "lenet-5", "cortex-m4", "../../etc/passwd"]  # fmt: skip
_NUMBERS = ["0", "-1", "1", "nan", "inf", "1e308", "9" * 400, "0x10", "", "1.5", "2147483648"]
_FLAGS = {
    "--hw": ["cortex-m4", "cortex-m4:nope", "nope", "{d}/plain.txt", "/dev/zero", "cortex-m7:", ":"],
    "--precision": ["int8", "fp16", "int3", ""],
    "--plan": ["plans/int8-per-channel.yaml", "{d}/plain.txt", "/dev/zero", "{d}"],
    "--calib": ["{d}/plain.txt", "/dev/urandom", "{d}"],
    "--samples": _NUMBERS,
    "--budget": ["latency_ms=" + n for n in _NUMBERS] + ["flash_bytes=" + "9" * 400, "x=1", "=", ",", "ram=1K"],
    "--input-shape": ["input=1,3,32,32", "input=0", "input=1,3,100000,100000", "x=", "=1", "input=-1,2"],
    "--format": ["table", "json", "csv", "xml"],
    "--input": ["{d}/plain.txt", "/dev/zero", "{d}"],
    "--mode": ["tflm", "ort", "gpu"],
    "--data": ["{d}/plain.txt", "{d}"],
    "-o": ["{d}/out.txt", "/dev/null", "{d}", "{d}/nodir/out.txt", "-"],
    "--dump": ["{d}", "{d}/nodir", "/dev/null"],
    "--max-elements": _NUMBERS,
    "--plot": ["{d}/p.png", "{d}/p.xyz", "{d}"],
}
_COMMANDS = ["inspect", "estimate", "compare", "report", "run", "verify", "compress", "validate", "models", "hw",
             "nope", "--version", "--help"]  # fmt: skip


def flags_case(r) -> Case:
    argv: list[str] = []
    if r.random() < 0.2:
        argv += ["--max-elements", _pick(r, _NUMBERS)]
    command = _pick(r, _COMMANDS)
    argv.append(command)
    if command in ("models", "hw"):
        argv.append(_pick(r, ["list", "show", "validate", "nope"]))
    if r.random() < 0.8:
        argv.append(_pick(r, ["lenet-5", "digits-mlp", *_PATHS]))
    for _ in range(r.randrange(0, 5)):
        flag = _pick(r, list(_FLAGS))
        argv += [flag, _pick(r, _FLAGS[flag])]
    files = {"plain.txt": b"not a model\n"}
    return Case("flags", [a if a != "plans/int8-per-channel.yaml" else PLAN for a in argv], files,
                ["out.txt", "p.png", "p.xyz"])  # fmt: skip


GENERATORS = {
    "onnx": onnx_case,
    "tflite": tflite_case,
    "profile": profile_case,
    "plan": plan_case,
    "spec": spec_case,
    "array": array_case,
    "flags": flags_case,
}


def write_case(case: Case, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        (directory / name).write_bytes(data)
    (directory / "case.json").write_text(json.dumps(case.to_json(), indent=1) + "\n")


def read_case(directory: Path) -> Case:
    meta = json.loads((directory / "case.json").read_text())
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "case.json"}
    return Case(meta["kind"], meta["argv"], files, meta["outputs"])
