"""Rademacher measurements: A_ij = +-1/sqrt(m) with equal probability, so E||A x||^2 = ||x||^2."""
from __future__ import annotations

import torch

from csbench.measurements.base import DenseOperator, MeasurementModel
from csbench.measurements.selection import check_m


class Rademacher(MeasurementModel):
    name = "rademacher"
    description = "dense i.i.d. +-1/sqrt(m) matrix, y = A x + e"

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> DenseOperator:
        check_m(m, self.name)
        n = shape[0] * shape[1] * shape[2]
        bits = torch.randint(0, 2, (batch, m, n), generator=generator, device=generator.device)
        return DenseOperator((2.0 * bits - 1.0).float() / m ** 0.5)
