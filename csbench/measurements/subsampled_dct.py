"""Subsampled randomised DCT: a fast structured stand-in for a Gaussian matrix.

    A = sqrt(n/m) S F D,   D = diag(random signs), F = orthonormal 2-D DCT of each channel,
                           S = m of the n rows, drawn without replacement,

so A A^T = (n/m) I, E||A x||^2 = ||x||^2 (like `gaussian`), ||A||_2^2 = n/m, and
A^T y = sqrt(n/m) D F^T S^T y exactly. O(n log n) time, O(n) memory per instance.
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.measurements.base import LinearOperator, MeasurementModel
from csbench.measurements.dct import dct2, idct2
from csbench.measurements.selection import check_m, random_subsets


class SubsampledDCTOperator(LinearOperator):
    """signs: (B, n) in {-1, +1}; rows: (B, m) kept DCT coefficients; shape: (C, H, W)."""

    exact_norm = True

    def __init__(self, signs: Tensor, rows: Tensor, shape: tuple[int, int, int]):
        batch, n = signs.shape
        super().__init__(n, rows.shape[1], batch)
        self.signs, self.rows, self.shape = signs, rows, shape
        self.scale = (n / self.m) ** 0.5
        self.scaled_signs = self.scale * signs

    def _rows(self, leading: torch.Size) -> Tensor:
        return self.rows.expand(*leading, self.batch, self.m)

    def forward(self, x: Tensor) -> Tensor:
        signed = (x * self.signs.to(x.dtype)).reshape(*x.shape[:-1], *self.shape)
        coefficients = dct2(signed).flatten(-3)
        return self.scale * coefficients.gather(-1, self._rows(x.shape[:-2]))

    def adjoint(self, y: Tensor) -> Tensor:
        """sqrt(n/m) D F^T S^T y: scattered into zeros in place, the sign and scale in one pass."""
        coefficients = y.new_zeros(*y.shape[:-1], self.n).scatter_(-1, self._rows(y.shape[:-2]), y)
        signal = idct2(coefficients.reshape(*y.shape[:-1], *self.shape)).flatten(-3)
        scaled_signs = self.scaled_signs if y.dtype == self.signs.dtype else self.scale * self.signs.to(y.dtype)
        return signal.mul_(scaled_signs)

    def norm_squared(self, iterations: int = 50, generator: torch.Generator | None = None) -> Tensor:
        return torch.full((self.batch,), self.n / self.m, device=self.signs.device)

    def to(self, device: str | torch.device) -> "SubsampledDCTOperator":
        return SubsampledDCTOperator(self.signs.to(device), self.rows.to(device), self.shape)

    def select(self, index: Tensor) -> "SubsampledDCTOperator":
        return SubsampledDCTOperator(self.signs[index], self.rows[index], self.shape)

    @property
    def device(self) -> torch.device:
        return self.signs.device


class SubsampledDCT(MeasurementModel):
    name = "subsampled-dct"
    description = "fast sqrt(n/m) S DCT D (random signs, random DCT rows), O(n log n), y = A x + e"

    def effective_m(self, m, shape):
        return min(m, shape[0] * shape[1] * shape[2])

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> SubsampledDCTOperator:
        check_m(m, self.name)
        n = shape[0] * shape[1] * shape[2]
        bits = torch.randint(0, 2, (batch, n), generator=generator, device=generator.device)
        signs = 2.0 * bits.float() - 1.0
        rows = random_subsets(batch, n, self.effective_m(m, shape), generator)
        return SubsampledDCTOperator(signs, rows, shape)
