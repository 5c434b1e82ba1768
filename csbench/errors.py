"""User-facing errors: the CLI prints them as one line `error: ...` and exits non-zero."""


class CsbenchError(Exception):
    """Bad input or an unusable resource (file, checkpoint, plug-in); message is shown to the user."""
