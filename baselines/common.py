"""What every sparsity baseline shares: the products with A, the synthesis map M = A Psi of a
problem, its Lipschitz constant, and the way coefficients become clipped images."""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.baselines.solvers import LinearMap
from csbench.baselines.transforms import Basis
from csbench.errors import CsbenchError
from csbench.measurements.base import LinearOperator
from csbench.priors import Prior
from csbench.problem import Problem

def dense_maps(matrices: Tensor) -> tuple[LinearMap, LinearMap]:
    """x -> M x and r -> M^T r for matrices M (B, m, n) on (..., B, n) / (..., B, m): one batched
    product per instance whatever the leading dimensions, so a grid of G problems per instance
    reads M_b once (rows x^T M^T, r^T M: they stream M row by row, 1.5-2.5x faster on CPU than
    matrix-vector products with a transposed view)."""
    transposed = matrices.transpose(1, 2)

    def product(v: Tensor, matrix: Tensor) -> Tensor:
        rows = v.movedim(-2, 0)
        out = torch.bmm(rows.reshape(rows.shape[0], -1, rows.shape[-1]), matrix)
        return out.reshape(*rows.shape[:-1], out.shape[-1]).movedim(0, -2)

    return (lambda x: product(x, transposed)), (lambda r: product(r, matrices))


def operator_maps(operator: LinearOperator) -> tuple[LinearMap, LinearMap]:
    """x -> A x and r -> A^T r on (..., B, n) / (..., B, m): `dense_maps` of the operator's
    matrices when it has them, otherwise the operator's own."""
    matrices = operator.dense()
    if matrices is None:
        return operator.forward, operator.adjoint
    return dense_maps(matrices)


class SynthesisMap:
    """M = A Psi for a problem's operator A and an orthonormal basis Psi, on (..., B, n) coefficients.

    With dense A, M is formed once, M_b = A_b Psi (each row of A_b analysed by the fast transform,
    O(m n) per instance), and every product is one read of M. Otherwise M c = A (Psi c) and
    M^T r = Psi^T (A^T r) with the operator's products and the fast transform. Both give the same
    answers up to rounding, in the problem's precision.
    """

    def __init__(self, problem: Problem, basis: str):
        self.problem = problem
        self.basis = Basis(basis, problem.shape, dtype=problem.y.dtype, device=problem.device)
        matrices = problem.operator.dense()
        if matrices is None:
            apply, apply_adjoint = problem.operator.forward, problem.operator.adjoint
            self.forward = lambda c: apply(self.basis.synthesize(c))
            self.adjoint = lambda r: self.basis.analyze(apply_adjoint(r))
        else:
            self.forward, self.adjoint = dense_maps(self.basis.analyze(matrices))

    def lipschitz(self) -> Tensor:
        """An upper bound of ||M_b||^2 = ||A_b||^2 (Psi is orthonormal), (B,)."""
        return operator_norm_squared(self.problem)

    def image(self, c: Tensor) -> Tensor:
        """x = clip(Psi c, 0, 1) as (..., B, C, H, W)."""
        x = self.basis.synthesize(c).clamp(0, 1)
        return x.reshape(*x.shape[:-1], *self.problem.shape)


def operator_norm_squared(problem: Problem) -> Tensor:
    """An upper bound of ||A_b||_2^2, shape (B,), in the problem's dtype: the operator's
    `lipschitz_bound` (exact where it knows its norm; computed once per operator)."""
    return problem.operator.lipschitz_bound().to(dtype=problem.y.dtype, device=problem.y.device)


# The regularisation grid of the sparsity baselines: log-spaced (factor 10^(2/3)), wide enough for
# m = 10..750 and sigma in {0.01, 0.1, 1} on MNIST; for Lasso the top value gives the all-zero image
# at small m (TV stops one step earlier: its image is constant long before).
LAMBDA_GRID = [1e-5, 4.6e-5, 2.2e-4, 1e-3, 4.6e-3, 0.022, 0.1, 0.46, 2.2, 10.0]


def check_at_least(prior: Prior, key: str, low: float) -> None:
    """A one-line CsbenchError when the prior's parameter `key` is below `low`."""
    if prior.params[key] < low:
        raise CsbenchError(f"prior {prior.name!r}: parameter {key} must be >= {low:g}, got {prior.params[key]!r}")


def noise_floor(problem: Problem) -> Tensor:
    """Per-instance residual norm (B,) below which a greedy method stops: sigma (the model has
    E||e||^2 = sigma^2), at least a tiny fraction of ||y_b|| for noiseless problems."""
    return (1e-6 * problem.y.norm(dim=1)).clamp_min(float(problem.noise))
