"""Total-variation minimisation with a box constraint:

    x_hat = argmin_{0 <= x <= 1} 1/2 ||y - A x||^2 + lam TV(x),
    TV(x) = sum_{c,i,j} sqrt((D_v x)_{cij}^2 + (D_h x)_{cij}^2)     (isotropic, per channel),

D_v, D_h forward differences with Neumann boundary (zero across the last row / column).
Solved for the whole batch by the primal-dual method of Chambolle & Pock (2011) with
K = [A; D] and dual steps sigma_A, sigma_D:

    p <- (p + sigma_A (A x_bar - y)) / (1 + sigma_A)           (prox of F*, F = 1/2||. - y||^2)
    q <- project_{|q_ij| <= lam}(q + sigma_D D x_bar)
    x+ <- clip(x - tau (A^T p + D^T q), 0, 1),   x_bar <- 2 x+ - x,
with tau (sigma_A ||A||^2 + sigma_D ||D||^2) <= 1 (||D||^2 <= 8).
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.baselines.common import LAMBDA_GRID, check_at_least, operator_maps, operator_norm_squared
from csbench.priors import Prior
from csbench.problem import Problem

GRADIENT_NORM_SQUARED = 8.0  # ||D||^2 <= 8 for 2-D forward differences


def gradient(x: Tensor) -> Tensor:
    """D x for images (B, C, H, W) -> (B, 2, C, H, W): vertical, horizontal forward differences."""
    dv = torch.zeros_like(x)
    dh = torch.zeros_like(x)
    dv[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dh[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([dv, dh], dim=1)


def gradient_adjoint(q: Tensor) -> Tensor:
    """D^T q (= -div q) for q of shape (B, 2, C, H, W) -> (B, C, H, W)."""
    qv, qh = q[:, 0], q[:, 1]
    out = torch.zeros_like(qv)
    out[..., :-1, :] -= qv[..., :-1, :]
    out[..., 1:, :] += qv[..., :-1, :]
    out[..., :, :-1] -= qh[..., :, :-1]
    out[..., :, 1:] += qh[..., :, :-1]
    return out


def total_variation(x: Tensor) -> Tensor:
    """Isotropic TV of each image (B, C, H, W) -> (B,)."""
    return gradient(x).pow(2).sum(dim=1).sqrt().flatten(1).sum(dim=1)


def tv_recover(problem: Problem, lam: float, *, steps: int = 1000, tol: float = 1e-5) -> Tensor:
    """Chambolle-Pock for the box-constrained TV problem above, all B instances at once.

    An instance stops when ||x+ - x|| <= tol ||x+|| (then it is frozen) or after `steps`
    iterations. Returns x_hat, shape (B, C, H, W).
    """
    forward, adjoint = operator_maps(problem.operator)
    y = problem.y
    batch, shape = problem.batch, (problem.batch, *problem.shape)
    norm_a = operator_norm_squared(problem)[:, None]
    norm_k = norm_a + GRADIENT_NORM_SQUARED
    tau = 1.0 / norm_k.sqrt()
    sigma = 1.0 / (tau * norm_k)
    x = torch.zeros(batch, problem.n, dtype=y.dtype, device=y.device)
    x_bar = x.clone()
    p = torch.zeros_like(y)
    q = gradient(x.reshape(shape))
    active = torch.ones(batch, 1, dtype=torch.bool, device=y.device)
    box = (batch, 1, 1, 1, 1)
    for _ in range(steps):
        p_new = (p + sigma * (forward(x_bar) - y)) / (1 + sigma)
        q_new = q + sigma.reshape(box) * gradient(x_bar.reshape(shape))
        q_new = q_new / (q_new.pow(2).sum(dim=1, keepdim=True).sqrt() / lam).clamp_min(1.0)
        step = adjoint(p_new) + gradient_adjoint(q_new).reshape(batch, -1)
        x_new = (x - tau * step).clamp(0, 1)
        change = (x_new - x).norm(dim=1, keepdim=True)
        p = torch.where(active, p_new, p)
        q = torch.where(active.reshape(box), q_new, q)
        x_bar = torch.where(active, 2 * x_new - x, x_bar)
        x = torch.where(active, x_new, x)
        active = active & (change > tol * x_new.norm(dim=1, keepdim=True))
        if not bool(active.any()):
            break
    return x.reshape(shape)


class TotalVariation(Prior):
    name = "tv"
    kind = "sparsity"
    description = "total-variation minimisation, 1/2||y - A x||^2 + lam TV(x), 0 <= x <= 1 (Chambolle-Pock)"
    parameters = {"lam": 0.01}
    tuning = {"lam": LAMBDA_GRID[:-1]}
    links = ("identity",)

    def check_params(self) -> None:
        check_at_least(self, "lam", 0.0)

    def recover(self, problem: Problem) -> Tensor:
        return tv_recover(problem, float(self.params["lam"]))
