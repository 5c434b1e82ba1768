"""Batched first-order solvers for sparse recovery, B instances in one tensor program.

Every solver takes the linear map M as two callables on (B, n) / (B, m) tensors,
`forward(c) = M c` and `adjoint(r) = M^T r`, so dense matrices, fast transforms and
compositions such as M = A Psi all plug in the same way. Per-instance quantities (step
sizes, regularisation, stopping) are tensors of shape (B,), and an instance that has met
its stopping rule is frozen, so a result does not depend on what else is in the batch.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from csbench.measurements.base import power_iteration

LinearMap = Callable[[Tensor], Tensor]


def per_instance(value: float | Tensor, like: Tensor) -> Tensor:
    """A scalar or a (B,) tensor as a (B, 1) column of `like`'s dtype and device."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(-1, 1).expand(like.shape[0], 1)


def lipschitz_constant(forward: LinearMap, adjoint: LinearMap, n: int, batch: int, *,
                       iterations: int = 30, margin: float = 1.05, dtype: torch.dtype = torch.float32,
                       device: str | torch.device = "cpu", generator: torch.Generator | None = None
                       ) -> Tensor:
    """An upper estimate of ||M_b||_2^2 per instance, shape (B,).

    Power iteration  v <- M^T M v / ||M^T M v||  from a random start (seeded by `generator`,
    or a fixed seed), times `margin` since power iteration approaches ||M||^2 from below.
    Cheaper than an SVD: 2 * `iterations` applications of M and M^T.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    v = torch.randn(batch, n, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    return power_iteration(forward, adjoint, v, iterations) * margin


def soft_threshold(x: Tensor, threshold: Tensor) -> Tensor:
    """prox of threshold * ||.||_1:  sign(x) * max(|x| - threshold, 0)."""
    return torch.sign(x) * (x.abs() - threshold).clamp_min(0)


def fista_l1(forward: LinearMap, adjoint: LinearMap, y: Tensor, lam: float | Tensor,
             lipschitz: float | Tensor, *, steps: int = 1000, tol: float = 1e-5,
             x0: Tensor | None = None) -> Tensor:
    """Solve  min_c 1/2 ||y_b - M_b c||^2 + lam_b ||c||_1  for all B instances at once.

    FISTA (Beck & Teboulle 2009) with step 1/L_b and soft-thresholding,
        c+ = S_{lam/L}(z - M^T (M z - y) / L),   z+ = c+ + beta (c+ - c),
    with the gradient-based adaptive restart of O'Donoghue & Candes (2015): the momentum
    is reset for an instance when (z - c+) . (c+ - c) > 0.

    y: (B, m). lam, lipschitz: scalars or (B,) tensors; `lipschitz` must bound ||M_b||_2^2
    (see `lipschitz_constant`). An instance stops when ||c+ - c|| <= tol * ||c+|| or after
    `steps` iterations. x0: (B, n) start, zeros by default. Returns c, shape (B, n).
    """
    x = adjoint(torch.zeros_like(y)) if x0 is None else x0.clone()
    step = 1.0 / per_instance(lipschitz, y)
    threshold = per_instance(lam, y) * step
    z = x.clone()
    t = torch.ones_like(step)
    active = torch.ones_like(step, dtype=torch.bool)
    for _ in range(steps):
        x_new = soft_threshold(z - step * adjoint(forward(z) - y), threshold)
        diff = x_new - x
        restart = ((z - x_new) * diff).sum(dim=1, keepdim=True) > 0
        t_new = torch.where(restart, torch.ones_like(t), (1 + torch.sqrt(1 + 4 * t * t)) / 2)
        beta = torch.where(restart, torch.zeros_like(t), (t - 1) / t_new)
        z_new = x_new + beta * diff
        x = torch.where(active, x_new, x)
        z = torch.where(active, z_new, z)
        t = torch.where(active, t_new, t)
        change = diff.norm(dim=1, keepdim=True)
        active = active & (change > tol * x_new.norm(dim=1, keepdim=True))
        if not bool(active.any()):
            break
    return x


def lasso_path(forward: LinearMap, adjoint: LinearMap, y: Tensor, lam: float | Tensor,
               lipschitz: float | Tensor, *, stages: int = 2, factor: float = 0.2, steps: int = 1000,
               tol: float = 1e-5) -> Tensor:
    """`fista_l1` with continuation: warm-started solves for lam_k = lam / factor^k,
    k = stages, ..., 1 (at a 10x looser tolerance), then for lam itself. Same minimiser,
    far fewer iterations for small lam; the path depends on each instance's lam only, so
    results do not depend on the batch. Returns c, shape (B, n)."""
    c = None
    for k in range(stages, 0, -1):
        c = fista_l1(forward, adjoint, y, per_instance(lam, y)[:, 0] / factor ** k, lipschitz,
                     steps=steps, tol=10 * tol, x0=c)
    return fista_l1(forward, adjoint, y, lam, lipschitz, steps=steps, tol=tol, x0=c)
