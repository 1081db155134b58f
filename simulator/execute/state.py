"""Resource-variable state of a streaming model between calls, as TFLM keeps it.

A .tflite model with VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE (microWakeWord's streaming keyword spotters)
imports with each variable's read as an extra graph input and its assigned value as an extra graph output
(``graph.metadata["tflite_variables"]``). A session starts from the CALL_ONCE init values, feeds the current
state into every call and takes the assigned values as the state of the next one; a variable never assigned
keeps its value.
"""

from __future__ import annotations

import numpy as np

from simulator.graph import Graph


def variables(graph: Graph) -> dict:
    return graph.metadata.get("tflite_variables") or {}


def initial_state(graph: Graph) -> dict[str, np.ndarray]:
    """Graph input (a variable's read) -> its initial value in edgesim's layout."""
    layout = graph.metadata.get("tflite_layout", {}).get("inputs", {})
    state = {}
    for var in variables(graph).values():
        perm = layout.get(var["read"])
        value = np.asarray(var["initial"])
        state[var["read"]] = value.transpose(perm) if perm is not None else value
    return state


def state_inputs(graph: Graph) -> set[str]:
    return {var["read"] for var in variables(graph).values()}


def state_outputs(graph: Graph) -> set[str]:
    return {var["assign"] for var in variables(graph).values() if var["assign"]}


def with_state(feeds: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The user's feeds plus the current state of every variable they do not feed themselves."""
    return {**state, **feeds}


def next_state(graph: Graph, state: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state after a call: each assigned variable takes its assigned value (same integers, TFLM copies
    the bytes), reshaped to the read's shape."""
    new = dict(state)
    for var in variables(graph).values():
        if var["assign"] and var["assign"] in values:
            new[var["read"]] = np.asarray(values[var["assign"]]).reshape(state[var["read"]].shape)
    return new
