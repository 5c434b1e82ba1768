"""Selection operators: y = x[indices], adjoint = scatter into zeros; and random index subsets."""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.measurements.base import LinearOperator


def check_m(m: int, name: str) -> None:
    """A clean user error for a measurement count below 1."""
    if m < 1:
        raise CsbenchError(f"measurement {name!r} needs m >= 1, got m = {m}")


def random_subsets(batch: int, n: int, m: int, generator: torch.Generator) -> Tensor:
    """(batch, m) sorted indices, each row m distinct draws from range(n) (without replacement)."""
    scores = torch.rand(batch, n, generator=generator, device=generator.device)
    return scores.argsort(dim=1)[:, :m].sort(dim=1).values


class SelectionOperator(LinearOperator):
    """A_b x = x[indices_b]: rows of the identity, so A_b A_b^T = I and ||A_b||_2 = 1.

    indices: (B, m) integer tensor of distinct positions in range(n).
    """

    exact_norm = True

    def __init__(self, indices: Tensor, n: int):
        batch, m = indices.shape
        super().__init__(n, m, batch)
        self.indices = indices

    def _expanded(self, leading: torch.Size) -> Tensor:
        return self.indices.expand(*leading, self.batch, self.m)

    def forward(self, x: Tensor) -> Tensor:
        return x.gather(-1, self._expanded(x.shape[:-2]))

    def adjoint(self, y: Tensor) -> Tensor:
        out = y.new_zeros(*y.shape[:-1], self.n)
        return out.scatter(-1, self._expanded(y.shape[:-2]), y)

    def norm_squared(self, iterations: int = 50, generator: torch.Generator | None = None) -> Tensor:
        return torch.ones(self.batch, device=self.indices.device)

    def to(self, device: str | torch.device) -> "SelectionOperator":
        return SelectionOperator(self.indices.to(device), self.n)

    def select(self, index: Tensor) -> "SelectionOperator":
        return SelectionOperator(self.indices[index], self.n)

    @property
    def device(self) -> torch.device:
        return self.indices.device
