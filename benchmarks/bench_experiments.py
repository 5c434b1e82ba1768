"""The theory experiments of the default preset, the autograd path against the new one, in one run:
`random_net_phase` and `l1_phase` (experiment `phase`) and `landscape`, at their default sizes.

    python benchmarks/bench_experiments.py [--repeats 2] [--only random_net_phase,l1_phase,landscape]

The reference ("autograd path") is what these experiments ran before: `hv_descent` through
autograd (the network wrapped in a plain function, so that its hand-written `linearise` is not
seen; the autograd branch of hv.py is the old code), landscape calling it once per kind of start,
and l1_phase solving each m with `DenseOperator`'s products. Old and new alternate, `--repeats`
times each; a row shows the smaller process CPU time of each (one thread: what it costs on a
quiet core even when other processes share the machine), whether the two tables are identical,
how many rel_error values differ (NaN = NaN), their largest relative difference and the number
of success booleans that differ. Ends with `ratio: X`, old seconds / new seconds over all three.
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

import csbench.experiments.landscape  # noqa: F401  (the modules, not the functions the package exports)
import csbench.experiments.phase  # noqa: F401
from csbench.generative.hv import hv_descent
from csbench.measurements.base import DenseOperator

PHASE = sys.modules["csbench.experiments.phase"]
LANDSCAPE = sys.modules["csbench.experiments.landscape"]


def autograd_hv_descent(decode, operator, y, z0, **options):
    """hv_descent by autograd: `decode` behind a lambda has no `linearise`."""
    return hv_descent(lambda z: decode(z), operator, y, z0, **options)


def landscape_hv_descent(decode, operator, y, z0, **options):
    """As landscape called it before: one autograd run per kind of start (z0's two halves)."""
    runs = [autograd_hv_descent(decode, operator, y, half, **options) for half in z0.chunk(2)]
    return tuple(torch.cat(parts) for parts in zip(*runs))


def dense_operator_maps(matrices: torch.Tensor):
    """l1_phase's products before: `DenseOperator`'s forward and adjoint."""
    operator = DenseOperator(matrices)
    return operator.forward, operator.adjoint


@contextmanager
def patched(module, name: str, value) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


EXPERIMENTS: dict[str, tuple[Callable[[], pd.DataFrame], Callable[[], object]]] = {
    "random_net_phase": (lambda: PHASE.random_net_phase(), lambda: patched(PHASE, "hv_descent", autograd_hv_descent)),
    "l1_phase": (lambda: PHASE.l1_phase(), lambda: patched(PHASE, "matrix_vector_maps", dense_operator_maps)),
    "landscape": (lambda: LANDSCAPE.landscape(), lambda: patched(LANDSCAPE, "hv_descent", landscape_hv_descent)),
}


def timed(run: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    start = time.process_time()
    table = run()
    return time.process_time() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=",".join(EXPERIMENTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    PHASE.random_net_phase(ks=(2,), ms=(2,), trials=1, steps=2)           # one-off start-up costs
    totals = {"old": 0.0, "new": 0.0}
    print(f"{'experiment':17s} {'autograd path':>14s} {'new':>8s} {'ratio':>6s}  identical  differ  max rel d  flips")
    for name in args.only.split(","):
        run, reference = EXPERIMENTS[name]
        seconds = {"old": [], "new": []}
        for _ in range(args.repeats):
            with reference():
                old_seconds, old = timed(run)
            new_seconds, new = timed(run)
            seconds["old"].append(old_seconds)
            seconds["new"].append(new_seconds)
        best = {key: min(values) for key, values in seconds.items()}
        for key in totals:
            totals[key] += best[key]
        e_old, e_new = old["rel_error"].to_numpy(), new["rel_error"].to_numpy()
        differ = ~((e_old == e_new) | (np.isnan(e_old) & np.isnan(e_new)))
        relative = np.abs(e_old - e_new)[differ] / np.abs(e_old)[differ]
        flips = int((old["success"] != new["success"]).sum())
        print(f"{name:17s} {best['old']:13.2f}s {best['new']:7.2f}s {best['old'] / best['new']:5.2f}x  "
              f"{str(old.equals(new)):9s}  {int(differ.sum()):6d}  {relative.max(initial=0.0):9.2e}  {flips:5d}",
              flush=True)
    print(f"{'total':17s} {totals['old']:13.2f}s {totals['new']:7.2f}s")
    print(f"ratio: {totals['old'] / totals['new']:.2f}")


if __name__ == "__main__":
    main()
