"""Projected gradient descent onto the range of a generator (PGD-GAN, Shah & Hegde, arXiv 1802.08406).

    u_t     = x_t + eta A^T (y - A x_t)                    (gradient step on 1/2 ||y - A x||^2)
    z_{t+1} = argmin_z ||G(z) - u_t||^2                     (projection, Adam warm-started at z_t)
    x_{t+1} = G(z_{t+1})

eta = 0.5 and 10 outer x 100 inner steps, as in the paper. With A_ij ~ N(0, 1/m), A^T A acts
as the identity on differences of range points (restricted eigenvalues), so eta needs no
rescaling. Batched over restarts and instances; the restart with the lowest ||A x - y||^2 wins.
The projection runs on latent.py's fast paths: the generator's pullback in place of autograd
(which plug-in generators keep) and `Adam`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from csbench.generative.priors import GenerativePrior
from csbench.generative.latent import Adam, Decode, DecodeAndPullback, pick_best, pullback_or_autograd
from csbench.measurements.base import LinearOperator
from csbench.problem import Problem
from csbench.progress import step_progress

Decoded = tuple[Tensor, Callable[[Tensor], Tensor]]   # (G(z), v -> J_G(z)^T v) at the current z


def project_to_range(decode_and_pullback: DecodeAndPullback, u: Tensor, z: Tensor, decoded: Decoded, *,
                     steps: int, lr: float) -> tuple[Tensor, Decoded]:
    """argmin_z ||G(z) - u||^2 by Adam from z (R, B, k), gradient J_G(z)^T 2 (G(z) - u); u (R, B, n),
    decoded = decode_and_pullback(z). Updates z in place; returns it and decode_and_pullback(z)."""
    optimiser = Adam(z, lr)
    for _ in range(steps):
        g, pullback = decoded
        optimiser.step(pullback(2 * (g - u)))
        decoded = decode_and_pullback(z)
    return z, decoded


def pgd_range(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, *, eta: float,
              outer: int, inner: int, lr: float) -> tuple[Tensor, Tensor]:
    """PGD-GAN from z0 (R, B, k). Returns z (R, B, k) and ||A G(z) - y||^2 (R, B). x_t = G(z_t) is
    the projection's last decode, which also gives the next projection its first gradient."""
    decode_and_pullback = pullback_or_autograd(decode)
    with torch.no_grad():
        z = z0.clone()
        decoded = decode_and_pullback(z)
        for step in range(outer):
            step_progress("pgd-gan, projected gradient", step, outer)
            x = decoded[0]
            u = x + eta * operator.adjoint(y - operator.forward(x))
            z, decoded = project_to_range(decode_and_pullback, u, z, decoded, steps=inner, lr=lr)
        loss = (operator.forward(decoded[0]) - y).pow(2).sum(-1)
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
