"""Lasso in a basis (Bora et al.'s sparsity baselines):

    c_hat = argmin_c 1/2 ||y - A Psi c||^2 + lam ||c||_1,     x_hat = clip(Psi c_hat, 0, 1),

Psi the pixel, DCT or Haar wavelet basis (transforms.py), solved for the whole batch by
FISTA with continuation in lam (solvers.lasso_path). `lam` defaults to the paper's 0.1 and
is tuned per (m, sigma).
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from csbench.baselines.common import SynthesisMap
from csbench.baselines.solvers import lasso_path
from csbench.priors import Prior
from csbench.problem import Problem

# Log-spaced (factor 10^(2/3)), wide enough for m = 10..750 and sigma in {0.01, 0.1, 1} on
# MNIST; the top value gives the all-zero image at small m.
LAMBDA_GRID = [1e-5, 4.6e-5, 2.2e-4, 1e-3, 4.6e-3, 0.022, 0.1, 0.46, 2.2, 10.0]


class SynthesisLasso(Prior):
    """Lasso with synthesis basis `basis`; subclasses set `name`, `description`, `basis`."""

    kind = "sparsity"
    basis: ClassVar[str]
    parameters = {"lam": 0.1}
    tuning = {"lam": LAMBDA_GRID}
    links = ("identity",)
    steps: ClassVar[int] = 300   # per continuation stage
    tol: ClassVar[float] = 1e-4  # relative change; tighter changes the MSE by < 1e-5

    def recover(self, problem: Problem) -> Tensor:
        synthesis = SynthesisMap(problem, self.basis)
        coefficients = lasso_path(synthesis.forward, synthesis.adjoint, problem.y,
                                  float(self.params["lam"]), synthesis.lipschitz(),
                                  steps=self.steps, tol=self.tol)
        return synthesis.image(coefficients)


class LassoPixel(SynthesisLasso):
    name = "lasso-pixel"
    description = "Lasso in the pixel basis: min 1/2||y - A x||^2 + lam ||x||_1 (Bora et al.)"
    basis = "pixel"


class LassoDCT(SynthesisLasso):
    name = "lasso-dct"
    description = "Lasso in the orthonormal 2-D DCT basis"
    basis = "dct"


class LassoWavelet(SynthesisLasso):
    name = "lasso-wavelet"
    description = "Lasso in the orthonormal Haar wavelet basis (PyWavelets db1, like the paper)"
    basis = "wavelet"
