"""Fitting a profile's few free parameters to a user's own measurements (`edgesim calibrate`): formats.py reads
the tools' per-layer profiles, matching.py maps their rows to layers, measurements.py turns files into
observations, params.py addresses profile numbers, fit.py fits them, run.py picks, fits and writes.

Nothing is imported here: validating a profile needs only params.py."""
