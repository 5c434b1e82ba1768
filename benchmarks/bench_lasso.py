"""Batched FISTA (csbench.baselines.solvers.fista_l1) against scikit-learn's Lasso (one fit per
instance, the named reference) and cvxpy, on the same B instances of

    min_c 1/2 ||y_b - A_b c||^2 + lam ||c||_1,   A_b ~ N(0, 1/m),  c* sparse,  y = A c* + e.

Prints wall-clock seconds, the time ratios, and the objective agreement measured in the same run.
    python benchmarks/bench_lasso.py [--batch 32] [--n 784] [--m 200] [--lam 0.1] [--cvxpy 32]
"""
from __future__ import annotations

import argparse
import time

import cvxpy as cp
import numpy as np
import torch
from sklearn.linear_model import Lasso

from csbench.baselines.common import operator_maps
from csbench.baselines.solvers import fista_l1, lipschitz_constant
from csbench.measurements import DenseOperator


def make_instances(batch: int, n: int, m: int, sparsity: int, sigma: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    matrices = torch.randn(batch, m, n, generator=g, dtype=torch.float64) / m ** 0.5
    truth = torch.zeros(batch, n, dtype=torch.float64)
    support = torch.rand(batch, n, generator=g).argsort(dim=1)[:, :sparsity]
    truth.scatter_(1, support, torch.rand(batch, sparsity, generator=g, dtype=torch.float64))
    noise = torch.randn(batch, m, generator=g, dtype=torch.float64) * sigma / m ** 0.5
    return matrices, (matrices @ truth[..., None])[..., 0] + noise


def objective(a: np.ndarray, y: np.ndarray, c: np.ndarray, lam: float) -> float:
    return 0.5 * float(np.sum((y - a @ c) ** 2)) + lam * float(np.abs(c).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n", type=int, default=784)
    parser.add_argument("--m", type=int, default=200)
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--sparsity", type=int, default=50)
    parser.add_argument("--tol", type=float, default=1e-6, help="FISTA relative-change tolerance")
    parser.add_argument("--cvxpy", type=int, default=32, help="instances solved by cvxpy (it is slow)")
    args = parser.parse_args()
    matrices, y = make_instances(args.batch, args.n, args.m, args.sparsity, 0.1, seed=0)
    forward, adjoint = operator_maps(DenseOperator(matrices))  # what the lasso priors use

    start = time.perf_counter()
    lipschitz = lipschitz_constant(forward, adjoint, args.n, args.batch, dtype=torch.float64)
    ours = fista_l1(forward, adjoint, y, args.lam, lipschitz, steps=5000, tol=args.tol).numpy()
    fista_seconds = time.perf_counter() - start

    single = matrices.float()
    forward32, adjoint32 = operator_maps(DenseOperator(single))
    start = time.perf_counter()
    lipschitz32 = lipschitz_constant(forward32, adjoint32, args.n, args.batch)
    ours32 = fista_l1(forward32, adjoint32, y.float(), args.lam, lipschitz32, steps=5000, tol=1e-4)
    fista32_seconds = time.perf_counter() - start

    a_all, y_all = matrices.numpy(), y.numpy()
    start = time.perf_counter()
    sklearn = np.stack([Lasso(alpha=args.lam / args.m, fit_intercept=False, tol=1e-8, max_iter=100000)
                        .fit(a_all[b], y_all[b]).coef_ for b in range(args.batch)])
    sklearn_seconds = time.perf_counter() - start

    count = min(args.cvxpy, args.batch)
    start = time.perf_counter()
    cvx_values = []
    for b in range(count):
        c = cp.Variable(args.n)
        cvx_values.append(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(y_all[b] - a_all[b] @ c)
                                                 + args.lam * cp.norm1(c))).solve())
    cvxpy_seconds = time.perf_counter() - start

    f_ours = np.array([objective(a_all[b], y_all[b], ours[b], args.lam) for b in range(args.batch)])
    f_sklearn = np.array([objective(a_all[b], y_all[b], sklearn[b], args.lam) for b in range(args.batch)])
    gap_cvx = (f_ours[:count] - np.array(cvx_values)) / np.array(cvx_values)
    print(f"B={args.batch} n={args.n} m={args.m} lam={args.lam} (float64, {torch.get_num_threads()} threads)")
    print(f"fista_l1 batched : {fista_seconds:8.2f} s")
    print(f"fista_l1 float32, tol 1e-4 (the priors' setting): {fista32_seconds:.2f} s")
    print(f"sklearn Lasso    : {sklearn_seconds:8.2f} s  "
          f"ratio sklearn/fista = {sklearn_seconds / fista_seconds:.2f}x")
    per_instance = cvxpy_seconds / count * args.batch
    print(f"cvxpy ({count} inst.): {cvxpy_seconds:8.2f} s  ratio cvxpy/fista (per {args.batch}) = "
          f"{per_instance / fista_seconds:.1f}x")
    print(f"objective rel. diff vs sklearn: max {np.max(np.abs(f_ours - f_sklearn) / f_sklearn):.2e}")
    print(f"objective rel. gap vs cvxpy   : max {np.max(np.abs(gap_cvx)):.2e} (mean {np.mean(gap_cvx):+.2e})")
    print(f"coefficients max |diff| vs sklearn: {np.max(np.abs(ours - sklearn)):.2e}")
    f_ours32 = np.array([objective(a_all[b], y_all[b], ours32[b].double().numpy(), args.lam)
                         for b in range(args.batch)])
    print(f"float32 objective rel. diff vs sklearn: max {np.max(np.abs(f_ours32 - f_sklearn) / f_sklearn):.2e}")


if __name__ == "__main__":
    main()
