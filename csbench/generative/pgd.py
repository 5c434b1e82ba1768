"""Projected gradient descent onto the range of a generator (PGD-GAN, Shah & Hegde, arXiv 1802.08406).

    u_t     = x_t + eta A^T (y - A x_t)                    (gradient step on 1/2 ||y - A x||^2)
    z_{t+1} = argmin_z ||G(z) - u_t||^2                     (projection, Adam warm-started at z_t)
    x_{t+1} = G(z_{t+1})

eta = 0.5 and 10 outer x 100 inner steps, as in the paper. With A_ij ~ N(0, 1/m), A^T A acts
as the identity on differences of range points (restricted eigenvalues), so eta needs no
rescaling. Batched over restarts and instances; the restart with the lowest ||A x - y||^2 wins.
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.generative.priors import GenerativePrior
from csbench.generative.latent import Decode, decode_flat, pick_best
from csbench.measurements.base import LinearOperator
from csbench.problem import Problem


def project_to_range(decode: Decode, u: Tensor, z: Tensor, *, steps: int, lr: float) -> Tensor:
    """argmin_z ||G(z) - u||^2 by Adam from z (R, B, k); u (R, B, n). Returns the new z."""
    z = z.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            (decode_flat(decode, z) - u).pow(2).sum().backward()
            optimiser.step()
    return z.detach()


def pgd_range(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, *, eta: float,
              outer: int, inner: int, lr: float) -> tuple[Tensor, Tensor]:
    """PGD-GAN from z0 (R, B, k). Returns z (R, B, k) and ||A G(z) - y||^2 (R, B)."""
    z = z0
    with torch.no_grad():
        x = decode_flat(decode, z)
    for _ in range(outer):
        with torch.no_grad():
            u = x + eta * operator.adjoint(y - operator.forward(x))
        z = project_to_range(decode, u, z, steps=inner, lr=lr)
        with torch.no_grad():
            x = decode_flat(decode, z)
    with torch.no_grad():
        loss = (operator.forward(x) - y).pow(2).sum(-1)
    return z, loss


class PGDGANPrior(GenerativePrior):
    name = "pgd-gan"
    description = "projected gradient descent onto the range of G, projection by latent optimisation (Shah-Hegde)"
    parameters = {"model": None, "eta": 0.5, "outer": 10, "inner": 100, "lr": 0.05, "restarts": 3}

    def recover(self, problem: Problem) -> Tensor:
        z0 = self.initial_latents(problem, int(self.params["restarts"]))
        z, loss = pgd_range(self.decode, problem.operator, problem.y, z0, eta=float(self.params["eta"]),
                            outer=int(self.params["outer"]), inner=int(self.params["inner"]),
                            lr=float(self.params["lr"]))
        with torch.no_grad():
            x = self.decode(pick_best(z, loss))
        return self.finish(x, problem)
