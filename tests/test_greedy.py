"""OMP's exact shortcuts: the whole sparsity grid from one greedy path equals `recover` at each
point, an atom gathered from the dense M = A Psi equals M applied to a one-hot vector, and cache-sized
chunks of instances give the answers of one batch."""
from __future__ import annotations

import pytest
import torch

from csbench.baselines import common
from csbench.baselines.common import SynthesisMap
from csbench.baselines.greedy import OMP, SPARSITY_GRID, synthesis_parts
from csbench.measurements import DenseOperator
from csbench.problem import Problem
from matrix_free import matrix_free

SHAPE = (1, 8, 8)


def problem_for(m: int, sigma: float, seed: int, batch: int = 5) -> Problem:
    """y = A x + e for piecewise-constant images x (sparse in Haar wavelets, so that some instances
    reach the noise floor before the largest s), A_ij ~ N(0, 1/m)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 2, 2, generator=g).repeat_interleave(4, -1).repeat_interleave(4, -2)
    x[::2] += 0.05 * torch.rand(x[::2].shape, generator=g)            # and some that are not
    matrices = torch.randn(batch, m, 64, generator=g) / m ** 0.5
    y = (matrices @ x.reshape(batch, 64, 1))[..., 0] + sigma * torch.randn(batch, m, generator=g) / m ** 0.5
    return Problem(y=y, operator=DenseOperator(matrices), shape=SHAPE, noise=sigma)




@pytest.mark.parametrize("m, sigma", [(40, 0.0), (40, 0.05), (24, 0.05)])
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "matrix-free"])
def test_grid_is_recover_at_each_point(m, sigma, dense):
    problem = problem_for(m, sigma, seed=m)
    problem = problem if dense else matrix_free(problem)
    grid = [{"s": s} for s in SPARSITY_GRID]
    together = OMP().recover_grid(problem, grid)
    for point, x_hat in zip(grid, together):
        alone = OMP(**point).recover(problem)
        assert x_hat.shape == (5, *SHAPE) and torch.allclose(x_hat, alone, atol=1e-6, rtol=0)
    # the points differ (up to s = m, where the cap makes them one answer)
    assert not torch.allclose(together[1], together[2], atol=1e-3)
    assert torch.equal(together[-1], together[-2])


def test_grid_falls_back_to_recover_for_other_parameters():
    problem = problem_for(40, 0.05, seed=1)
    results = OMP().recover_grid(problem, [{"s": 4, "lam": 0.1}])
    assert torch.allclose(results[0], OMP(s=4).recover(problem), atol=1e-6, rtol=0)


def test_gathered_atom_is_the_one_hot_product():
    problem = problem_for(40, 0.05, seed=2)
    synthesis = SynthesisMap(problem, "wavelet")
    ((index, atom, adjoint),) = synthesis_parts(synthesis)
    assert index == slice(0, 5)
    columns = torch.tensor([0, 63, 5, 17, 5])
    one_hot = torch.nn.functional.one_hot(columns, problem.n).float()
    assert torch.equal(atom(columns), synthesis.forward(one_hot))
    residual = torch.randn(problem.batch, problem.m, generator=torch.Generator().manual_seed(3))
    assert torch.equal(adjoint(residual), synthesis.adjoint(residual))
    # without matrices: M applied to the one-hot vector by the operator's products
    ((_, free_atom, free_adjoint),) = synthesis_parts(SynthesisMap(matrix_free(problem), "wavelet"))
    assert torch.allclose(free_atom(columns), atom(columns), atol=1e-6)
    assert torch.allclose(free_adjoint(residual), adjoint(residual), atol=1e-5)


def test_chunks_of_instances_are_one_batch(monkeypatch):
    problem = problem_for(40, 0.05, seed=5)
    grid = [{"s": s} for s in (2, 8, 64)]
    together = OMP().recover_grid(problem, grid)
    monkeypatch.setattr(common, "CACHE_BYTES", 2 * 40 * 64 * 4)                  # two instances a chunk
    synthesis = SynthesisMap(problem, "wavelet")
    assert [index for index, _, _ in synthesis_parts(synthesis)] == [slice(0, 2), slice(2, 3), slice(3, 5)]
    for x_hat, chunked in zip(together, OMP().recover_grid(problem, grid)):
        assert torch.allclose(x_hat, chunked, atol=1e-6, rtol=0)


def test_matrix_free_omp_is_dense_omp():
    problem = problem_for(40, 0.05, seed=4)
    grid = [{"s": s} for s in (2, 8, 64)]
    for dense, free in zip(OMP().recover_grid(problem, grid), OMP().recover_grid(matrix_free(problem), grid)):
        assert torch.allclose(dense, free, atol=1e-4)
