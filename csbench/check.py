"""`csbench check PLUGIN`: the contract every prior must pass (like scikit-learn's check_estimator).

One named check per line: setup, the operator's dot-product test, output shape and finiteness,
recover leaves the problem unchanged, two calls give the same answer, batch independence, the
output follows y, a clean exception on bad input, and the test split out of reach. A failure
names the file and line in the plug-in; every call of the prior runs under a timeout. The
project runs the same checks on its own priors (tests/test_contract.py).
"""
from __future__ import annotations

import inspect
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbench.datasets import load_dataset
from csbench.errors import CsbenchError
from csbench.measurements import MEASUREMENTS, dottest, get_measurement
from csbench.naming import NAME_PATTERN, parse_name
from csbench.priors import (Prior, PriorContext, SealedDataset, check_prior_class, load_plugin, make_prior,
                             registry, test_split_refused)
from csbench.problem import Problem
from csbench.runner import Task, make_problem, recover

M = 200
NOISE = 0.1
TIMEOUT = 300.0
VISIBLE = {"name", "shape", "description", "provenance", "bounded", "generator"}  # what the seal may forward


@dataclass
class Outcome:
    """One named check: status "ok", "FAIL" or "skip"; for a failure, why, where in the plug-in
    (file:line), and the full traceback when an exception caused it."""

    name: str
    status: str = "ok"
    reason: str = ""
    where: str = ""
    trace: str = ""


class _Breaches(list):
    """Routes to the test split a prior took: (what, where in the plug-in) pairs."""

    def __init__(self, locate: Callable[[list], str]):
        super().__init__()
        self.locate = locate

    def record(self, what: str) -> None:
        self.append((what, self.locate(traceback.extract_stack()[:-2])))


class _Spy:
    """The dataset behind the seal while `check` runs: records every attribute outside `VISIBLE`
    a prior reaches through the seal (once `armed`)."""

    def __init__(self, dataset: Any, breaches: _Breaches):
        object.__setattr__(self, "_state", {"dataset": dataset, "breaches": breaches, "armed": False})

    def __getattribute__(self, name: str) -> Any:
        state = object.__getattribute__(self, "_state")
        if name not in VISIBLE | {"split", "size"} and state["armed"]:
            state["breaches"].record(f"the dataset's attribute {name!r}")
        return getattr(state["dataset"], name)


class _Hung(Exception):
    """A call of the prior ran past the timeout (it goes on in a daemon thread, ignored);
    `frames`: where it was when the timeout struck."""

    def __init__(self, message: str, frames: list):
        super().__init__(message)
        self.frames = frames


def _guarded(call: Callable[[], Any], timeout: float, seed: int = 0) -> Any:
    """call() in a daemon thread, with the global torch/numpy RNGs seeded by `seed` (a prior that
    uses them instead of `problem.generator` is then caught by the determinism check)."""
    box: dict[str, Any] = {}

    def body() -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            state = np.random.get_state()
            np.random.seed(seed)
            try:
                box["value"] = call()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                np.random.set_state(state)

    thread = threading.Thread(target=body, daemon=True, name="csbench-check")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident)
        raise _Hung(f"no answer after {timeout:g} s (the timeout; `csbench check --timeout` changes it)",
                    traceback.extract_stack(frame) if frame else [])
    if "error" in box:
        raise box["error"]
    return box["value"]


def _roots(cls: type) -> list[Path]:
    """The plug-in's own files: its top-level package's folders, or its module file
    (for a prior inside csbench, the folder of its module)."""
    top = sys.modules.get(cls.__module__.partition(".")[0])
    file = Path(inspect.getfile(cls)).resolve()
    if cls.__module__.startswith("csbench."):
        return [file.parent]
    if top is not None and getattr(top, "__path__", None):
        return [Path(p).resolve() for p in top.__path__]
    return [file]


