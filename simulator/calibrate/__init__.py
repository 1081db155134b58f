"""Fitting a profile's few free parameters to a user's own measurements (`edgesim calibrate`)."""

from simulator.calibrate.run import Calibration, calibrate, render

__all__ = ["Calibration", "calibrate", "render"]
