"""Hardware-aware compression search (``edgesim search``) and model x hardware sweeps (``edgesim sweep``)."""
