"""SparseGen (Dhar, Grover & Ermon, arXiv 1807.01442): a generator plus a sparse deviation.

    x = G(z) + v,   v = Psi c  sparse in the orthonormal Haar wavelet basis Psi,

    minimise  F(z, c) = ||A (G(z) + Psi c) - y||^2 + lam ||c||_1 + penalty ||z||^2

jointly: every iteration takes an Adam step on z and a proximal-gradient (ISTA) step on c,

    c <- S_{t lam}(c - t 2 Psi^T A^T r),   r = A (G(z) + Psi c) - y,   t = 1 / (2 ||A||^2),

both from the same residual, whose gradient 2 A^T r serves both (J_G^T 2 A^T r for z). The
sparse term lets x leave the range of G, which removes the error floor of plain latent
optimisation (`vae`, `dcgan`) at large m. Batched over restarts and instances, and over the
points of the lam tuning grid (lam per restart slot); the restart with the lowest F wins.

Per step, latent.py's fast paths: the generator's pullback in place of autograd (which plug-in
generators keep), `Adam`, and `data_gradient` (instance-major for dense A, the Gram matrix for
m > n / 2).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from csbench.baselines.solvers import soft_threshold
from csbench.baselines.transforms import Basis
from csbench.generative.latent import Adam, Decode, data_gradient, decode_flat, pick_best, pullback_or_autograd
from csbench.generative.priors import GenerativePrior
from csbench.measurements.base import LinearOperator
from csbench.progress import step_progress
from csbench.problem import Problem


def sparsegen(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, basis: Basis, *,
              lam: float | Tensor, penalty: float, steps: int, lr: float) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise F from (z0 (R, B, k), c = 0); lam a number or one per restart slot (R,). Returns
    z (R, B, k), c (R, B, n) and F (R, B). Each step, with x = G(z) + Psi c and d = 2 A^T (A x - y):

        z <- Adam(z, J_G(z)^T d + 2 penalty z),   c <- S_{t lam}(c - t Psi^T d)"""
    gradient, instance_major = data_gradient(operator, y, "identity")               # x -> 2 A^T (A x - y)
    layout = (lambda a: a.transpose(0, 1)) if instance_major else (lambda a: a)     # (R, B, .) <-> its layout
    lam = torch.as_tensor(lam, dtype=y.dtype, device=y.device).reshape(-1, 1)         # (R or 1, 1)
    t = 0.5 / operator.norm_squared().to(y.device).clamp_min(1e-30)[:, None]          # (B, 1)
    step, threshold = layout(t[None]), layout(t * lam[..., None])                    # t, t lam as (R, B, 1)
    decode_and_pullback = pullback_or_autograd(decode)
    with torch.no_grad():
        z = layout(z0).clone(memory_format=torch.contiguous_format)
        c = y.new_zeros(*z.shape[:-1], operator.n)
        optimiser = Adam(z, lr)
        for i in range(steps):
            step_progress("sparsegen", i, steps)
            g, pullback = decode_and_pullback(z)
            d = gradient(g + basis.synthesize(c))
            optimiser.step(pullback(d).add_(z, alpha=2 * penalty))
            c = soft_threshold(c - step * basis.analyze(d), threshold)
        z, c = layout(z), layout(c)
        residual = operator.forward(decode_flat(decode, z) + basis.synthesize(c)) - y
        objective = residual.pow(2).sum(-1) + lam * c.abs().sum(-1) + penalty * z.pow(2).sum(-1)
    return z, c, objective


class SparseGenPrior(GenerativePrior):
    name = "sparsegen"
    description = "x = G(z) + v, v sparse in Haar wavelets: ||A x - y||^2 + lam ||Psi^T v||_1 (Dhar-Grover-Ermon)"
    parameters = {"model": None, "lam": 0.1, "penalty": 0.001, "steps": 1000, "lr": 0.05, "restarts": 2}
    tuning = {"lam": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}   # m = 750 picks 0.003 (README, Fairness)

    def recover(self, problem: Problem) -> Tensor:
        return self.recover_lams(problem, [float(self.params["lam"])])[0]

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """A grid over lam alone runs as one program, the grid points side by side as restart
        slots; each point draws its starts in grid order, as consecutive `recover` calls would."""
        if any(set(point) != {"lam"} for point in grid):
            return super().recover_grid(problem, grid)
        try:
            return self.recover_lams(problem, [float(point["lam"]) for point in grid])
        except Exception as exc:  # a failure of the shared program fails every point
            return [exc] * len(grid)

    def recover_lams(self, problem: Problem, lams: list[float]) -> list[Tensor]:
        """x_hat (B, C, H, W) for each lam, all in one batched run of `sparsegen`."""
        restarts = int(self.params["restarts"])
        basis = Basis("wavelet", problem.shape, device=problem.device)
        z0 = torch.cat([self.initial_latents(problem, restarts) for _ in lams])          # (P R, B, k)
        lam = torch.tensor(lams).repeat_interleave(restarts)
        z, c, objective = sparsegen(self.decode, problem.operator, problem.y, z0, basis, lam=lam,
                                    penalty=float(self.params["penalty"]), steps=int(self.params["steps"]),
                                    lr=float(self.params["lr"]))
        results = []
        with torch.no_grad():
            for point in range(len(lams)):
                part = slice(point * restarts, (point + 1) * restarts)
                best = objective[part]
                x = decode_flat(self.decode, pick_best(z[part], best)) + basis.synthesize(pick_best(c[part], best))
                results.append(self.finish(x, problem))
        return results
