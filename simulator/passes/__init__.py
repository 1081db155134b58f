"""Graph passes: pure functions Graph -> Graph that never mutate their input."""
