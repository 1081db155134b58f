"""The one exception type user-facing code raises for bad input.

The CLI prints it as a single line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class EdgesimError(Exception):
    """Bad input: a model, profile, plan or flag that edgesim cannot use. The message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
