"""The `edgesim` command line. Bad input ends in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from simulator import __version__
from simulator.errors import EdgesimError
from simulator.graph import Shape

EXAMPLES = """examples:
  edgesim models list
  edgesim inspect resnet-8
  edgesim inspect model.onnx --input-shape input=1,3,224,224 --format json -o counts.json
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (through EdgesimError) instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        raise EdgesimError(f"{message} (see {self.prog} --help)")


def parse_input_shape(text: str) -> tuple[str, Shape]:
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 1:
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


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a zoo model name (see `edgesim models list`) or a .onnx / .yaml file")
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=D0,D1,...",
        help="bind an ONNX input's shape, e.g. input=1,3,224,224 (repeatable)",
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="accept ops edgesim does not model, counted as zero cost (listed as warnings)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def cmd_inspect(args: argparse.Namespace) -> int:
    from simulator.importers import load_model
    from simulator.output import write_text
    from simulator.report_text import render_counts
    from simulator.summary import count

    graph = load_model(args.model, _input_shapes(args.input_shape), allow_unknown=args.allow_unknown)
    counts = count(graph)
    write_text(render_counts(counts, args.format), args.output)
    for warning in counts.warnings:
        print(f"edgesim: warning: {warning}", file=sys.stderr)
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from simulator.importers.zoo import zoo_entries
    from simulator.output import shape_text, table, to_csv, to_json, write_text

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
        text = to_csv(headers, rows) if args.format == "csv" else table(headers, rows)
    write_text(text, args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgesim",
        description="Hardware-aware cost simulator for deep learning on edge devices.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgesim {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    inspect = commands.add_parser(
        "inspect",
        help="shapes, parameters and MACs of every layer",
        description="Import a model and print every layer's shapes, parameters and MACs.",
        epilog="example:\n  edgesim inspect resnet-8 --format json -o resnet-8.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_model_arguments(inspect)
    _add_output_arguments(inspect)
    inspect.set_defaults(func=cmd_inspect)

    models = commands.add_parser("models", help="the built-in model zoo", description="The built-in model zoo.")
    models_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", parser_class=_Parser)
    listing = models_commands.add_parser(
        "list",
        help="list the zoo's models",
        description="List the zoo's models.",
        epilog="example:\n  edgesim models list --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_output_arguments(listing)
    listing.set_defaults(func=cmd_models_list)
    models.set_defaults(func=lambda args: _missing_command(models))
    parser.set_defaults(func=lambda args: _missing_command(parser))
    return parser


def _missing_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
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
