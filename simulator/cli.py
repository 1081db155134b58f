"""The `edgesim` command line. Bad input ends in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from simulator import __version__
from simulator.errors import EdgesimError
from simulator.graph import Shape
from simulator.limits import set_max_elements

if TYPE_CHECKING:
    import numpy as np

EXAMPLES = """examples:
  edgesim models list
  edgesim inspect resnet-8
  edgesim inspect model.onnx --input-shape input=1,3,224,224 --format json -o counts.json
  edgesim estimate resnet-8 --hw cortex-m7 --precision int8
  edgesim estimate resnet-8 --hw cortex-m7 --precision int8 --budget latency_ms=50,peak_ram_bytes=320K
  edgesim report resnet-8 --hw cortex-m7 --precision int8 -o report.pdf
  edgesim compare digits-mlp --hw cortex-m4 --plan plans/int8-per-channel.yaml --plan plans/deep-compression.yaml
  edgesim run digits-cnn --plan plans/int8-per-channel.yaml --input x.npy --mode tflm
  edgesim hw list
  edgesim validate
  edgesim calibrate --hw cortex-m7:cmsis-nn --measurements my-latencies.csv -o my-board.yaml
"""

PRECISIONS = ("int8", "int16", "fp16", "fp32")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (through EdgesimError) instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        raise EdgesimError(f"{message} (see {self.prog} --help)")


def parse_input_shape(text: str) -> tuple[str, Shape]:
    name, sep, dims = text.rpartition("=")
    name = name.strip()
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 1 or max(shape) > 2**31 - 1:
        raise EdgesimError(
            f"--input-shape {text!r}: expected NAME=D0,D1,... with positive integers, e.g. input=1,3,224,224"
        )
    return name, shape


def _input_shapes(items: Sequence[str] | None) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for item in items or []:
        name, shape = parse_input_shape(item)
        if name in shapes:
            raise EdgesimError(f"--input-shape binds {name!r} twice")
        shapes[name] = shape
    return shapes


def parse_input_value(text: str) -> tuple[str, np.ndarray]:
    import numpy as np

    name, sep, values = text.rpartition("=")
    try:
        array = np.array([float(v) if any(c in v for c in ".eE") else int(v) for v in values.split(",")])
    except ValueError:
        array = None
    if not sep or not name or array is None:
        raise EdgesimError(f"--input-value {text!r}: expected NAME=V0,V1,... with numbers, e.g. sr=16000")
    return name, array.reshape(()) if array.size == 1 else array


def _model_options(args: argparse.Namespace) -> dict:
    """The import options every model-reading command shares (--input-shape, --input-value, --allow-unknown)."""
    values: dict[str, np.ndarray] = {}
    for item in getattr(args, "input_value", None) or []:
        name, array = parse_input_value(item)
        if name in values:
            raise EdgesimError(f"--input-value binds {name!r} twice")
        values[name] = array
    return {
        "input_shapes": _input_shapes(args.input_shape),
        "allow_unknown": args.allow_unknown,
        **({"input_values": values} if values else {}),
    }


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a zoo model name (see `edgesim models list`) or a .onnx / .tflite / .yaml file")
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=D0,D1,...",
        help="bind an ONNX input's shape, e.g. input=1,3,224,224 (repeatable)",
    )
    parser.add_argument(
        "--input-value",
        action="append",
        metavar="NAME=V0,V1,...",
        help="fix an ONNX input's value, so control flow over it folds at import, e.g. sr=16000 (repeatable)",
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="accept ops edgesim does not model, counted as zero cost (listed as warnings)",
    )


def _add_budget_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget",
        action="append",
        metavar="METRIC=LIMIT,...",
        help="limits to gate on: latency_ms, energy_uj, flash_bytes, peak_ram_bytes (sizes take K/M/G, "
        "1024-based), e.g. latency_ms=50,flash_bytes=1M,peak_ram_bytes=320K; exit status 1 when exceeded",
    )


def _over_budget(line: str) -> int:
    """Report what exceeds the budget on one line; the exit status a CI job gates on."""
    if not line:
        return 0
    print(f"edgesim: budget exceeded: {line}", file=sys.stderr)
    return 1


def _budget_text(budget, results: dict[str, list]) -> str:
    """Human lines after a table: each limit, and each checked result's verdict."""
    limits = ", ".join(f"{m} <= {budget.given[m]}" for m in budget.limits)
    verdicts = "; ".join(
        f"{name}: " + (", ".join(b.text(budget.given[b.metric]) for b in items) if items else "ok")
        for name, items in results.items()
    )
    return f"budget ({limits}): {verdicts}\n"


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def cmd_inspect(args: argparse.Namespace) -> int:
    from simulator.importers import load_model
    from simulator.output import write_text
    from simulator.report_text import render_counts
    from simulator.summary import count

    graph = load_model(args.model, **_model_options(args))
    counts = count(graph)
    write_text(render_counts(counts, args.format), args.output)
    for warning in counts.warnings:
        print(f"edgesim: warning: {warning}", file=sys.stderr)
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from simulator.budget import parse_budget
    from simulator.deployment import FROM_PTQ, check_precision, deploy
    from simulator.estimate import estimate
    from simulator.hardware import load_hardware
    from simulator.importers import load_model
    from simulator.output import to_json, write_text
    from simulator.plan import apply_plan, load_calibration, load_plan
    from simulator.report_text import estimate_dict, render_estimate

    budget = parse_budget(args.budget)
    hw = load_hardware(args.hw)
    if args.precision:
        check_precision(hw, args.precision)
    graph = load_model(args.model, **_model_options(args))
    calibration = load_calibration(args.calib, graph) if args.calib else None
    plan = None
    if args.plan:
        if args.precision:
            raise EdgesimError("give --plan or --precision, not both: a plan sets each layer's precision")
        plan = load_plan(args.plan)
        try:
            graph = apply_plan(graph, plan, calibration)
        except EdgesimError as exc:
            raise EdgesimError(f"{args.plan}: {exc}") from None
    deployed = deploy(graph, hw, precision=args.precision, from_plan=plan is not None, calibration=calibration)
    if args.calib and plan is None and deployed.precision_source != FROM_PTQ:
        raise EdgesimError(
            f"--calib {args.calib}: {hw.label} runs this model as given, so nothing is calibrated; "
            "--calib calibrates a plan's quantization (give --plan too)"
        )
    est = estimate(
        deployed.graph,
        hw,
        precision=deployed.precision,
        plan=plan.name if plan else None,
        precision_source=deployed.precision_source,
        notes=[deployed.note] if deployed.note else [],
    )
    breaches = budget.check(est.totals(), est.model) if budget else []
    if budget is not None and args.format == "json":
        text = to_json(estimate_dict(est) | {"budget": budget.as_dict(breaches)})
    else:
        text = render_estimate(est, args.format)
        if budget is not None and args.format == "table":
            text += _budget_text(budget, {est.model: breaches})
    write_text(text, args.output)
    for warning in est.warnings:
        print(f"edgesim: warning: {warning}", file=sys.stderr)
    return _over_budget(budget.summary_line(breaches) if budget else "")


