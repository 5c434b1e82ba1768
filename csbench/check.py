"""`csbench check PLUGIN`: the contract every prior must pass (like scikit-learn's check_estimator).

Shapes, finite output, determinism under a seed, batch independence, no access to the test
images, and a clean exception on bad input. The project runs the same checks on its own priors.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from csbench.data import load_dataset
from csbench.priors import Prior, PriorContext, SealedDataset, check_prior_class, load_plugin, registry
from csbench.problem import Problem
from csbench.runner import Task, make_problem, recover

M = 200


def _problem(dataset: str, images: list[int]) -> Problem:
    """Gaussian measurements of the given validation images, instance i with its own seeded A_i."""
    x = load_dataset(dataset).split("validation", max(images) + 1)[images]
    return make_problem(x, Task(dataset, "gaussian", "check", M, 0.1, 0), "check", "cpu")


def contract(prior: Prior, dataset: str = "mnist") -> list[tuple[str, str | None]]:
    """[(check, None if it passed else the reason)] for a prior instance on `dataset`."""
    data = load_dataset(dataset)
    prior.setup(PriorContext(dataset=SealedDataset(data), shape=tuple(data.shape)))
    batch = _problem(dataset, [0, 1, 2])
    results: list[tuple[str, str | None]] = []

    def run(name: str, body: Callable[[], str | None]) -> None:
        try:
            results.append((name, body()))
        except Exception as exc:  # a crash is a failed check, with its message
            results.append((name, f"{type(exc).__name__}: {exc}".splitlines()[0]))

    first = {}

    def shape_and_finite() -> str | None:
        first["x"] = recover(prior, batch)
        return None if torch.isfinite(first["x"]).all() else "non-finite values in the output"

    def determinism() -> str | None:
        again = _problem(dataset, [0, 1, 2])
        diff = (recover(prior, again) - first["x"]).abs().max().item()
        return None if diff <= 1e-5 else f"two runs with the same seed differ by {diff:.2e}"

    def batch_independence() -> str | None:
        other = _problem(dataset, [3, 1, 4])  # same instance 1 (same A_1, y_1), new neighbours
        diff = (recover(prior, other)[1] - first["x"][1]).abs().max().item()
        return None if diff <= 1e-5 else f"instance 1 changes by {diff:.2e} when the other instances change"

    def bad_input() -> str | None:
        bad = Problem(y=batch.y[:, :-1], operator=batch.operator, shape=batch.shape, noise=batch.noise,
                      link=batch.link, measurement=batch.measurement, dataset=batch.dataset)
        try:
            recover(prior, bad)
        except Exception as exc:
            return None if str(exc).strip() else "the exception for bad input has no message"
        return "accepted y whose length does not match the operator (m - 1 measurements)"

    run("output shape (B, C, H, W) and finite, test split never read", shape_and_finite)
    if results[-1][1] is None:
        run("deterministic under the task seed", determinism)
        run("batch independent (an instance ignores the others in its batch)", batch_independence)
    run("bad input raises an exception with a message", bad_input)
    return results


def resolve(spec: str) -> type[Prior]:
    """A registered prior name, `module:Class` or `path/to/file.py` (its first prior class)."""
    if spec in registry():
        return registry()[spec]
    classes = load_plugin(spec)
    return check_prior_class(classes[0], spec)


def check_plugin(spec: str, dataset: str = "mnist") -> list[str]:
    """Print each check and return the failures."""
    cls = resolve(spec)
    print(f"checking {cls.name} ({cls.kind}): {cls.description}")
    failures = []
    for name, reason in contract(cls(), dataset):
        print(f"  {'ok  ' if reason is None else 'FAIL'} {name}" + (f": {reason}" if reason else ""))
        if reason:
            failures.append(f"{name}: {reason}")
    print(f"{cls.name}: {'all checks passed' if not failures else f'{len(failures)} check(s) failed'}")
    return failures
