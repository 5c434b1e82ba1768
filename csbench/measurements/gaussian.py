"""Gaussian measurements: A_ij ~ N(0, 1/m), so E||A x||^2 = ||x||^2."""
from __future__ import annotations

import torch

from csbench.errors import CsbenchError
from csbench.measurements.base import DenseOperator, MeasurementModel


class Gaussian(MeasurementModel):
    name = "gaussian"
    description = "dense i.i.d. N(0, 1/m) matrix, y = A x + e (Bora et al.)"

    def operator(self, m, shape, batch, generator):
        if m < 1:
            raise CsbenchError(f"{self.name} needs m >= 1 measurements, got {m}")
        n = shape[0] * shape[1] * shape[2]
        return DenseOperator(torch.randn(batch, m, n, generator=generator) / m ** 0.5)
