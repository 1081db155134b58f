"""Model importers. :func:`load_model` picks one from the model reference: a zoo name or a file path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import EdgesimError
from simulator.graph import Graph, Shape

SUFFIXES = (".onnx", ".yaml", ".yml", ".tflite")


def load_model(
    ref: str,
    input_shapes: dict[str, Shape] | None = None,
    *,
    allow_unknown: bool = False,
    input_values: dict[str, np.ndarray] | None = None,
    onnxruntime_ops: bool = False,
) -> Graph:
    """A shape-inferred op graph for ``ref`` (a zoo name, or a .onnx / .yaml / .tflite path).

    ``input_values`` fixes ONNX inputs to constants (see onnx_import.onnx_to_graph). With ``onnxruntime_ops``
    an ONNX file may also use onnxruntime's com.microsoft quantized ops (a QOperator model, for the ``ort``
    executor; :func:`simulator.importers.qoperator.load_quantized_onnx`). Errors name the file they come from.
    """
    from simulator.importers.yamlspec import load_spec
    from simulator.importers.zoo import zoo_names, zoo_path

    path = Path(ref)
    # zoo names may contain dots (mobilenet-v1-0.25-vww), so only a model-file suffix rules the zoo out
    zoo = zoo_path(ref) if "/" not in ref and path.suffix.lower() not in SUFFIXES else None
    if zoo is not None:
        path = zoo
    elif not path.exists():
        raise EdgesimError(
            f"{ref}: no such file or zoo model; zoo models are {', '.join(zoo_names())} (see `edgesim models list`)"
        )
    elif path.is_dir():
        raise EdgesimError(f"{ref}: is a directory; give a model file ({', '.join(SUFFIXES)}) or a zoo name")
    suffix = path.suffix.lower()
    try:
        if suffix == ".onnx" and onnxruntime_ops:
            from simulator.importers.qoperator import load_quantized_onnx

            return load_quantized_onnx(path, input_shapes)
        if suffix == ".onnx":
            # onnx costs ~0.8 s to import (its ml_dtypes extension): only ONNX models pay it
            from simulator.importers.onnx_import import load_onnx

            return load_onnx(path, input_shapes, allow_unknown=allow_unknown, input_values=input_values)
        if suffix in (".yaml", ".yml"):
            if input_shapes or input_values:
                raise EdgesimError("--input-shape / --input-value apply to ONNX models; a YAML spec sets its inputs")
            return load_spec(path)
        if suffix == ".tflite":
            from simulator.importers.tflite_import import load_tflite

            if input_shapes or input_values:
                raise EdgesimError("--input-shape / --input-value apply to ONNX models; a .tflite fixes its inputs")
            return load_tflite(path)
    except EdgesimError as exc:
        raise EdgesimError(f"{ref}: {exc}") from None
    except OSError as exc:
        raise EdgesimError(f"{ref}: cannot read it ({exc.strerror or exc})") from None
    raise EdgesimError(
        f"{ref}: unsupported model format {suffix or '(no suffix)'!r}; edgesim reads {', '.join(SUFFIXES)}"
    )
