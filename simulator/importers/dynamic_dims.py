"""The hint for an ONNX input with dynamic dimensions: name every symbolic dimension and suggest a binding that
keeps the model's meaning. A 1 in every dynamic position is a valid shape but a different model (PP-OCR's
detector at 1x1 pixels reports 4 M MACs instead of 2.3 G), so a number is suggested only where it is known:
batch 1 (one inference, as an edge device runs) and the image size the model was exported for when its
metadata or its file name says it; every other dimension is left as its name for the user to fill in."""

from __future__ import annotations

import ast
import re

import onnx

#: metadata keys exporters use for the input image size (ultralytics: imgsz, timm/others: input_size, ...)
_SIZE_KEY = re.compile(r"^(img_?sz|image_?size|img_?size|input_?size|input_?shape|resolution)$", re.IGNORECASE)
#: a size in a file name: 640x640, or one number of 96-4096 after a separator (mobilenet_v2_224, yolov8n-640)
_NAME_PAIR = re.compile(r"(?<!\d)(\d{2,4})x(\d{2,4})(?!\d)")
_NAME_ONE = re.compile(r"(?:^|[_\-.])(\d{2,4})(?=$|[_\-.])")


def _ints(text: str) -> list[int]:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return [int(v) for v in re.findall(r"\d+", text)]
    if isinstance(value, int):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
        return list(value)
    return []


def exported_image_size(model: onnx.ModelProto, file_stem: str) -> tuple[int, int] | None:
    """(height, width) the model says it was exported for, from its metadata or its file name, else None."""
    for prop in model.metadata_props:
        if _SIZE_KEY.match(prop.key):
            sizes = [v for v in _ints(prop.value) if v >= 8]
            if sizes:
                return (sizes[-2], sizes[-1]) if len(sizes) >= 2 else (sizes[0], sizes[0])
    pair = _NAME_PAIR.search(file_stem)
    if pair:
        return int(pair.group(1)), int(pair.group(2))
    one = [int(m) for m in _NAME_ONE.findall(file_stem) if 96 <= int(m) <= 4096]
    return (one[-1], one[-1]) if one else None


def _spatial_positions(dims: list[int | None]) -> tuple[int, int] | None:
    """Positions of height and width in a rank-4 image input: NCHW when dim 1 is a channel count (1, 3, 4),
    NHWC when the last one is."""
    if len(dims) != 4:
        return None
    if dims[1] in (1, 3, 4):
        return 2, 3
    if dims[3] in (1, 3, 4):
        return 1, 2
    return None


#: symbolic names of a batch dimension (or no real name at all, as exporters leave dim 0)
_BATCH_NAME = re.compile(r"^(|\?|n|b|bs|batch.*|.*_batch.*|.*dynamicdimension\.0|unk__\d+|dim0)$", re.IGNORECASE)


def binding_hint(model: onnx.ModelProto, file_stem: str, unbound: list[onnx.ValueInfoProto]) -> str:
    """One line naming each unbound dynamic input's symbolic dims and an --input-shape example per input."""
    size = exported_image_size(model, file_stem)
    parsed = []
    batch_names = set()
    for vi in unbound:
        declared = list(vi.type.tensor_type.shape.dim)
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in declared]
        params = [d.dim_param for d in declared]
        if len(dims) > 1 and dims[0] is None and _BATCH_NAME.match(params[0]):
            batch_names.add(params[0])
        parsed.append((vi.name, dims, params))
    batch_names.discard("")
    parts, examples, open_names, batch_used = [], [], [], False
    for name, dims, params in parsed:
        spatial = _spatial_positions(dims)
        names = [_dim_name(p, i, spatial) for i, p in enumerate(params)]
        dynamic = [i for i, d in enumerate(dims) if d is None]
        parts.append(f"input {name!r} has dynamic dims " + ", ".join(f"{i} ({names[i]})" for i in dynamic))
        example = []
        for i, d in enumerate(dims):
            if d is not None:
                example.append(str(d))
            elif (i == 0 and len(dims) > 1 and _BATCH_NAME.match(params[0])) or params[i] in batch_names:
                example.append("1")
                batch_used = True
            elif size is not None and spatial is not None and i in spatial:
                example.append(str(size[spatial.index(i)]))
            else:
                example.append(f"<{names[i]}>")
                open_names.append(names[i])
        examples.append(f"--input-shape {name}={','.join(example)}")
    notes = ["batch 1"] if batch_used else []
    if size is not None and not open_names:
        notes.append(f"the {size[0]}x{size[1]} image size the model was exported for")
    if open_names:
        notes.append("for each <name> the size the model runs at, e.g. the one it was trained at")
    notes_text = f" ({'; '.join(notes)})" if notes else ""
    return f"{'; '.join(parts)}; bind them with {' '.join(examples)}{notes_text}"


def _dim_name(param: str, position: int, spatial: tuple[int, int] | None) -> str:
    """The symbolic name of a dimension; an anonymous one ('' or '?') named by its role where known."""
    if param and param != "?":
        return param
    if spatial is not None and position in spatial:
        return ("height", "width")[spatial.index(position)]
    return "batch" if position == 0 else f"dim{position}"
