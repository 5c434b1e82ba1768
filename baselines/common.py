"""What every sparsity baseline shares: the synthesis map M = A Psi of a problem, its
Lipschitz constant, and the way coefficients become clipped images."""
from __future__ import annotations

from torch import Tensor

from csbench.baselines.solvers import lipschitz_constant
from csbench.baselines.transforms import Basis
from csbench.problem import Problem


class SynthesisMap:
    """M = A Psi for a problem's operator A and an orthonormal basis Psi, on (B, n) coefficients.

    Works matrix-free: only `operator.forward` / `operator.adjoint` are called, so dense and
    fast operators give the same answers.
    """

    def __init__(self, problem: Problem, basis: str):
        self.problem = problem
        self.operator = problem.operator
        self.basis = Basis(basis, problem.shape, dtype=problem.y.dtype, device=problem.device)

    def forward(self, c: Tensor) -> Tensor:
        return self.operator.forward(self.basis.synthesize(c))

    def adjoint(self, r: Tensor) -> Tensor:
        return self.basis.analyze(self.operator.adjoint(r))

    def lipschitz(self) -> Tensor:
        """||M_b||^2 = ||A_b||^2 (Psi is orthonormal), estimated by power iteration on A, (B,)."""
        y = self.problem.y
        return lipschitz_constant(self.operator.forward, self.operator.adjoint, self.problem.n,
                                  self.problem.batch, dtype=y.dtype, device=y.device)

    def image(self, c: Tensor) -> Tensor:
        """x = clip(Psi c, 0, 1) as (B, C, H, W)."""
        x = self.basis.synthesize(c).clamp(0, 1)
        return x.reshape(x.shape[0], *self.problem.shape)


def noise_floor(problem: Problem) -> Tensor:
    """Per-instance residual norm (B,) below which a greedy method stops: sigma (the model has
    E||e||^2 = sigma^2), at least a tiny fraction of ||y_b|| for noiseless problems."""
    return (1e-6 * problem.y.norm(dim=1)).clamp_min(float(problem.noise))
