"""A problem whose operator hides its matrices, as a fast transform would: the solvers' path for
operators without dense matrices, checked against the dense path on the same A."""
from csbench.measurements import LinearOperator
from csbench.problem import Problem


class MatrixFree(LinearOperator):
    """An operator behind forward / adjoint only (`dense()` is None, no fast paths)."""

    def __init__(self, inner: LinearOperator):
        super().__init__(inner.n, inner.m, inner.batch)
        self.inner = inner

    def forward(self, x):
        return self.inner.forward(x)

    def adjoint(self, y):
        return self.inner.adjoint(y)


def matrix_free(problem: Problem) -> Problem:
    """The same problem with its operator's matrices hidden."""
    return Problem(y=problem.y, operator=MatrixFree(problem.operator), shape=problem.shape, noise=problem.noise)
