"""Progress inside a running task: `progress("step 300/1000")` from anywhere in the task's code
(runner, priors, plug-ins) reaches whoever the executor routed it to: the progress bar of
`compare`, beside the task's name. Without a route it is a no-op."""
from __future__ import annotations

from collections.abc import Callable

_routes: list[Callable[[str], None]] = []


def route_progress(callback: Callable[[str], None] | None) -> None:
    """Send the `progress` messages of tasks run in this process to `callback` (None: nowhere)."""
    _routes[:] = [callback] if callback else []


def progress(text: str) -> None:
    """Say what the running task is doing, so that a long task does not look hung."""
    for callback in _routes:
        callback(text)
