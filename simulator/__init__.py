"""edgesim: hardware-aware cost simulator for deep learning on edge devices."""

__version__ = "0.1.0"
