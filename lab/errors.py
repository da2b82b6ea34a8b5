"""One exception type for everything a user can get wrong.

The CLI and the app catch `LabError` and show its message; anything else is a
bug and is allowed to surface as a traceback in tests.
"""


class LabError(Exception):
    """A clear, user-facing problem: missing dataset, bad image, damaged checkpoint."""
