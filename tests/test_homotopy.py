"""The batched Lasso homotopy (baselines/homotopy.py) against scikit-learn, on random and MNIST
problems: exact minimisers at every grid lam, batch-independent, every answer within the gap."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

import csbench.baselines.homotopy as homotopy
from csbench.baselines.common import LAMBDA_GRID, SynthesisMap, dense_maps
from csbench.baselines.homotopy import lasso_grid, lasso_homotopy
from csbench.baselines.lasso import LassoWavelet
from csbench.baselines.solvers import lasso_gap
from csbench.datasets import load_dataset
from csbench.runner import Task, make_problem


def random_problem(batch: int, m: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian M_b (m, n) and y_b = M_b x_b + noise, x_b with 5 nonzeros, in float64."""
    g = torch.Generator().manual_seed(seed)
    matrices = torch.randn(batch, m, n, generator=g, dtype=torch.float64) / m ** 0.5
    truth = torch.zeros(batch, n, dtype=torch.float64)
    truth[:, :5] = torch.randn(batch, 5, generator=g, dtype=torch.float64)
    y = (matrices @ truth[..., None])[..., 0] + 0.1 * torch.randn(batch, m, generator=g, dtype=torch.float64)
    return matrices, y


def reference(matrix: torch.Tensor, y: torch.Tensor, lam: float) -> np.ndarray:
    """scikit-learn's minimiser (its alpha = lam / m), to a duality gap of 1e-15 ||y||^2."""
    model = Lasso(alpha=lam / matrix.shape[0], fit_intercept=False, tol=1e-15, max_iter=10 ** 6)
    return model.fit(matrix.numpy(), y.numpy()).coef_


def objective(matrix: torch.Tensor, y: torch.Tensor, c: torch.Tensor, lam: float) -> float:
    """1/2 ||y - M c||^2 + lam ||c||_1 in float64."""
    return float(0.5 * (y.double() - matrix.double() @ c).pow(2).sum() + lam * c.abs().sum())


def relative_gaps(matrices: torch.Tensor, y: torch.Tensor, c: torch.Tensor, lams: list[float]) -> torch.Tensor:
    lam = torch.tensor(lams, dtype=torch.float64)[:, None, None].expand(-1, y.shape[0], 1)
    primal, gap = lasso_gap(*dense_maps(matrices.double()), y.double(), c.double(), lam)
    return (gap / primal)[..., 0]


@pytest.mark.parametrize("m, n", [(30, 60), (45, 50), (60, 40)], ids=["m<n", "m>n/2", "m>n"])
def test_homotopy_is_the_minimiser(m, n):
    matrices, y = random_problem(3, m, n, seed=m)
    lam_max = float((matrices.transpose(1, 2) @ y[..., None]).abs().max())
    lams = [0.05, 2 * lam_max, 1e-3, 0.5, 0.01]       # any order; above lam_max: c = 0
    c = lasso_homotopy(matrices, y, lams)
    assert c.shape == (5, 3, n) and c.dtype == torch.float64
    assert torch.count_nonzero(c[1]) == 0
    for g, lam in enumerate(lams):
        for b in range(3):
            assert np.allclose(c[g, b].numpy(), reference(matrices[b], y[b], lam), rtol=0, atol=1e-7)
    assert float(relative_gaps(matrices, y, c, lams).max()) < 1e-9


def test_an_instance_alone_is_the_same_as_in_a_batch():
    matrices, y = random_problem(5, 40, 70, seed=1)
    together = lasso_homotopy(matrices, y, LAMBDA_GRID)
    for b in (0, 3):
        alone = lasso_homotopy(matrices[b:b + 1], y[b:b + 1], LAMBDA_GRID)
        assert torch.allclose(alone[:, 0], together[:, b], rtol=0, atol=1e-12)


def mnist_part(m: int, images: int = 3):
    """The wavelet-basis Lasso of MNIST validation digits with Gaussian A (sigma = 0.1), as tuning
    runs it: M = A Psi (float32), y, and the operator's Lipschitz bounds."""
    x = load_dataset("mnist").split("validation", images)
    problem = make_problem(x, Task("mnist", "gaussian", "lasso-wavelet", m, 0.1, 0), "validation", "cpu")
    synthesis = SynthesisMap(problem, "wavelet")
    part = next(synthesis.parts(budget=2 ** 62))
    return part.matrices, part.y, synthesis.lipschitz()


@pytest.mark.parametrize("m", [25, 100])
def test_mnist_answers_are_sklearns_within_the_gap(m):
    matrices, y, lipschitz = mnist_part(m)
    c = lasso_grid(matrices, y, LAMBDA_GRID, lipschitz, tol=1e-5, steps=300)
    assert c.shape == (len(LAMBDA_GRID), 3, 784) and c.dtype == torch.float32
    exact = lasso_homotopy(matrices, y, LAMBDA_GRID)
    assert float(relative_gaps(matrices, y, exact, LAMBDA_GRID).max()) <= 1e-5
    assert torch.allclose(c, exact.float())
    for g in (4, 7):      # lam = 4.6e-3, 0.46 (at 1e-5 scikit-learn stops short, 4% above ours)
        for b in range(3):
            theirs = torch.from_numpy(reference(matrices[b].double(), y[b].double(), LAMBDA_GRID[g]))
            ours, best = (objective(matrices[b], y[b], v, LAMBDA_GRID[g]) for v in (exact[g, b], theirs))
            assert abs(ours - best) <= 1e-9 * best


def test_a_path_cut_short_is_polished_to_the_gap(monkeypatch):
    """With the event cap at 2 G + 10 the paths stop early: FISTA from there meets the gap."""
    matrices, y = random_problem(3, 30, 60, seed=2)
    lams = [0.3, 0.1, 0.03]
    monkeypatch.setattr(homotopy, "EVENTS", 0)
    cut = lasso_homotopy(matrices, y, lams)
    assert float(relative_gaps(matrices, y, cut, lams).max()) > 1e-3      # the polish has work to do
    lipschitz = torch.linalg.matrix_norm(matrices, ord=2) ** 2
    c = lasso_grid(matrices, y, lams, lipschitz, tol=1e-6, steps=5000)
    assert float(relative_gaps(matrices, y, c, lams).max()) <= 1e-6


def test_the_prior_takes_the_homotopy_for_small_m():
    """lasso-wavelet at m = 25 <= n / 4 (MNIST): the homotopy's answers, chunk by chunk."""
    x = load_dataset("mnist").split("validation", 3)
    problem = make_problem(x, Task("mnist", "gaussian", "lasso-wavelet", 25, 0.1, 0), "validation", "cpu")
    _, c = LassoWavelet().coefficients(problem, LAMBDA_GRID)
    matrices, y, _ = mnist_part(25)
    assert torch.equal(c, lasso_homotopy(matrices, y, LAMBDA_GRID).float())
