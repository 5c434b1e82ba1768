"""SparseGen (Dhar, Grover & Ermon, arXiv 1807.01442): a generator plus a sparse deviation.

    x = G(z) + v,   v = Psi c  sparse in the orthonormal Haar wavelet basis Psi,

    minimise  F(z, c) = ||A (G(z) + Psi c) - y||^2 + lam ||c||_1 + penalty ||z||^2

jointly: every iteration takes an Adam step on z and a proximal-gradient (ISTA) step on c,

    c <- S_{t lam}(c - t 2 Psi^T A^T r),   r = A (G(z) + Psi c) - y,   t = 1 / (2 ||A||^2),

both from the same residual. The sparse term lets x leave the range of G, which removes the
error floor of plain latent optimisation (`vae`, `dcgan`) at large m. Batched over restarts
and instances; the restart with the lowest F wins.
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.baselines.solvers import soft_threshold
from csbench.baselines.transforms import Basis
from csbench.generative.priors import GenerativePrior
from csbench.generative.latent import Decode, decode_flat, pick_best
from csbench.measurements.base import LinearOperator
from csbench.problem import Problem


def sparsegen(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, basis: Basis, *,
              lam: float, penalty: float, steps: int, lr: float) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise F from (z0 (R, B, k), c = 0). Returns z (R, B, k), c (R, B, n) and F (R, B)."""
    step = 0.5 / operator.norm_squared().to(y.device).clamp_min(1e-30).unsqueeze(-1)   # (B, 1)
    z = z0.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    c = torch.zeros(*z0.shape[:-1], operator.n, dtype=y.dtype, device=y.device)

    def residual() -> Tensor:
        return operator.forward(decode_flat(decode, z) + basis.synthesize(c)) - y

    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            r = residual()
            (r.pow(2).sum() + penalty * z.pow(2).sum()).backward()
            optimiser.step()
            grad_c = 2 * basis.analyze(operator.adjoint(r.detach()))
            c = soft_threshold(c - step * grad_c, step * lam)
    with torch.no_grad():
        objective = residual().pow(2).sum(-1) + lam * c.abs().sum(-1) + penalty * z.pow(2).sum(-1)
    return z.detach(), c, objective


class SparseGenPrior(GenerativePrior):
    name = "sparsegen"
    description = "x = G(z) + v, v sparse in Haar wavelets: ||A x - y||^2 + lam ||Psi^T v||_1 (Dhar-Grover-Ermon)"
    parameters = {"model": None, "lam": 0.1, "penalty": 0.001, "steps": 1000, "lr": 0.05, "restarts": 2}
    tuning = {"lam": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}

    def recover(self, problem: Problem) -> Tensor:
        basis = Basis("wavelet", problem.shape, device=problem.device)
        z0 = self.initial_latents(problem, int(self.params["restarts"]))
        z, c, objective = sparsegen(self.decode, problem.operator, problem.y, z0, basis,
                                    lam=float(self.params["lam"]), penalty=float(self.params["penalty"]),
                                    steps=int(self.params["steps"]), lr=float(self.params["lr"]))
        with torch.no_grad():
            x = decode_flat(self.decode, pick_best(z, objective)) + basis.synthesize(pick_best(c, objective))
        return self.finish(x, problem)
