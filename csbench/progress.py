"""Progress inside a running task: `progress("step 300/1000", done=0.3)` from anywhere in the task's
code (runner, priors, plug-ins) reaches whoever the executor routed it to: the progress bar of
`compare`, which shows the text beside the task's name and, where `done` is given, counts that
fraction of the task as done, so that the bar moves and its time left holds while long tasks run.
Without a route it is a no-op.

`done` is the fraction of the work at hand, not of the task: the runner gives each part of a task its
share (`task_share`), so a prior's `done = 0.5` halfway through its test recovery, the share
[s, 1] after tuning, reaches the bar as s + 0.5 (1 - s)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Route = Callable[[str, float | None], None]  # (text, fraction of the task done or None)

_routes: list[Route] = []
_share = [0.0, 1.0]  # the part of the task that the code running now does


def route_progress(callback: Route | None) -> None:
    """Send the `progress` messages of tasks run in this process to `callback` (None: nowhere)."""
    _routes[:] = [callback] if callback else []


@contextmanager
def task_share(start: float, stop: float) -> Iterator[None]:
    """Within: `done` counts as [start, stop] of the enclosing share of the task (all of it at first)."""
    low, high = _share
    _share[:] = [low + (high - low) * start, low + (high - low) * stop]
    try:
        yield
    finally:
        _share[:] = [low, high]


def progress(text: str, done: float | None = None) -> None:
    """Say what the running task is doing, so that a long task does not look hung; `done`, where
    known, is the fraction of the work at hand finished (0 to 1)."""
    low, high = _share
    fraction = None if done is None else low + (high - low) * min(max(float(done), 0.0), 1.0)
    for callback in _routes:
        callback(text, fraction)


def step_progress(what: str, step: int, steps: int) -> None:
    """`progress` at every tenth of a loop of `steps` steps: "{what}, step {step}/{steps}", done step / steps."""
    if step % max(1, steps // 10) == 0:
        progress(f"{what}, step {step}/{steps}", done=step / steps)
