"""One task's solver work for lasso-wavelet and tv, as `compare` runs it: every lam of the tuning
grid on 16 MNIST validation digits, then the chosen lam on 64 test digits (Gaussian A, sigma = 0.1),
the priors' code against the previous algorithm kept below as a plain reference:

- Lasso: the whole batch in one program, FISTA with M^T (M z - y) computed at z every iteration
  and the duality gap computed with two more products every 10 iterations;
- TV: one Chambolle-Pock solve per lam (dual p in R^m) with fixed steps tau = sigma = 1/||K||,
  the whole batch in one program. The prior now adapts its steps (baselines/tv.py), so the TV
  rows compare two algorithms: their MSE differences are the fixed steps' under-solving at small
  lam, not rounding.

Same step caps, tolerances and stopping rules; the operators' Lipschitz bounds are computed once,
before timing. Prints per (prior, m) both times, their ratio and the largest relative
difference of the validation MSE per lam and of the test MSE, and ends with `ratio: X`, the
reference's total time over ours.
    python benchmarks/bench_sparsity_tasks.py [--m 100,750] [--priors lasso-wavelet,tv] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import torch

from csbench.baselines.common import LAMBDA_GRID, dense_maps, operator_norm_squared
from csbench.baselines.lasso import LassoWavelet
from csbench.baselines.solvers import lasso_gap, soft_threshold
from csbench.baselines.transforms import Basis
from csbench.baselines.tv import GRADIENT_NORM_SQUARED, gradient, gradient_adjoint, tv_solve
from csbench.datasets import load_dataset
from csbench.runner import Task, make_problem


# -- the previous algorithms ------------------------------------------------------------------------
def reference_fista_gap(forward, adjoint, y, lam, lipschitz, *, steps, tol, check=10, x0=None):
    grid, batch = lam.shape
    lam = lam.to(y.dtype)[..., None]
    step = (1.0 / lipschitz.to(y.dtype))[:, None].expand(batch, 1)
    x = y.new_zeros(grid, batch, adjoint(y).shape[-1]) if x0 is None else x0.clone()
    result = x.clone()
    rows = torch.arange(grid)
    z, t = x.clone(), x.new_ones(grid, batch, 1)
    active = torch.ones(grid, batch, 1, dtype=torch.bool)
    for iteration in range(1, steps + 1):
        x_new = soft_threshold(z - step * adjoint(forward(z) - y), lam[rows] * step)
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        z = torch.where(active, x_new + (t - 1) / t_new * (x_new - x), z)
        x, t = torch.where(active, x_new, x), torch.where(active, t_new, t)
        if iteration % check and iteration < steps:
            continue
        primal, gap = lasso_gap(forward, adjoint, y, x, lam[rows])
        active = active & (gap > tol * primal)
        result[rows] = x
        keep = active.any(dim=1)[:, 0]
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            rows, x, z, t, active = rows[keep], x[keep], z[keep], t[keep], active[keep]
    return result


def reference_lasso(problem, lams, basis="wavelet"):
    psi = Basis(basis, problem.shape)
    forward, adjoint = dense_maps(psi.analyze(problem.operator.dense()))
    lam = torch.tensor(lams)[:, None].expand(-1, problem.batch)
    lipschitz = operator_norm_squared(problem)
    c = None
    for k in (2, 1, 0):   # continuation: lam / 0.2^k, to a 100x looser gap before the last stage
        c = reference_fista_gap(forward, adjoint, problem.y, lam / 0.2 ** k, lipschitz,
                                steps=LassoWavelet.steps, tol=LassoWavelet.tol * (100 if k else 1), x0=c)
    x = psi.synthesize(c).clamp(0, 1)
    return x.reshape(*x.shape[:-1], *problem.shape)


def reference_tv(problem, lam, steps=1000, tol=1e-5):
    forward, adjoint = dense_maps(problem.operator.dense())
    y, batch, shape = problem.y, problem.batch, (problem.batch, *problem.shape)
    norm_k = operator_norm_squared(problem)[:, None] + GRADIENT_NORM_SQUARED
    tau = 1.0 / norm_k.sqrt()
    sigma = 1.0 / (tau * norm_k)
    x = torch.zeros(batch, problem.n)
    x_bar, p, q = x.clone(), torch.zeros_like(y), gradient(x.reshape(shape))
    active = torch.ones(batch, 1, dtype=torch.bool)
    box = (batch, 1, 1, 1, 1)
    for _ in range(steps):
        p_new = (p + sigma * (forward(x_bar) - y)) / (1 + sigma)
        q_new = q + sigma.reshape(box) * gradient(x_bar.reshape(shape))
        q_new = q_new / (q_new.pow(2).sum(dim=1, keepdim=True).sqrt() / lam).clamp_min(1.0)
        x_new = (x - tau * (adjoint(p_new) + gradient_adjoint(q_new).reshape(batch, -1))).clamp(0, 1)
        change = (x_new - x).norm(dim=1, keepdim=True)
        p = torch.where(active, p_new, p)
        q = torch.where(active.reshape(box), q_new, q)
        x_bar = torch.where(active, 2 * x_new - x, x_bar)
        x = torch.where(active, x_new, x)
        active = active & (change > tol * x_new.norm(dim=1, keepdim=True))
        if not bool(active.any()):
            break
    return x.reshape(shape)


# -- the priors' code -------------------------------------------------------------------------------
SOLVERS = {
    "lasso-wavelet": (LAMBDA_GRID, lambda problem, lams: LassoWavelet().solve(problem, lams),
                      lambda problem, lams: reference_lasso(problem, lams)),
    "tv": (LAMBDA_GRID[:-1], lambda problem, lams: tv_solve(problem, lams),
           lambda problem, lams: torch.stack([reference_tv(problem, lam) for lam in lams])),
}


def task(solve, grid, validation, test, x_val, x_test):
    """Seconds, validation MSE per lam, test MSE per image of one task's solver work."""
    start = time.perf_counter()
    scores = (solve(validation, grid) - x_val).pow(2).flatten(2).mean(dim=(1, 2)).double()
    x_hat = solve(test, [grid[int(scores.argmin())]])[0]
    seconds = time.perf_counter() - start
    return seconds, scores, (x_hat - x_test).pow(2).flatten(1).mean(dim=1).double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", default="100,750")
    parser.add_argument("--priors", default="lasso-wavelet,tv")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    x_val, x_test = data.split("validation", 16), data.split("test", 64)
    print(f"16 validation + 64 test MNIST digits, Gaussian A, sigma = 0.1, "
          f"{torch.get_num_threads()} thread(s)")
    totals = [0.0, 0.0]
    for m in (int(v) for v in args.m.split(",")):
        for name in args.priors.split(","):
            grid, ours, reference = SOLVERS[name]
            task_spec = Task("mnist", "gaussian", name, m, 0.1, 0)
            validation = make_problem(x_val, task_spec, "validation", "cpu")
            test = make_problem(x_test, task_spec, "test", "cpu")
            for problem in (validation, test):
                problem.operator.lipschitz_bound()   # cached on the operator: the same for both
            new = task(ours, grid, validation, test, x_val, x_test)
            old = task(reference, grid, validation, test, x_val, x_test)
            totals[0] += new[0]
            totals[1] += old[0]
            score_diff = float(((new[1] - old[1]).abs() / old[1]).max())
            test_diff = float((new[2].mean() - old[2].mean()).abs() / old[2].mean())
            print(f"{name:14s} m = {m:4d}: ours {new[0]:6.2f} s, reference {old[0]:6.2f} s, "
                  f"ratio {old[0] / new[0]:5.2f}x; max relative difference: validation MSE per lam "
                  f"{score_diff:.1e}, test MSE {test_diff:.1e}", flush=True)
    print(f"total: ours {totals[0]:.1f} s, reference {totals[1]:.1f} s")
    print(f"ratio: {totals[1] / totals[0]:.2f}")


if __name__ == "__main__":
    main()
