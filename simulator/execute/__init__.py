"""Executors: interpreters that walk a graph's execution order and run each op's kernel."""

from simulator.execute.float_exec import run_graph

__all__ = ["run_graph"]
