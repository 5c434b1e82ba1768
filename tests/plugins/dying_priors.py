"""Priors that take their process down or never return, to test the executors' timeout and
worker-death handling. Each misbehaves only when m equals $CSBENCH_TEST_MISBEHAVE_AT (every m
when it is unset), so one prior can both finish and fail within a sweep."""
import os
import signal
import time

from csbench import Prior


def _misbehaves(problem) -> bool:
    at = os.environ.get("CSBENCH_TEST_MISBEHAVE_AT")
    return at is None or str(problem.m) == at


def _adjoint(problem):
    return problem.operator.adjoint(problem.y).reshape(problem.batch, *problem.shape).clamp(0, 1)


class Exiting(Prior):
    name = "exiting"
    kind = "other"
    description = "ends its process with os._exit(3)"

    def recover(self, problem):
        if _misbehaves(problem):
            os._exit(3)
        return _adjoint(problem)


class Killed(Prior):
    """Like the kernel's OOM killer: SIGKILL to its own process."""
    name = "killed"
    kind = "other"
    description = "SIGKILLs its process"

    def recover(self, problem):
        if _misbehaves(problem):
            os.kill(os.getpid(), signal.SIGKILL)
        return _adjoint(problem)


class Hanging(Prior):
    """Sleeps for $CSBENCH_TEST_HANG_SECONDS (forever when unset), so a test whose executor fails
    to stop it ends anyway, with this task `ok`. Writes its pid to $CSBENCH_TEST_PID_FILE first."""
    name = "hanging"
    kind = "other"
    description = "never returns"

    def recover(self, problem):
        if _misbehaves(problem):
            if "CSBENCH_TEST_PID_FILE" in os.environ:
                with open(os.environ["CSBENCH_TEST_PID_FILE"], "w") as file:
                    file.write(str(os.getpid()))
            end = time.monotonic() + float(os.environ.get("CSBENCH_TEST_HANG_SECONDS", "inf"))
            while time.monotonic() < end:
                time.sleep(0.2)
        return _adjoint(problem)


class Adjoint(Prior):
    name = "adjoint"
    kind = "other"
    description = "back-projection A^T y, clamped to [0, 1]: fast and always fine"

    def recover(self, problem):
        return _adjoint(problem)