def _shown(path: str | Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class _Checker:
    """Runs the checks of one prior instance and collects their outcomes."""

    def __init__(self, prior: Prior, timeout: float):
        self.timeout = timeout
        self.roots = _roots(type(prior))
        self.outcomes: list[Outcome] = []
        self.hung = False
        source = inspect.getsourcefile(type(prior).recover) or ""
        line = inspect.getsourcelines(type(prior).recover)[1] if source else 0
        self.recover_at = f"{_shown(source)}:{line} (def recover)" if source else ""

    def locate(self, frames: list) -> str:
        """file:line of the last frame in the plug-in's own files, or "" when none is."""
        for frame in reversed(frames):
            path = Path(frame.filename).resolve()
            if any(path == root or path.is_relative_to(root) for root in self.roots):
                return f"{_shown(path)}:{frame.lineno} (in {frame.name})"
        return ""

    def call(self, function: Callable[..., Any], *args: Any, seed: int = 0) -> Any:
        return _guarded(lambda: function(*args), self.timeout, seed)

    def run(self, name: str, body: Callable[[], str | None], ready: bool = True, needs: str = "",
            calls_prior: bool = True) -> bool:
        """Record body()'s outcome (None: ok; a string: the failure, placed at `recover` when the
        body `calls_prior`); skip it when not `ready` (it `needs` another check to pass) or when it
        calls the prior after a timeout. True when it passed."""
        if not ready or (self.hung and calls_prior):
            why = "an earlier call timed out" if self.hung else f"needs {needs} to pass"
            self.outcomes.append(Outcome(name, "skip", why))
            return False
        try:
            reason = body()
        except _Hung as exc:
            self.hung = True
            self.outcomes.append(Outcome(name, "FAIL", str(exc), self.locate(exc.frames) or self.recover_at))
            return False
        except (Exception, SystemExit) as exc:  # a crash is a failed check, with its message and place
            frames = traceback.extract_tb(exc.__traceback__)
            self.outcomes.append(Outcome(name, "FAIL", f"{type(exc).__name__}: {exc}".splitlines()[0],
                                         self.locate(frames) or self.recover_at,
                                         "".join(traceback.format_exception(exc))))
            return False
        self.outcomes.append(Outcome(name, "FAIL" if reason else "ok", reason or "",
                                     self.recover_at if reason and calls_prior else ""))
        return not reason


def _measurement(prior: Prior, dataset: Any) -> str:
    """gaussian, else the first measurement model the prior supports (e.g. one-bit for a prior
    with links = ("sign",))."""
    reasons = []
    for name in ("gaussian", *sorted(MEASUREMENTS)):
        reason = prior.supports(get_measurement(name), dataset)
        if reason is None:
            return name
        reasons.append(reason)
    raise CsbenchError(f"supports() refuses every measurement model, e.g. {reasons[0]}")


def _snapshot(problem: Problem) -> tuple:
    probe = torch.randn(problem.batch, problem.n, generator=torch.Generator().manual_seed(0))
    return (problem.y.clone(), problem.operator.forward(probe.to(problem.device)).clone(), probe,
            problem.shape, problem.noise, problem.link, problem.measurement)


def _changed(problem: Problem, before: tuple) -> str | None:
    y, image, probe, *fields = before
    if not torch.equal(problem.y, y):
        return "recover changed problem.y in place"
    if not torch.equal(problem.operator.forward(probe.to(problem.device)), image):
        return "recover changed problem.operator (A x differs afterwards)"
    if [problem.shape, problem.noise, problem.link, problem.measurement] != fields:
        return "recover changed problem.shape, .noise, .link or .measurement"
    return None


def contract(prior: Prior, dataset: str = "mnist", timeout: float = TIMEOUT, data: Any = None) -> list[Outcome]:
    """The outcome of every check for a prior instance on `dataset`'s validation images
    (`data`: that dataset, when already loaded)."""
    checker = _Checker(prior, timeout)
    data = data or load_dataset(dataset)
    breaches = _Breaches(checker.locate)
    with test_split_refused(breaches.record):  # first: the seal's own references are guarded too
        spy = _Spy(data, breaches)
        sealed = SealedDataset(spy)
        object.__getattribute__(spy, "_state")["armed"] = True
        return _run_checks(checker, prior, data, dataset, sealed, breaches)


def _run_checks(checker: "_Checker", prior: Prior, data: Any, dataset: str, sealed: SealedDataset,
                breaches: _Breaches) -> list[Outcome]:
    got: dict[str, Any] = {}

    def problem(images: list[int]) -> Problem:
        """Measurements of validation images; instance i always gets the same A_i and noise."""
        x = data.split("validation", max(images) + 1)[images]
        return make_problem(x, Task(dataset, got["measurement"], "check", M, NOISE, 0), "check", "cpu")

    def setup() -> None:
        checker.call(prior.setup, PriorContext(dataset=sealed, shape=tuple(data.shape)))
        got["measurement"] = checker.call(_measurement, prior, sealed)
        got["batch"] = problem([0, 1, 2])

    def operator() -> None:
        dottest(got["batch"].operator)

    def output() -> str | None:
        batch = got["batch"]
        got["before"] = _snapshot(batch)
        got["x"] = checker.call(recover, prior, batch, seed=1)
        return None if torch.isfinite(got["x"]).all() else "non-finite values in the output"

    def unchanged() -> str | None:
        return _changed(got["batch"], got["before"])

    def same_answer() -> str | None:
        diff = (checker.call(recover, prior, problem([0, 1, 2]), seed=2) - got["x"]).abs().max().item()
        return None if diff <= 1e-5 else (f"two calls on the same task differ by {diff:.2e} "
                                          "(draw randomness from problem.generator)")

    def batch_independent() -> str | None:
        got["other"] = checker.call(recover, prior, problem([3, 1, 4]))  # same A_i; new x_0, x_2
        diff = (got["other"][1] - got["x"][1]).abs().max().item()
        return None if diff <= 1e-5 else f"instance 1 changes by {diff:.2e} when the other instances change"

    def follows_y() -> str | None:
        diff = (got["other"][[0, 2]] - got["x"][[0, 2]]).abs().max().item()
        return None if diff > 1e-6 else "the output stays the same when y changes (same operator)"

    def bad_input() -> str | None:
        batch = got["batch"]
        try:
            checker.call(recover, prior, replace(batch, y=batch.y[:, :-1]))
        except _Hung:
            raise
        except Exception as exc:
            return None if str(exc).strip() else "the exception for bad input has no message"
        return "accepted y whose length does not match the operator (m - 1 measurements)"

    def sealed_test() -> str | None:
        unique = list(dict.fromkeys(breaches))  # once each, in order
        return None if not unique else "; ".join(
            f"reached {what}" + (f" at {where}" if where else "") for what, where in unique[:3])

    run, first, output_check = checker.run, "setup", "the output check"
    ready = run(f"setup(context) on {dataset}", setup)
    run(f"{got.get('measurement', 'the')} operator passes the dot-product test <A x, y> = <x, A^T y>",
        operator, ready, first)
    ok = run("output is a real (B, C, H, W) tensor with finite values", output, ready, first)
    run("recover leaves the problem (y, operator) unchanged", unchanged, ok, output_check)
    run("deterministic: two calls on the same task give the same answer", same_answer, ok, output_check)
    run("batch independent (an instance ignores the others in its batch)", batch_independent, ok, output_check)
    run("output changes when y changes", follows_y, "other" in got, "the batch check's recover")
    run("bad input (y one measurement short) raises an exception with a message", bad_input, ready, first)
    run("test split unreachable (never read in setup or recover)", sealed_test, calls_prior=False)
    return checker.outcomes


def make(spec: str) -> Prior:
    """A prior from a registered name (`lasso-dct` or `lasso-dct[lam=0.5]`), `module:Class` or
    `path/to/file.py` (its first prior class), made with its default parameters."""
    if NAME_PATTERN.match(spec.strip()) and parse_name(spec)[0] in registry():
        return make_prior(spec)
    cls = check_prior_class(load_plugin(spec)[0], spec)
    try:
        return cls()
    except CsbenchError:
        raise
    except Exception as exc:  # the plug-in's own constructor: one error line (--traceback for more)
        raise CsbenchError(f"{cls.__name__}() failed: {type(exc).__name__}: {exc}") from exc


def check_plugin(spec: str, dataset: str = "mnist", timeout: float = TIMEOUT,
                 show_traceback: bool = False) -> list[Outcome]:
    """Print one line per check (and where a failure happened); return the failures."""
    if not 0 < timeout <= 10 ** 6:
        raise CsbenchError(f"--timeout must be a positive number of seconds (at most 1e6), got {timeout}")
    prior = make(spec)
    cls = type(prior)
    data = load_dataset(dataset)
    print(f"checking {prior.label} ({cls.kind}, {', '.join(map(_shown, _roots(cls)))}): {cls.description}")
    print(f"  on {dataset} validation images, m = {M}, sigma = {NOISE}, timeout {timeout:g} s per call")
    outcomes = contract(prior, dataset, timeout, data)
    for outcome in outcomes:
        print(f"  {outcome.status:<4} {outcome.name}" + (f": {outcome.reason}" if outcome.reason else ""))
        if outcome.status == "FAIL" and outcome.where:
            print(f"       at {outcome.where}")
        if outcome.status == "FAIL" and outcome.trace and show_traceback:
            print("       " + outcome.trace.rstrip().replace("\n", "\n       "))
    failures = [o for o in outcomes if o.status == "FAIL"]
    if not failures:
        print(f"{cls.name}: all checks passed ({len(outcomes)} of {len(outcomes)})")
    else:
        hint = "" if show_traceback or not any(o.trace for o in failures) else \
            "; rerun with --traceback for the full traceback"
        print(f"{cls.name}: {len(failures)} of {len(outcomes)} checks failed{hint}")
    return failures
