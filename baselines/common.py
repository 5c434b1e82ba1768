"""What every sparsity baseline shares: the products with A, the synthesis map M = A Psi of a
problem, its Lipschitz constant, and the way coefficients become clipped images."""
from __future__ import annotations

from functools import cached_property
from typing import Iterator

import torch
from torch import Tensor

from csbench.baselines.solvers import LinearMap
from csbench.baselines.transforms import Basis
from csbench.errors import CsbenchError
from csbench.measurements.base import CACHE_BYTES, cache_chunks
from csbench.priors import Prior
from csbench.problem import Problem

def dense_maps(matrices: Tensor) -> tuple[LinearMap, LinearMap]:
    """x -> M x and r -> M^T r for matrices M (B, m, n) on (..., B, n) / (..., B, m): one batched
    product per instance whatever the leading dimensions, so a grid of G problems per instance
    reads M_b once (rows x^T M^T, r^T M: they stream M row by row, 1.5-2.5x faster on CPU than
    matrix-vector products with a transposed view). (Not a contiguous copy of M^T for x^T M^T:
    2x faster alone for 10 rows, but twice the bytes per chunk: lasso-wavelet m = 500 and tv
    m = 200 tasks ran 23-40% slower, 14-39% with half-sized chunks.)"""
    transposed = matrices.transpose(1, 2)

    def product(v: Tensor, matrix: Tensor) -> Tensor:
        rows = v.movedim(-2, 0)
        out = torch.bmm(rows.reshape(rows.shape[0], -1, rows.shape[-1]), matrix)
        return out.reshape(*rows.shape[:-1], out.shape[-1]).movedim(0, -2)

    return (lambda x: product(x, transposed)), (lambda r: product(r, matrices))


class LeastSquares:
    """The data term 1/2 ||y_b - M_b x||^2 of the instances `index` of a batch: `forward` x -> M x,
    `adjoint` r -> M^T r and `gradient` x -> M^T (M x - y), on (..., b, n) / (..., b, m);
    `matrices` the M_b (b, m, n) where they are dense, else None."""

    def __init__(self, index: slice, y: Tensor, forward: LinearMap, adjoint: LinearMap,
                 matrices: Tensor | None = None):
        self.index, self.y, self.forward, self.adjoint, self.matrices = index, y, forward, adjoint, matrices

    def gradient(self, x: Tensor) -> Tensor:
        return self.adjoint(self.forward(x) - self.y)


def least_squares_parts(problem: Problem, basis: Basis | None = None, *, budget: int | None = None
                        ) -> Iterator[LeastSquares]:
    """The data term of `problem` with M = A Psi (M = A without a basis), in chunks of consecutive
    instances whose matrices M_b take about `budget` bytes (CACHE_BYTES by default), so a solver run
    chunk by chunk reads them from cache. Instances are independent: the answers are those of one
    batch up to rounding. Each chunk's M_b = A_b Psi (rows of A_b analysed by the fast transform)
    is formed when the chunk is reached. Without dense matrices: one part with the operator's
    products and the transform.

    (Not the Gram matrices H_b = M_b^T M_b, one read per gradient x H - M^T y instead of two of M:
    measured on MNIST, n = 784, no gain at m = 500 and 25% for TV at m = 750, while in float32 that
    difference keeps errors of eps ||M^T y||, about 30x those of M^T (M x - y) where the gradient is
    small, and moved validation MSEs 30-100x more than rounding does.)"""
    matrices = problem.operator.dense()
    if matrices is None:
        apply, apply_adjoint = problem.operator.forward, problem.operator.adjoint
        if basis is None:
            yield LeastSquares(slice(0, problem.batch), problem.y, apply, apply_adjoint)
        else:
            yield LeastSquares(slice(0, problem.batch), problem.y, lambda c: apply(basis.synthesize(c)),
                               lambda r: basis.analyze(apply_adjoint(r)))
        return
    instance_bytes = matrices[0].numel() * matrices.element_size()
    for index in cache_chunks(problem.batch, instance_bytes, CACHE_BYTES if budget is None else budget):
        chunk = matrices[index] if basis is None else basis.analyze(matrices[index])
        yield LeastSquares(index, problem.y[index], *dense_maps(chunk), chunk)


class SynthesisMap:
    """M = A Psi for a problem's operator A and an orthonormal basis Psi, on (..., B, n) coefficients.

    `forward`, `adjoint`: the whole batch's products; with dense A, M is formed once on first use,
    M_b = A_b Psi (each row of A_b analysed by the fast transform, O(m n) per instance), and every
    product is one read of M. Otherwise M c = A (Psi c) and M^T r = Psi^T (A^T r) with the operator's
    products and the fast transform. `parts`: the same in cache-sized chunks (`least_squares_parts`).
    All give the same answers up to rounding, in the problem's precision.
    """

    def __init__(self, problem: Problem, basis: str):
        self.problem = problem
        self.basis = Basis(basis, problem.shape, dtype=problem.y.dtype, device=problem.device)

    @cached_property
    def _whole(self) -> LeastSquares:
        return next(least_squares_parts(self.problem, self.basis, budget=2 ** 62))

    @property
    def forward(self) -> LinearMap:
        return self._whole.forward

    @property
    def adjoint(self) -> LinearMap:
        return self._whole.adjoint

    def parts(self, budget: int | None = None) -> Iterator[LeastSquares]:
        """`least_squares_parts` of M."""
        return least_squares_parts(self.problem, self.basis, budget=budget)

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
