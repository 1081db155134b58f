"""The estimator: latency, energy and memory of an op graph on a hardware profile."""

from simulator.estimate.arena import ArenaPlan, plan_arena
from simulator.estimate.estimator import Estimate, LayerEstimate, PreparedGraph, estimate, prepare

__all__ = ["ArenaPlan", "Estimate", "LayerEstimate", "PreparedGraph", "estimate", "plan_arena", "prepare"]