def cmd_hw_list(args: argparse.Namespace) -> int:
    from simulator.hardware import load_hardware, profile_names
    from simulator.output import table, terminal_width, to_csv, to_json, write_text

    profiles = [load_hardware(name) for name in profile_names()]
    rows = [[h.name, h.chip, f"{h.clock_hz / 1e6:g}", ", ".join(h.stacks), h.default_stack] for h in profiles]
    headers = ["name", "chip", "MHz", "stacks", "default"]
    if args.format == "json":
        text = to_json([dict(zip(headers, row, strict=True)) for row in rows])
    elif args.format == "csv":
        text = to_csv(headers, rows)
    else:
        text = table(headers, rows, max_width=terminal_width(args.output), wrap=(1, 3))
    write_text(text, args.output)
    return 0


def cmd_hw_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from simulator.hardware import load_hardware, read_profile
    from simulator.output import write_text

    hw = load_hardware(args.profile)
    data = read_profile(Path(hw.path))
    write_text(yaml.safe_dump(data, sort_keys=False, width=110), args.output)
    return 0


def cmd_hw_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.hardware import read_profile

    for name in args.files:
        data = read_profile(Path(name))
        print(f"{name}: valid profile {data['name']!r} (stacks: {', '.join(data['stacks'])})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.output import table, to_csv, to_json, write_text
    from simulator.validate import compare

    results = compare(Path(args.data) if args.data else None, args.hw)
    headers = [
        "id",
        "model",
        "hardware",
        "precision",
        "metric",
        "measured",
        "predicted",
        "error %",
        "tolerance %",
        "ok",
    ]
    rows = [
        [r.id, r.model, r.hardware, r.precision, r.metric, f"{r.measured:g}", f"{r.predicted:.4g}",
         f"{r.error_pct:+.1f}", f"{r.tolerance_pct:g}", "yes" if r.within else "NO"]
        for r in results
    ]  # fmt: skip
    if args.format == "json":
        text = to_json(
            [dict(zip(headers, row, strict=True)) | {"source": r.source} for row, r in zip(rows, results, strict=True)]
        )
    elif args.format == "csv":
        text = to_csv(headers, rows)
    else:
        inside = sum(r.within for r in results)
        mean_abs = sum(abs(r.error_pct) for r in results) / len(results)
        text = table(headers, rows) + f"\n{inside} of {len(results)} within tolerance; mean |error| {mean_abs:.1f}%\n"
    write_text(text, args.output)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from simulator.calibrate.run import calibrate, render
    from simulator.output import write_text
    from simulator.yamlio import dump_yaml

    free = [p.strip() for item in args.free or [] for p in item.split(",") if p.strip()] or None
    cal = calibrate(
        args.hw, args.measurements, free=free, precision=args.precision, ticks_per_second=args.ticks_per_second
    )
    write_text(dump_yaml(cal.written), args.output)
    sys.stdout.write(render(cal) + f"wrote {args.output}\n")
    return 0


def _checked_rows(rows: list, plans: list) -> list:
    """The rows a budget holds: each plan's; the uncompressed baseline only when no plan is given."""
    return rows[1:] if plans else rows


def _row_totals(row) -> dict:
    return {
        "latency_ms": row.latency_ms,
        "energy_uj": row.energy_uj,
        "flash_bytes": row.flash_bytes,
        "peak_ram_bytes": row.peak_ram_bytes,
    }


def cmd_compare(args: argparse.Namespace) -> int:
    from simulator.budget import parse_budget
    from simulator.compare import compare_plans, plot_pareto
    from simulator.hardware import load_hardware
    from simulator.importers import load_model
    from simulator.output import table, to_csv, to_json, write_text
    from simulator.plan import load_calibration, load_plan
    from simulator.progress import progress_bar

    budget = parse_budget(args.budget)
    hw = load_hardware(args.hw)
    plans = [load_plan(p) for p in args.plan or []]
    graph = load_model(args.model, **_model_options(args))
    calibration = load_calibration(args.calib, graph) if args.calib else None
    if args.samples is not None and args.samples < 1:
        raise EdgesimError(f"--samples {args.samples}: give a positive number of samples")
    with progress_bar(len(plans) + 1, "compare", unit="plan") as bar:
        rows = compare_plans(graph, hw, plans, calibration, args.samples, progress=lambda: bar.update(1))
    results = {r.plan: budget.check(_row_totals(r), r.plan) for r in _checked_rows(rows, plans)} if budget else {}
    if args.format == "json":
        data = {"model": graph.name, "hardware": hw.label, "plans": [r.as_dict() for r in rows]}
        if budget is not None:
            data["budget"] = budget.as_dict(results)
        text = to_json(data)
    else:
        headers = ["plan", "params", "sparsity", "flash B", "ratio", "latency ms", "energy uJ", "peak RAM B",
                   "fits", "accuracy", "SQNR dB", "pareto"]  # fmt: skip
        data = [
            [
                r.plan, r.params, f"{r.sparsity:.3f}", r.flash_bytes, f"{r.compression_ratio:.1f}x",
                "n/a" if r.latency_ms is None else f"{r.latency_ms:.3f}", f"{r.energy_uj:.2f}", r.peak_ram_bytes,
                "yes" if all(r.fits.values()) else "NO",
                "n/a" if r.accuracy is None else f"{100 * r.accuracy:.2f}%",
                "identical" if r.sqnr_db == float("inf") else f"{r.sqnr_db:.1f}", "*" if r.pareto else "",
            ]
            for r in rows
        ]  # fmt: skip
        if args.format == "csv":
            text = to_csv(headers, data)
        else:
            numeric = [False, True, True, True, True, True, True, True, False, True, True, False]
            text = f"model: {graph.name}\nhardware: {hw.label}\n\n" + table(headers, data, numeric)
            if budget is not None:
                text += _budget_text(budget, results)
    if args.plot:
        plot_pareto(rows, args.plot, f"{graph.name} on {hw.label}")
    write_text(text, args.output)
    return _over_budget(budget.summary_line(results) if budget else "")


def cmd_search(args: argparse.Namespace) -> int:
    from simulator.search.command import cmd_search as run

    return run(args, _model_options(args))


def cmd_sweep(args: argparse.Namespace) -> int:
    from simulator.search.command import cmd_sweep as run

    return run(args)


def _report_command(args: argparse.Namespace) -> str:
    """The command line that rebuilds a report, with the -o it was written to."""
    import shlex

    parts = ["edgesim", "report", args.model, "--hw", args.hw]
    for shape in args.input_shape or []:
        parts += ["--input-shape", shape]
    if args.allow_unknown:
        parts.append("--allow-unknown")
    for precision in args.precision or []:
        parts += ["--precision", precision]
    for plan in args.plan or []:
        parts += ["--plan", plan]
    if args.calib:
        parts += ["--calib", args.calib]
    if args.samples is not None:
        parts += ["--samples", str(args.samples)]
    if args.budget:
        parts += ["--budget", ",".join(args.budget)]
    return shlex.join([*parts, "-o", args.output])


def _plan_applied(args: argparse.Namespace, onnxruntime_ops: bool = False):
    """(original graph, graph after --plan) of a command that runs a model; ``onnxruntime_ops`` lets an ONNX
    file use onnxruntime's com.microsoft quantized ops (a QOperator model run in the ort mode)."""
    from simulator.importers import load_model
    from simulator.plan import apply_plan, load_calibration, load_plan

    graph = load_model(args.model, **_model_options(args), onnxruntime_ops=onnxruntime_ops)
    if not args.plan:
        return graph, graph
    plan = load_plan(args.plan)
    calibration = load_calibration(args.calib, graph) if args.calib else None
    try:
        return graph, apply_plan(graph, plan, calibration)
    except EdgesimError as exc:
        raise EdgesimError(f"{args.plan}: {exc}") from None


def _safe_file_name(index: int, tensor: str) -> str:
    """A dump file name from a tensor name: tensor names come from model files and are never paths."""
    import re

    return f"{index:04d}_{re.sub(r'[^A-Za-z0-9._-]', '_', tensor).lstrip('.')[:100]}.npy"


def _save_npy(path, array) -> None:
    import io

    import numpy as np

    from simulator.output import write_bytes

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes(buffer.getvalue(), str(path))


def _as_onnxruntime_graph(args: argparse.Namespace, graph):
    """The graph as onnxruntime would load it: a plan's output goes through edgesim's QDQ export first (so
    the ort mode fuses exactly what onnxruntime fuses); a model file was loaded with onnxruntime's ops already."""
    import tempfile
    from pathlib import Path

    from simulator.execute.qdq_export import write_qdq
    from simulator.importers.onnx_import import load_onnx

    if args.plan:
        with tempfile.TemporaryDirectory() as tmp:
            return load_onnx(write_qdq(graph, Path(tmp) / "model.onnx"))
    return graph


def cmd_compress(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.execute.qdq_export import write_qdq

    if not args.output.lower().endswith(".onnx"):
        raise EdgesimError(f"-o {args.output}: compress writes an ONNX model; give a .onnx file name")
    _, graph = _plan_applied(args)
    write_qdq(graph, Path(args.output))
    print(f"{args.output}: QDQ ONNX model of {graph.name} ({args.plan}), loadable by onnxruntime")
    return 0


def _as_real(graph, name: str, value, source: str):
    """A float-mode feed: floats as they are, the integers of a quantized tensor as the values they stand for."""
    import numpy as np

    from simulator.execute.int_exec import dequantize

    if value.dtype.kind == "f":
        return value.astype(np.float32)
    q = graph.tensors[name].quant
    if q is None or q.per_channel:
        raise EdgesimError(f"{source}: --mode float takes float input, not {value.dtype}")
    return dequantize(value, q)


def cmd_run(args: argparse.Namespace) -> int:
    """Inputs and outputs (and dumps) in the model file's own layout (NHWC for a .tflite), whatever edgesim
    uses inside; a streaming model's resource variables start from their initial values."""
    from pathlib import Path

    import numpy as np

    from simulator.arrays import load_arrays
    from simulator.execute import layout, state
    from simulator.execute.int_exec import dequantize, run_tflm
    from simulator.output import table

    # a QOperator model holds onnxruntime's com.microsoft ops, which only the ort mode knows (and no plan applies)
    _, graph = _plan_applied(args, onnxruntime_ops=args.mode == "ort" and not args.plan)
    name = graph.inputs[0]
    shape = layout.file_shape(graph, name)
    x = load_arrays(args.input, "input", finite=True)
    if not isinstance(x, np.ndarray) or (x.shape != shape and x.shape != shape[1:]):
        raise EdgesimError(f"{args.input}: input of shape {getattr(x, 'shape', '?')}; {graph.name} takes {shape}")
    x = layout.to_graph(graph, name, x.reshape(shape))
    if args.dump and not Path(args.dump).is_dir():
        raise EdgesimError(f"--dump {args.dump}: not a directory; create it first")
    quant = {}
    if args.mode == "ort":
        from simulator.execute.ort_exec import run_ort

        caveats: list[str] = []
        values = run_ort(_as_onnxruntime_graph(args, graph), {name: x}, keep=bool(args.dump), caveats=caveats)
        for caveat in caveats:
            print(f"edgesim: warning: not proven bit-exact: {caveat}", file=sys.stderr)
    elif args.mode == "float":
        from simulator.execute.float_exec import run_graph

        feeds = {
            n: _as_real(graph, n, v, args.input)
            for n, v in state.with_state({name: x}, state.initial_state(graph)).items()
        }
        values = run_graph(graph, feeds, keep=bool(args.dump))
    else:
        values, quant = run_tflm(graph, {name: x}, keep=bool(args.dump))
    if args.dump:
        for i, (tensor, value) in enumerate(values.items()):
            _save_npy(Path(args.dump) / _safe_file_name(i, tensor), layout.to_file(graph, tensor, value))
    out = graph.outputs[0]
    y = layout.to_file(graph, out, values[out])
    if args.output:
        _save_npy(args.output, y)
    real = dequantize(y, quant[out]) if out in quant else np.asarray(y, np.float32)
    rows = [[out, "x".join(map(str, y.shape)), str(y.dtype), int(real.reshape(-1).argmax()),
             " ".join(f"{v:.4g}" for v in real.reshape(-1)[:6])]]  # fmt: skip
    print(f"model: {graph.name}\nmode: {args.mode}\n")
    print(table(["output", "shape", "dtype", "argmax", "first values (dequantized)"], rows), end="")
    if args.dump:
        print(f"\n{len(values)} tensors written to {args.dump}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from simulator.execute.verify import verify
    from simulator.fidelity import DataSet, load_dataset, random_inputs
    from simulator.output import table, to_json, write_text
    from simulator.plan import load_calibration

    if args.samples is not None and args.samples < 1:
        raise EdgesimError(f"--samples {args.samples}: give a positive number of samples")
    reference, quantized = _plan_applied(args)
    if args.data:
        data = DataSet(load_calibration(args.data, reference))
    else:
        data = load_dataset(reference) or random_inputs(reference, 8)
    if args.samples is not None:
        data = DataSet(data.feeds[: args.samples], None if data.labels is None else data.labels[: args.samples])
    result = verify(reference, quantized, data)

    def db(v: float):
        return None if v != v or v in (float("inf"), float("-inf")) else round(v, 3)

    if args.format == "json":
        text = to_json({
            "model": reference.name, "plan": args.plan, "samples": len(data.feeds),
            "output_sqnr_db": db(result.output_sqnr_db), "top1_agreement": result.top1_agreement,
            "integer_accuracy": result.integer_accuracy, "float_accuracy": result.float_accuracy,
            "layers": [{"name": k, "sqnr_db": db(v)} for k, v in result.layer_sqnr_db.items()],
        })  # fmt: skip
    else:
        rows = [[k, "identical" if v == float("inf") else f"{v:.1f}"] for k, v in result.layer_sqnr_db.items()]
        text = f"model: {reference.name}\nplan: {args.plan}\nsamples: {len(data.feeds)}\n\n"
        text += table(["tensor", "SQNR dB (integer vs float)"], rows, [False, True])
        text += f"\noutput SQNR: {result.output_sqnr_db:.1f} dB; top-1 agreement: {100 * result.top1_agreement:.1f}%\n"
        if result.integer_accuracy is not None:
            text += (
                f"accuracy: integer {100 * result.integer_accuracy:.2f}%, float {100 * result.float_accuracy:.2f}%\n"
            )
    write_text(text, args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from simulator.budget import parse_budget
    from simulator.deployment import check_precision, deploy
    from simulator.hardware import load_hardware
    from simulator.importers import load_model
    from simulator.plan import check_plan, load_calibration, load_plan
    from simulator.progress import progress_bar
    from simulator.report import build_report, check_target

    budget = parse_budget(args.budget)
    check_target(args.output)
    precisions = list(dict.fromkeys(args.precision or []))
    if args.samples is not None and args.samples < 1:
        raise EdgesimError(f"--samples {args.samples}: give a positive number of samples")
    hw = load_hardware(args.hw)
    for precision in precisions:
        check_precision(hw, precision)
    plans = [load_plan(p) for p in args.plan or []]
    graph = load_model(args.model, **_model_options(args))
    calibration = load_calibration(args.calib, graph) if args.calib else None
    # everything that can refuse the inputs runs before the progress bar starts
    for plan in plans:
        check_plan(graph, plan)
    deployment = deploy(graph, hw, calibration=calibration) if not precisions and not plans else None
    with progress_bar(None, "report") as bar:
        report = build_report(
            graph,
            hw,
            args.output,
            precisions=precisions,
            plans=plans,
            calibration=calibration,
            samples=args.samples,
            budget=budget,
            command=_report_command(args),
            progress=bar,
            deployment=deployment,
            model_ref=args.model,
        )
    data = report.data
    variants = ", ".join(v.label for v in data.variants)
    print(f"{args.output}: {report.pages} pages, {data.model} on {hw.label} ({variants})")
    for warning in data.warnings:
        print(f"edgesim: warning: {warning}", file=sys.stderr)
    return _over_budget(budget.summary_line(data.over_budget) if budget else "")


def cmd_models_list(args: argparse.Namespace) -> int:
    from simulator.importers.zoo import zoo_entries
    from simulator.output import shape_text, table, terminal_width, to_csv, to_json, write_text

    entries = zoo_entries()
    if args.format == "json":
        data = [
            {"name": e.name, "input_shape": list(e.input_shape), "description": e.description, "source": e.source}
            for e in entries
        ]
        text = to_json(data)
    else:
        rows = [[e.name, shape_text(e.input_shape), e.description] for e in entries]
        headers = ["name", "input", "description"]
        width = terminal_width(args.output)
        text = to_csv(headers, rows) if args.format == "csv" else table(headers, rows, max_width=width)
    write_text(text, args.output)
    return 0


def _command(commands, name: str, func, summary: str, description: str, *examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with examples; ``func`` runs it."""
    sub = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog="example" + ("s" if len(examples) > 1 else "") + ":\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(func=func)
    return sub


def _group(commands, name: str, summary: str) -> argparse._SubParsersAction:
    """A command with subcommands of its own (``edgesim hw list``); alone it prints its help."""
    group = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    group.set_defaults(func=lambda args: _missing_command(group))
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", parser_class=_Parser)


def _add_calib_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calib", metavar="DATA.npy|npz", help="calibration inputs for the quantization a plan does (default: seeded)"
    )


def _add_scheduler_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler",
        default="local",
        metavar="tcp://HOST:8786|local|serial",
        help="where evaluations run: a local Dask cluster (default), a running one, or in this process",
    )


def _add_hw_argument(parser: argparse.ArgumentParser, required: bool = True, summary: str = "") -> None:
    parser.add_argument(
        "--hw",
        required=required,
        metavar="PROFILE[:STACK]",
        help=summary or "a profile name (see `edgesim hw list`) or a YAML file",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgesim",
        description="Hardware-aware cost simulator for deep learning on edge devices.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgesim {__version__}")
    parser.add_argument(
        "--max-elements",
        type=int,
        metavar="N",
        help="largest tensor edgesim allocates, in elements (default 2**28 or $EDGESIM_MAX_ELEMENTS; docs/security.md)",
    )
    parser.set_defaults(func=lambda args: _missing_command(parser))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    inspect = _command(
        commands, "inspect", cmd_inspect, "shapes, parameters and MACs of every layer",
        "Import a model and print every layer's shapes, parameters and MACs.",
        "edgesim inspect resnet-8 --format json -o resnet-8.json",
    )  # fmt: skip
    _add_model_arguments(inspect)
    _add_output_arguments(inspect)

    est = _command(
        commands, "estimate", cmd_estimate, "latency, energy and memory on a hardware profile",
        "Estimate latency, energy, flash and peak RAM of a model on a hardware profile, per layer.",
        "edgesim estimate resnet-8 --hw cortex-m7 --precision int8",
        "edgesim estimate resnet-18 --hw jetson-nano:tensorrt --precision fp16 --format json",
        "edgesim estimate lenet-5 --hw cortex-m4 --plan plans/prune90-int8.yaml",
    )  # fmt: skip
    _add_model_arguments(est)
    _add_hw_argument(est)
    est.add_argument("--precision", choices=PRECISIONS, help="run every layer at this precision (no plan needed)")
    est.add_argument("--plan", metavar="PLAN.yaml", help="a compression plan to apply first (see plans/)")
    _add_calib_argument(est)
    _add_budget_argument(est)
    _add_output_arguments(est)

    cmp = _command(
        commands, "compare", cmd_compare, "compression plans side by side: cost and accuracy",
        "Apply each plan to the model and compare size, latency, energy, RAM and fidelity "
        "(test accuracy where the model ships a data set, else output SQNR on seeded random inputs).",
        "edgesim compare digits-mlp --hw cortex-m4 --plan plans/int8-per-channel.yaml "
        "--plan plans/deep-compression.yaml --plot pareto.png",
    )  # fmt: skip
    _add_model_arguments(cmp)
    _add_hw_argument(cmp)
    cmp.add_argument("--plan", action="append", metavar="PLAN.yaml", help="a compression plan (repeatable)")
    _add_calib_argument(cmp)
    cmp.add_argument("--samples", type=int, metavar="N", help="inputs to measure fidelity on")
    cmp.add_argument("--plot", metavar="FILE.png|svg", help="write a Pareto chart")
    _add_budget_argument(cmp)
    _add_output_arguments(cmp)

    srch = _command(
        commands, "search", cmd_search, "the most faithful compression plan that meets a budget",
        "Search per-layer compression (weight bits, scales, pruning, sharing) for the plan with the best "
        "accuracy or SQNR within a budget, with the fidelity-cost front around it (docs/search.md).",
        "edgesim search digits-cnn --hw cortex-m4 --budget flash_bytes=2K -o search-out",
        "edgesim search resnet-8 --hw cortex-m7 --budget latency_ms=40,flash_bytes=64K --scheduler serial",
    )  # fmt: skip
    _add_model_arguments(srch)
    _add_hw_argument(srch)
    _add_budget_argument(srch)
    srch.add_argument("--space", metavar="SPACE.yaml", help="the search space (default: built from the profile)")
    srch.add_argument("--objective", choices=("accuracy", "sqnr"), help="default: accuracy with a data set, else sqnr")
    srch.add_argument("--seed", type=int, default=0, help="seed of the random inputs and tie-breaks (default 0)")
    srch.add_argument("--samples", type=int, metavar="N", help="inputs to measure fidelity on")
    srch.add_argument("-o", "--output", metavar="DIR", help="write the front's plans, JSON, table and plot here")
    _add_scheduler_argument(srch)

    swp = _command(
        commands, "sweep", cmd_sweep, "models x hardware x plans in one table",
        "Estimate and measure every model on every profile/stack under every plan or precision of a grid file, "
        "into one CSV table with plots (docs/search.md).",
        "edgesim sweep grid.yaml -o sweep-out",
    )  # fmt: skip
    swp.add_argument("grid", metavar="GRID.yaml", help="models, hardware and plans to cross")
    swp.add_argument("-o", "--output", metavar="DIR", help="write sweep.csv and the plots here")
    swp.add_argument("--samples", type=int, metavar="N", help="inputs to measure fidelity on")
    _add_scheduler_argument(swp)

    rpt = _command(
        commands, "report", cmd_report, "a design-review PDF: summary, per-layer tables, charts, sources",
        "Write a multi-page PDF for a design review: verdicts against the profile's capacities and the budget,\n"
        "per-layer estimates, latency and roofline, energy breakdown, activation arena and flash, the plan\n"
        "comparison, and the profile's numbers with their sources. Several --precision or --plan compare them.\n"
        "The date is SOURCE_DATE_EPOCH when set (reproducible output), else today.",
        "edgesim report resnet-8 --hw cortex-m7 --precision int8 -o report.pdf",
        "edgesim report resnet-8 --hw cortex-m7:tflm-portable --precision fp32 --precision int8 -o fp32-vs-int8.pdf",
        "edgesim report digits-mlp --hw cortex-m4 --plan plans/int8-per-channel.yaml "
        "--plan plans/deep-compression.yaml --budget flash_bytes=32K -o plans.pdf",
    )  # fmt: skip
    _add_model_arguments(rpt)
    _add_hw_argument(rpt)
    rpt.add_argument(
        "--precision",
        action="append",
        choices=PRECISIONS,
        help="run every layer at this precision (repeatable: one variant each)",
    )
    rpt.add_argument("--plan", action="append", metavar="PLAN.yaml", help="a compression plan (repeatable)")
    _add_calib_argument(rpt)
    rpt.add_argument("--samples", type=int, metavar="N", help="inputs to measure the plans' fidelity on")
    _add_budget_argument(rpt)
    rpt.add_argument("-o", "--output", metavar="FILE.pdf", required=True, help="the PDF to write")

    run = _command(
        commands, "run", cmd_run, "bit-exact integer execution of a quantized model, or float execution",
        "Run a quantized model (quantized by --plan, or a quantized .tflite / ONNX) with a deployment runtime's "
        "integer arithmetic: tflm = TensorFlow Lite Micro's reference kernels (CMSIS-NN default build), "
        "ort = onnxruntime on x86 CPU (QDQ and QOperator ONNX, round half to even in float32); or any model "
        "with edgesim's float kernels (--mode float). Input, output and dumps are in the model file's own "
        "layout (NHWC for a .tflite).",
        "edgesim run digits-cnn --plan plans/int8-per-channel.yaml --input x.npy -o y.npy",
        "edgesim run tests/data/tflite/cnn.tflite --input x.npy --dump layers/",
        "edgesim run digits-cnn --plan plans/int8-per-channel.yaml --input x.npy --mode ort",
        "edgesim run face_landmark.tflite --input face_nhwc.npy --mode float",
    )  # fmt: skip
    _add_model_arguments(run)
    run.add_argument("--plan", metavar="PLAN.yaml", help="a plan that quantizes the model (see plans/)")
    _add_calib_argument(run)
    run.add_argument("--input", required=True, metavar="X.npy", help="one input sample, float or integer")
    run.add_argument(
        "--mode", choices=("tflm", "ort", "float"), default="tflm",
        help="whose integer arithmetic (tflm, ort), or edgesim's float kernels (float: a float model as it is)",
    )  # fmt: skip
    run.add_argument("-o", "--output", metavar="Y.npy", help="write the output (integers, floats in float mode)")
    run.add_argument("--dump", metavar="DIR", help="write every intermediate integer tensor into DIR")

    compress = _command(
        commands, "compress", cmd_compress, "write a quantized model as QDQ ONNX",
        "Apply a plan and write the quantized graph as a QDQ ONNX model that onnxruntime loads and runs.",
        "edgesim compress digits-cnn --plan plans/int8-per-channel.yaml -o digits-cnn-int8.onnx",
    )  # fmt: skip
    _add_model_arguments(compress)
    compress.add_argument("--plan", required=True, metavar="PLAN.yaml", help="the plan that quantizes the model")
    _add_calib_argument(compress)
    compress.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where to write the model")

    ver = _command(
        commands, "verify", cmd_verify, "integer vs float execution, layer by layer",
        "Run the float model and the integer execution of its quantized form on the same inputs and print each "
        "tensor's SQNR, the output agreement and, for models with a data set, both accuracies.",
        "edgesim verify digits-cnn --plan plans/int8-per-channel.yaml",
    )  # fmt: skip
    _add_model_arguments(ver)
    ver.add_argument("--plan", required=True, metavar="PLAN.yaml", help="the plan that quantizes the model")
    _add_calib_argument(ver)
    ver.add_argument("--data", metavar="DATA.npy|npz", help="inputs to verify on (default: the model's data set)")
    ver.add_argument("--samples", type=int, metavar="N", help="verify on the first N inputs")
    _add_output_arguments(ver)

    hw = _group(commands, "hw", "hardware profiles")
    _add_output_arguments(_command(hw, "list", cmd_hw_list, "list the shipped profiles", "", "edgesim hw list"))
    show = _command(hw, "show", cmd_hw_show, "print a profile with its sources", "", "edgesim hw show cortex-m4")
    show.add_argument("profile", metavar="PROFILE", help="a profile name (see `edgesim hw list`) or a YAML file")
    show.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    check = _command(
        hw, "validate", cmd_hw_validate, "check profile files against the schema", "",
        "edgesim hw validate my-board.yaml",
    )  # fmt: skip
    check.add_argument("files", nargs="+", metavar="FILE", help="hardware profile YAML files to check")

    val = _command(
        commands, "validate", cmd_validate, "estimates vs published measurements",
        "Estimate every row of a measurements file on its profile and compare with the measured value.",
        "edgesim validate --hw cortex-m4", "edgesim validate --data my-measurements.csv",
    )  # fmt: skip
    _add_hw_argument(val, required=False, summary="only the rows of this profile")
    val.add_argument("--data", metavar="CSV", help="a measurements file (default: the published set edgesim ships)")
    _add_output_arguments(val)

    cal = _command(
        commands, "calibrate", cmd_calibrate, "fit a profile's few free parameters to your own measurements",
        "Fit the stack's free parameters (--free, else its calibrate list, else the stack's numbers the\n"
        "measurements are sensitive to) to measured latencies by least squares on ln latency, report the\n"
        "leave-one-out error before and after, and write the calibrated profile (docs/calibration.md).\n"
        "A measurement is a whole-model CSV (model, input, precision, latency_ms) or MODEL=FILE, a per-layer\n"
        "profile: TFLM MicroProfiler log, X-CUBE-AI validation report, trtexec --exportProfile JSON or\n"
        "benchmark_model --enable_op_profiling output. The date is SOURCE_DATE_EPOCH when set.",
        "edgesim calibrate --hw cortex-m7:cmsis-nn --measurements my-latencies.csv -o my-board.yaml",
        "edgesim calibrate --hw cortex-m7:cmsis-nn --measurements ds-cnn=ds-cnn.log --precision int8 -o my-board.yaml",
        "edgesim calibrate --hw my-board.yaml --measurements m.csv --free stacks.cmsis-nn.efficiency.conv -o out.yaml",
    )  # fmt: skip
    _add_hw_argument(cal)
    cal.add_argument(
        "--measurements", nargs="+", required=True, metavar="FILE|MODEL=FILE", help="measurement files (see above)"
    )
    cal.add_argument(
        "--free", action="append", metavar="PATH[,PATH...]", help="the profile numbers to fit, as dotted paths"
    )
    cal.add_argument("--precision", choices=PRECISIONS, help="the precision the per-layer profiles ran at")
    cal.add_argument(
        "--ticks-per-second", type=float, metavar="HZ",
        help="MicroProfiler tick rate (default: the profile's clock_hz, the DWT cycle counter of Cortex-M ports)",
    )  # fmt: skip
    cal.add_argument("-o", "--output", required=True, metavar="FILE.yaml", help="the calibrated profile to write")

    models = _group(commands, "models", "the built-in model zoo")
    listing = _command(
        models, "list", cmd_models_list, "list the zoo's models", "List the zoo's models.",
        "edgesim models list --format json",
    )  # fmt: skip
    _add_output_arguments(listing)
    return parser


def _missing_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    from simulator.threads import blas_threads, limited_blas

    try:
        args = build_parser().parse_args(argv)
        set_max_elements(args.max_elements)
        with limited_blas(blas_threads()):
            return args.func(args)
    except EdgesimError as exc:
        print(f"edgesim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
