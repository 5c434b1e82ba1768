"""Split helpers: request checking and the seeded orders the fixed splits are cut from."""
from __future__ import annotations

import numpy as np

from csbench.datasets.base import SPLITS
from csbench.errors import CsbenchError


def check_split(which: str) -> None:
    if which not in SPLITS:
        raise CsbenchError(f"unknown split {which!r}; use one of {', '.join(SPLITS)}")


def requested_count(dataset: str, which: str, n: int | None, available: int) -> int:
    """How many images `split(which, n)` returns: all when n is None, else n (0 <= n <= available)."""
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise CsbenchError(f"number of images must be a non-negative integer, got {n!r}")
    if n > available:
        raise CsbenchError(f"dataset {dataset} split {which!r} has {available} images; asked for {n}")
    return int(n)


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of all indices in which every prefix is stratified by class.

    Item r (0-based, in a random order within its class c of size n_c) gets the key
    (r + u) / n_c with u ~ U[0, 1); sorting by key puts floor(t n_c) or floor(t n_c) + 1
    items of class c among the items with key < t, so any prefix of length L holds
    L n_c / N items of class c up to about one.
    """
    labels = np.asarray(labels)
    keys = np.empty(labels.size, dtype=np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank = rng.permutation(members.size)
        keys[members] = (rank + rng.random(members.size)) / members.size
    return np.argsort(keys, kind="stable")


def permutation_split(count: int, fractions: tuple[float, float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Split range(count) by a random permutation: validation and test get round(f * count)
    indices each (at least one each), train the rest (at least one); needs count >= 3."""
    if count < 3:
        raise CsbenchError(f"need at least 3 images to make train/validation/test splits, found {count}")
    n_validation, n_test = (max(1, round(f * count)) for f in fractions)
    order = rng.permutation(count)
    return {
        "test": order[:n_test],
        "validation": order[n_test:n_test + n_validation],
        "train": order[n_test + n_validation:],
    }
