"""A complete csbench plug-in: the minimum-norm solution x = A^T (A A^T)^{-1} y, clipped to [0, 1].

    python -m csbench check examples/min_norm_prior.py
    python -m csbench compare --preset quick --plugin examples/min_norm_prior.py --priors min-norm,vae
"""
import torch

from csbench import Prior
from csbench.errors import CsbenchError


class MinNorm(Prior):
    name = "min-norm"
    kind = "other"
    description = "least-norm solution of A x = y (no prior at all: the floor to beat)"
    parameters = {"ridge": 1e-6}

    def recover(self, problem):
        A = problem.operator.dense()  # (B, m, n), or None for matrix-free operators
        if A is None:
            raise CsbenchError(f"min-norm needs explicit matrices; {problem.measurement} has none")
        ridge = self.params["ridge"] * torch.eye(problem.m, dtype=A.dtype, device=A.device)
        gram = A @ A.transpose(1, 2) + ridge
        x = A.transpose(1, 2) @ torch.linalg.solve(gram, problem.y.unsqueeze(-1))
        return x.reshape(problem.batch, *problem.shape).clamp(0, 1)
