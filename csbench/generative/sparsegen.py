"""SparseGen (Dhar, Grover & Ermon, arXiv 1807.01442): a generator plus a sparse deviation.

    x = G(z) + v,   v = Psi c  sparse in the orthonormal Haar wavelet basis Psi,

    minimise  F(z, c) = ||A (G(z) + Psi c) - y||^2 + lam ||c||_1 + penalty ||z||^2

jointly: every iteration takes an Adam step on z and a proximal-gradient (ISTA) step on c,

    c <- S_{t lam}(c - t 2 Psi^T A^T r),   r = A (G(z) + Psi c) - y,   t = 1 / (2 ||A||^2),

both from the same residual, whose A^T r serves both gradients (2 J_G^T A^T r for z by
backpropagation through G only). The sparse term lets x leave the range of G, which removes the
error floor of plain latent optimisation (`vae`, `dcgan`) at large m. Batched over restarts
and instances, and over the points of the lam tuning grid (lam per restart slot); the restart
with the lowest F wins.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from csbench.baselines.solvers import soft_threshold
from csbench.baselines.transforms import Basis
from csbench.generative.latent import Decode, decode_flat, pick_best
from csbench.generative.priors import GenerativePrior
from csbench.measurements.base import LinearOperator
from csbench.problem import Problem


def sparsegen(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, basis: Basis, *,
              lam: float | Tensor, penalty: float, steps: int, lr: float) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise F from (z0 (R, B, k), c = 0); lam a number or one per restart slot (R,). Returns
    z (R, B, k), c (R, B, n) and F (R, B)."""
    step = 0.5 / operator.norm_squared().to(y.device).clamp_min(1e-30).unsqueeze(-1)   # (B, 1)
    lam = torch.as_tensor(lam, dtype=y.dtype, device=y.device).reshape(-1, 1)          # (R or 1, 1)
    z = z0.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    c = torch.zeros(*z0.shape[:-1], operator.n, dtype=y.dtype, device=y.device)
    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            g = decode_flat(decode, z)
            adjoint = operator.adjoint(operator.forward(g.detach() + basis.synthesize(c)) - y)   # A^T r
            torch.autograd.backward((g, penalty * z.pow(2).sum()), (2 * adjoint, None))
            optimiser.step()
            c = soft_threshold(c - step * 2 * basis.analyze(adjoint), step * lam[..., None])
    with torch.no_grad():
        residual = operator.forward(decode_flat(decode, z) + basis.synthesize(c)) - y
        objective = residual.pow(2).sum(-1) + lam * c.abs().sum(-1) + penalty * z.pow(2).sum(-1)
    return z.detach(), c, objective


class SparseGenPrior(GenerativePrior):
    name = "sparsegen"
    description = "x = G(z) + v, v sparse in Haar wavelets: ||A x - y||^2 + lam ||Psi^T v||_1 (Dhar-Grover-Ermon)"
    parameters = {"model": None, "lam": 0.1, "penalty": 0.001, "steps": 1000, "lr": 0.05, "restarts": 2}
    tuning = {"lam": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}

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
