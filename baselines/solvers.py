"""Batched first-order solvers for sparse recovery, B instances in one tensor program.

Every solver takes the linear map M as two callables on (B, n) / (B, m) tensors,
`forward(c) = M c` and `adjoint(r) = M^T r`, so dense matrices, fast transforms and
compositions such as M = A Psi all plug in the same way. Per-instance quantities (step
sizes, regularisation, stopping) are tensors of shape (B,), and an instance that has met
its stopping rule is frozen, so a result does not depend on what else is in the batch.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


LinearMap = Callable[[Tensor], Tensor]


def per_instance(value: float | Tensor, like: Tensor) -> Tensor:
    """A scalar or a (B,) tensor as a (B, 1) column of `like`'s dtype and device."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(-1, 1).expand(like.shape[0], 1)


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
    (see `LinearOperator.lipschitz_bound`). An instance stops when ||c+ - c|| <= tol * ||c+|| or after
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


def lasso_gap(forward: LinearMap, adjoint: LinearMap, y: Tensor, c: Tensor, lam: Tensor
              ) -> tuple[Tensor, Tensor]:
    """Primal value P(c) and duality gap P(c) - D(theta) >= P(c) - P* of the Lasso, per instance:

        P(c) = 1/2 ||r||^2 + lam ||c||_1,  r = y - M c,
        theta = r min(1, lam / ||M^T r||_inf)  (dual feasible),  D(theta) = <y, theta> - ||theta||^2 / 2.

    c: (..., B, n); y: (B, m); lam broadcasts to (..., B, 1). Sums in float64. Returns two
    (..., B, 1) tensors."""
    residual = y - forward(c)
    return gap_from_residual(y, residual, adjoint(residual), c, lam)


def gap_from_residual(y: Tensor, residual: Tensor, correlation: Tensor, c: Tensor, lam: Tensor
                      ) -> tuple[Tensor, Tensor]:
    """`lasso_gap` given r = y - M c and M^T r (or -M^T r: only its absolute values count)."""
    scale = (lam / correlation.abs().amax(dim=-1, keepdim=True)).clamp(max=1.0).double()
    residual = residual.double()
    squared = residual.pow(2).sum(dim=-1, keepdim=True)
    primal = 0.5 * squared + lam.double() * c.double().abs().sum(dim=-1, keepdim=True)
    dual = scale * (y.double() * residual).sum(dim=-1, keepdim=True) - 0.5 * scale ** 2 * squared
    return primal, primal - dual


def fista_gap(forward: LinearMap, adjoint: LinearMap, y: Tensor, lam: Tensor, lipschitz: Tensor, *,
              steps: int = 10000, tol: float = 1e-5, check: int = 10, x0: Tensor | None = None) -> Tensor:
    """Solve  min_c 1/2 ||y_b - M_b c||^2 + lam_gb ||c||_1  for a grid of G values of lam per instance.

    FISTA (Beck & Teboulle 2009) without restart, step 1/L_b, g(c) = M^T (M c - y):
        c+ = S_{lam/L}(z - g(z) / L),   z+ = c+ + beta (c+ - c),
        beta = (t - 1) / t+,   t+ = (1 + sqrt(1 + 4 t^2)) / 2.
    M and M^T are applied to c+ (two products per iteration, as for z) and g(z+) = g(c+) +
    beta (g(c+) - g(c)) by linearity, so the residual y - M c+ and M^T of it, which the duality gap
    needs, cost no product.
    Every `check` iterations an instance whose relative duality gap (`lasso_gap`) is at most `tol`
    keeps its c as its answer (it iterates on, unseen), so  P(c) - P* <= tol P(c)  holds for each
    answer whatever the batch; rows of lam whose instances have all stopped leave the batch.

    forward, adjoint: M and M^T on (..., B, n) / (..., B, m), leading dimensions broadcast.
    y: (B, m); lam: (G, B); lipschitz: (B,) bounds on ||M_b||_2^2. x0: (G, B, n) start
    (zeros by default). Returns c, shape (G, B, n).
    """
    grid, batch = lam.shape
    lam = lam.to(y.dtype)[..., None]
    step = (1.0 / lipschitz.to(y.dtype))[:, None]
    threshold = lam * step
    if x0 is None:                               # c = 0: M c - y = -y, g(c) = -M^T y
        slope = adjoint(-y).expand(grid, -1, -1)
        x = slope.new_zeros(slope.shape)
    else:
        x = x0.clone()
        slope = adjoint(forward(x) - y)
    slope_z = slope                              # g(z), z = c
    result = x.clone()
    rows = torch.arange(grid, device=y.device)   # the lam rows still in the batch
    active = torch.ones(grid, batch, 1, dtype=torch.bool, device=y.device)
    z, t = x, 1.0
    for iteration in range(1, steps + 1):
        v = torch.addcmul(z, step, slope_z, value=-1)
        x_new = v - torch.minimum(torch.maximum(v, -threshold), threshold)   # S_{lam/L}(v)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        weight, t = 1 + (t - 1) / t_new, t_new   # z+ = lerp(c, c+, 1 + beta)
        fit = forward(x_new) - y
        slope_new = adjoint(fit)
        z, slope_z = torch.lerp(x, x_new, weight), torch.lerp(slope, slope_new, weight)
        x, slope = x_new, slope_new
        if iteration % check and iteration < steps:
            continue
        primal, gap = gap_from_residual(y, -fit, slope, x, lam[rows])
        still = active & (gap > tol * primal)
        if not bool(torch.equal(still, active)):   # some stop: keep their c
            result[rows] = torch.where(active, x, result[rows])
        active = still
        keep = active.any(dim=1)[:, 0]
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            rows, x, z, slope, slope_z, active, threshold = (
                v[keep] for v in (rows, x, z, slope, slope_z, active, threshold))
    result[rows] = torch.where(active, x, result[rows])
    return result


def lasso_continuation(forward: LinearMap, adjoint: LinearMap, y: Tensor, lam: Tensor,
                       lipschitz: Tensor, *, stages: int = 2, factor: float = 0.2, steps: int = 10000,
                       tol: float = 1e-5) -> Tensor:
    """`fista_gap` with continuation: warm-started solves for lam_k = lam / factor^k,
    k = stages, ..., 1 (to a gap min(100 tol, 1e-2)), then for lam itself. Same minimiser, far
    fewer iterations for small lam; each instance's path depends on its own lam only, so results
    do not depend on the batch. lam: (G, B). Returns c, shape (G, B, n).

    (A stage tolerance of 1 or more, 100 tol for tol >= 1e-2, is met at a stage's first check: the
    continuation was lost at loose tolerances. MNIST, m = 100, lam = 1e-3 (bench_peers): to an
    objective gap of 1e-4, 3,300 iterations without it, and about half the time with the cap.)"""
    c = None
    for k in range(stages, 0, -1):
        c = fista_gap(forward, adjoint, y, lam / factor ** k, lipschitz, steps=steps, tol=min(100 * tol, 1e-2), x0=c)
    return fista_gap(forward, adjoint, y, lam, lipschitz, steps=steps, tol=tol, x0=c)
