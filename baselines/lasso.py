"""Lasso in a basis (Bora et al.'s sparsity baselines):

    c_hat = argmin_c 1/2 ||y - A Psi c||^2 + lam ||c||_1,     x_hat = clip(Psi c_hat, 0, 1),

Psi the pixel, DCT or Haar wavelet basis (transforms.py), solved for the whole batch by FISTA
with continuation in lam, to a relative duality gap of `tol` (solvers.lasso_continuation), in
cache-sized chunks of instances (common.least_squares_parts).
`lam` defaults to the paper's 0.1 and is tuned per (m, sigma): all grid values in one batch.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from csbench.baselines.common import LAMBDA_GRID, SynthesisMap, check_at_least
from csbench.baselines.solvers import lasso_continuation
from csbench.priors import Prior
from csbench.problem import Problem

class SynthesisLasso(Prior):
    """Lasso with synthesis basis `basis`; subclasses set `name`, `description`, `basis`."""

    kind = "sparsity"
    basis: ClassVar[str]
    parameters = {"lam": 0.1}
    tuning = {"lam": LAMBDA_GRID}
    links = ("identity",)
    tol: ClassVar[float] = 1e-5    # relative duality gap: P(c) - P* <= tol P(c)
    steps: ClassVar[int] = 300     # per continuation stage: the earlier solver's budget (small lam at
                                   # small m stops here, as it did; a 1000 cap tripled the time)

    def check_params(self) -> None:
        check_at_least(self, "lam", 0.0)

    def coefficients(self, problem: Problem, lams: list[float]) -> tuple[SynthesisMap, Tensor]:
        """c_hat for each lam in `lams`, (G, B, n), solved chunk by chunk (`SynthesisMap.parts`)."""
        synthesis = SynthesisMap(problem, self.basis)
        lam = torch.tensor(lams, dtype=problem.y.dtype, device=problem.device)[:, None]
        lipschitz = synthesis.lipschitz()
        c = problem.y.new_empty(len(lams), problem.batch, problem.n)
        for part in synthesis.parts():
            c[:, part.index] = lasso_continuation(
                part.forward, part.adjoint, part.y, lam.expand(-1, part.y.shape[0]), lipschitz[part.index],
                steps=self.steps, tol=self.tol)
        return synthesis, c

    def solve(self, problem: Problem, lams: list[float]) -> Tensor:
        """x_hat for each lam in `lams`: (G, B, C, H, W)."""
        synthesis, c = self.coefficients(problem, lams)
        return synthesis.image(c)

    def recover(self, problem: Problem) -> Tensor:
        return self.solve(problem, [float(self.params["lam"])])[0]

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """Every lam of the grid in one batched solve (each answer as `recover` gives it)."""
        if any(set(point) != {"lam"} for point in grid):
            return super().recover_grid(problem, grid)
        try:
            return list(self.solve(problem, [float(point["lam"]) for point in grid]))
        except Exception as exc:  # noqa: BLE001 - the runner scores a failed point as not chosen
            return [exc] * len(grid)


class LassoPixel(SynthesisLasso):
    name = "lasso-pixel"
    description = "Lasso in the pixel basis: min 1/2||y - A x||^2 + lam ||x||_1 (Bora et al.)"
    basis = "pixel"
    # Three grid steps below the shared grid: images are not sparse in pixels, and its tuned lam sat
    # at the shared grid's bottom (1e-5) at every m on Fashion-MNIST (validation MSE still falling).
    tuning = {"lam": [1e-7, 4.6e-7, 2.2e-6] + LAMBDA_GRID}


class LassoDCT(SynthesisLasso):
    name = "lasso-dct"
    description = "Lasso in the orthonormal 2-D DCT basis"
    basis = "dct"


class LassoWavelet(SynthesisLasso):
    name = "lasso-wavelet"
    description = "Lasso in the orthonormal Haar wavelet basis (PyWavelets db1, like the paper)"
    basis = "wavelet"
