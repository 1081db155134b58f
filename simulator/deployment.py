"""The one rule every command follows to decide what it estimates when a stack cannot run a model as given.

Most models users bring are float, and many edge stacks (CMSIS-NN, X-CUBE-AI's int8 runtime) have integer
kernels only. Such a model is not refused: it is estimated as that stack deploys it, after post-training
quantization as TFLite's converter does it by default (symmetric per-channel weights, asymmetric per-tensor
activations calibrated by min/max, int32 biases) at the stack's integer precision, on the calibration data
``edgesim compress`` would use (``--calib``, or seeded inputs). The output says so in one line and carries
``precision_source``. A precision the user asks for explicitly (``--precision``) is never replaced: one the
stack lacks is an error naming the profile's stacks that do run it.

``estimate``, ``compare``, ``report`` and ``search`` all go through :func:`deploy`, so a model is estimated
the same way whatever command shows it (docs/hardware-profiles.md, "Float models on integer stacks").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import EdgesimError
from simulator.estimate.precision import wanted_precision
from simulator.graph import Graph
from simulator.hardware import PRECISION_BITS, Hardware, read_profile
from simulator.passes.deploy import for_deployment
from simulator.plan import Plan, apply_plan, parse_plan
from simulator.resources import data_dir

#: where the precision an estimate runs at comes from (JSON ``precision_source``)
FROM_MODEL = "model"  # the model's own precisions (float or already quantized), run as given
FROM_PLAN = "plan"  # the precisions a compression plan left
FROM_OPTION = "--precision"  # every layer at the precision the user asked for
FROM_PTQ = "post-training quantization"  # the stack's deployment of a float model (see the module docstring)


@dataclass(frozen=True)
class Deployment:
    """A graph as the stack runs it, with the precision override the estimator needs and what to tell the user."""

    graph: Graph
    precision: str | None  # the estimator's override: every layer at this precision (None: the graph's own)
    precision_source: str
    note: str  # one line for the user ("" when the model runs as given)


def ptq_plan(bits: int) -> Plan:
    """TFLite's post-training integer quantization at ``bits`` (the converter's defaults)."""
    return parse_plan(
        {
            "name": f"post-training-int{bits}",
            "description": f"post-training int{bits} quantization as TFLite's converter does it by default",
            "passes": [
                {
                    "pass": "quantize",
                    "weights": {"bits": bits, "symmetric": True, "granularity": "per-channel"},
                    "activations": {"bits": bits, "symmetric": bits > 8, "calibration": "minmax"},
                }
            ],
        },
        f"post-training-int{bits}",
    )


def missing_precisions(graph: Graph, hw: Hardware) -> list[str]:
    """Precisions the graph's layers ask for that the chosen stack has no kernels for (in layer order)."""
    missing: list[str] = []
    for node in for_deployment(graph).order:
        wanted = wanted_precision(graph, node, None)
        try:
            hw.precision_for(wanted)
        except EdgesimError:
            if wanted not in missing:
                missing.append(wanted)
    return missing


def stacks_running(hw: Hardware, precision: str) -> list[str]:
    """The profile's stacks with kernels for ``precision``."""
    data = read_profile(Path(hw.path)) if hw.path else None
    if data is None:
        return [hw.stack.name] if precision in hw.stack.precisions else []
    return [
        name
        for name, stack in data["stacks"].items()
        if precision in stack["precisions"] and precision in data["compute"]
    ]


def check_precision(hw: Hardware, precision: str) -> None:
    """An explicit ``--precision`` the stack cannot run is an error naming the stacks that can."""
    try:
        hw.precision_for(precision)
    except EdgesimError:
        others = [s for s in stacks_running(hw, precision) if s != hw.stack.name]
        shipped = bool(hw.path) and Path(hw.path).parent.resolve() == data_dir("hwprofiles").resolve()
        spec = hw.name if shipped or not hw.path else hw.path
        where = (
            f"stacks of {hw.name} that run {precision}: {', '.join(others)} (--hw {spec}:{others[0]})"
            if others
            else f"no stack of {hw.name} runs {precision}"
        )
        raise EdgesimError(
            f"--precision {precision}: {hw.label} runs {', '.join(hw.stack.precisions)} only; {where}"
        ) from None


def deployment_bits(hw: Hardware) -> int | None:
    """The integer width a stack deploys float models at: int8 when it has it, else its narrowest integer
    precision of at least 8 bits (None: the stack has no integer kernels)."""
    ints = sorted(PRECISION_BITS[p] for p in hw.stack.precisions if p.startswith("int") and p in hw.compute)
    wide_enough = [b for b in ints if b >= 8]
    return wide_enough[0] if wide_enough else None


def deploy(
    graph: Graph,
    hw: Hardware,
    *,
    precision: str | None = None,
    from_plan: bool = False,
    calibration: list[dict[str, np.ndarray]] | None = None,
) -> Deployment:
    """The graph ``hw``'s stack would run for ``graph`` (a model as imported, or after a plan when
    ``from_plan``), by the rule in the module docstring."""
    if precision is not None:
        check_precision(hw, precision)
        return Deployment(graph, precision, FROM_OPTION, "")
    source = FROM_PLAN if from_plan else FROM_MODEL
    missing = missing_precisions(graph, hw)
    if not missing:
        return Deployment(graph, None, source, "")
    bits = deployment_bits(hw)
    if bits is None or not all(p in ("fp32", "fp16", "bf16") for p in missing):
        runs = ", ".join(hw.stack.precisions)
        others = [s for s in stacks_running(hw, missing[0]) if s != hw.stack.name]
        fix = f"--hw {hw.name}:{others[0]}" if others else f"a profile with {missing[0]} kernels"
        what = "the plan leaves" if from_plan else f"{graph.name} has"
        raise EdgesimError(
            f"{hw.label} has no {'/'.join(missing)} kernels (it runs {runs}) and {what} {'/'.join(missing)} "
            f"layers; use {fix}{' or a plan at a precision it runs' if from_plan else ' or quantize with --plan'}"
        )
    plan = ptq_plan(bits)
    try:
        deployed = apply_plan(graph, plan, calibration)
    except EdgesimError as exc:
        raise EdgesimError(f"post-training int{bits} quantization for {hw.label}: {exc}") from None
    left = missing_precisions(deployed, hw)
    if left:
        raise EdgesimError(
            f"{graph.name}: after post-training int{bits} quantization some layers still need {', '.join(left)}, "
            f"which {hw.label} does not run; pick a stack that runs {left[0]}"
        )
    what = "the plan's float layers" if from_plan else f"this {missing[0]} model"
    calibrated = "the --calib data" if calibration is not None else "seeded inputs"
    note = (
        f"post-training int{bits} quantization of {what}, as {hw.label} (integer kernels only) deploys it: "
        f"per-channel weights, per-tensor activations calibrated on {calibrated}"
    )
    return Deployment(deployed, None, FROM_PTQ, note)
