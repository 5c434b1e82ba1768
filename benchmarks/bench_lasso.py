"""The Lasso baselines' tuning solve on the real workload against scikit-learn's Lasso (one
coordinate-descent fit per instance and lam, warm-started down the lam grid: the named
reference), measured in the same run:

    min_c 1/2 ||y_b - M_b c||^2 + lam ||c||_1,   M_b = A_b Psi (Haar),  every lam of LAMBDA_GRID,

on MNIST validation digits with Gaussian A (sigma = 0.1), as `tune` runs it (one recover_grid per
task: `SynthesisLasso.coefficients` with the priors' step cap and chunks, and the operator's
Lipschitz bound). scikit-learn stops at the same relative duality gap as ours (its tol is set per
instance and lam from our objective): `--tol`, or the gap ours reached where the priors' step cap
(300 per continuation stage) stopped it first, which happens at small lam and small m. Prints, per m, both times, their ratio and each solver's worst
relative duality gap per lam (float64), and ends with `ratio: X`, the smallest ratio over m.
    python benchmarks/bench_lasso.py [--images 32] [--m 25,100,500] [--tol 1e-5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import Lasso

from csbench.baselines.common import LAMBDA_GRID, dense_maps
from csbench.baselines.lasso import LassoWavelet
from csbench.baselines.solvers import lasso_gap
from csbench.datasets import load_dataset
from csbench.runner import Task, make_problem


def relative_gaps(matrices: torch.Tensor, y: torch.Tensor, c: torch.Tensor, lam: torch.Tensor) -> np.ndarray:
    """(P(c) - D) / P(c) in float64, shape (G, B)."""
    forward, adjoint = dense_maps(matrices.double())
    primal, gap = lasso_gap(forward, adjoint, y.double(), c.double(), lam.double()[..., None])
    return (gap / primal)[..., 0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--m", default="25,100,500")
    parser.add_argument("--tol", type=float, default=1e-5, help="relative duality gap, both solvers")
    args = parser.parse_args()
    x = load_dataset("mnist").split("validation", args.images)
    print(f"{args.images} MNIST validation digits, lasso-wavelet, {len(LAMBDA_GRID)} lam values, "
          f"{torch.get_num_threads()} threads")
    ratios = []
    for m in (int(v) for v in args.m.split(",")):
        problem = make_problem(x, Task("mnist", "gaussian", "lasso-wavelet", m, 0.1, 0), "validation", "cpu")
        prior = LassoWavelet()
        prior.tol = args.tol
        start = time.perf_counter()
        synthesis, ours = prior.coefficients(problem, LAMBDA_GRID)
        seconds = time.perf_counter() - start
        lam = torch.tensor(LAMBDA_GRID)[:, None].expand(-1, problem.batch)

        matrices = synthesis.basis.analyze(problem.operator.dense()).double()
        f_ours = lasso_gap(*dense_maps(matrices), problem.y.double(), ours.double(),
                           lam.double()[..., None])[0][..., 0].numpy()
        a_all, y_all = matrices.numpy(), problem.y.double().numpy()
        reached = relative_gaps(matrices, problem.y, ours, lam)       # (G, B): where our step cap stopped us
        reference = np.zeros(ours.shape)
        start = time.perf_counter()
        for b in range(problem.batch):
            model = Lasso(fit_intercept=False, warm_start=True, max_iter=100000)
            for g in np.argsort(LAMBDA_GRID)[::-1]:  # large to small lam, warm-started
                # sklearn stops at gap <= tol ||y||^2 (our scaling): that is tol_rel * P, with tol_rel
                # the target or the gap ours reached when its step cap stopped it first (same accuracy)
                model.set_params(alpha=LAMBDA_GRID[g] / m,
                                 tol=max(args.tol, reached[g, b]) * f_ours[g, b] / float(y_all[b] @ y_all[b]))
                reference[g, b] = model.fit(a_all[b], y_all[b]).coef_
        sklearn_seconds = time.perf_counter() - start

        gaps = reached.max(axis=1)
        gaps_sklearn = relative_gaps(matrices, problem.y, torch.from_numpy(reference), lam).max(axis=1)
        ratios.append(sklearn_seconds / seconds)
        print(f"m = {m}: batched {seconds:.2f} s, scikit-learn loop {sklearn_seconds:.2f} s, "
              f"ratio {ratios[-1]:.2f}x")
        print("  worst relative gap per lam, ours   :", " ".join(f"{v:.0e}" for v in gaps))
        print("  worst relative gap per lam, sklearn:", " ".join(f"{v:.0e}" for v in gaps_sklearn))
    print(f"ratio: {min(ratios):.2f}")


if __name__ == "__main__":
    main()
