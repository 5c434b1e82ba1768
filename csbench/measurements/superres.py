"""Super-resolution: block averaging by an integer factor f.

Convention: y = f * (mean of each f x f block) = (block sum) / f, so each row of A has f^2
entries 1/f: rows are orthonormal, A A^T = I, ||A||_2 = 1, and A^T A is the orthogonal
projection onto block-constant images. The low-resolution image is y / f.
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.measurements.base import LinearOperator, MeasurementModel
from csbench.measurements.selection import check_m


class BlockAverageOperator(LinearOperator):
    """(C, H, W) -> (C, H/f, W/f), y = block sum / f; the same map for all B instances."""

    exact_norm = True

    def __init__(self, shape: tuple[int, int, int], factor: int, batch: int,
                 device: str | torch.device = "cpu"):
        c, h, w = shape
        super().__init__(c * h * w, c * (h // factor) * (w // factor), batch)
        self.shape, self.factor, self._device = shape, factor, torch.device(device)

    def forward(self, x: Tensor) -> Tensor:
        c, h, w = self.shape
        f = self.factor
        blocks = x.reshape(*x.shape[:-1], c, h // f, f, w // f, f)
        return (blocks.sum(dim=(-3, -1)) / f).flatten(-3)

    def adjoint(self, y: Tensor) -> Tensor:
        c, h, w = self.shape
        f = self.factor
        low = y.reshape(*y.shape[:-1], c, h // f, 1, w // f, 1)
        return (low.expand(*low.shape[:-4], h // f, f, w // f, f) / f).reshape(*y.shape[:-1], self.n)

    def norm_squared(self, iterations: int = 50, generator: torch.Generator | None = None) -> Tensor:
        return torch.ones(self.batch, device=self._device)

    def to(self, device: str | torch.device) -> "BlockAverageOperator":
        return BlockAverageOperator(self.shape, self.factor, self.batch, device)

    def select(self, index: Tensor) -> "BlockAverageOperator":
        return BlockAverageOperator(self.shape, self.factor, len(index), self._device)

    @property
    def device(self) -> torch.device:
        return self._device


class SuperResolution(MeasurementModel):
    name = "superres"
    description = "f x f block averaging (y = block sum / f), m snapped to C H W / f^2"

    @staticmethod
    def factors(shape: tuple[int, int, int]) -> list[int]:
        """Factors f > 1 dividing H and W that leave more than one low-resolution pixel."""
        _, h, w = shape
        return [f for f in range(2, min(h, w) + 1) if h % f == 0 and w % f == 0 and h * w > f * f]

    def factor(self, m: int, shape: tuple[int, int, int]) -> int:
        """The factor whose C (H/f)(W/f) is nearest m (ties: the smaller factor, more measurements)."""
        c, h, w = shape
        factors = self.factors(shape)
        if not factors:
            raise CsbenchError(f"superres: no block factor divides both H = {h} and W = {w}")
        return min(factors, key=lambda f: (abs(c * (h // f) * (w // f) - m), f))

    def effective_m(self, m, shape):
        c, h, w = shape
        f = self.factor(m, shape)
        return c * (h // f) * (w // f)

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> BlockAverageOperator:
        check_m(m, self.name)
        return BlockAverageOperator(shape, self.factor(m, shape), batch)
