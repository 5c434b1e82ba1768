"""The sparsity baselines' fast paths give the plain algorithm's answers: FISTA with the gradient
tracked at c (free duality gap), instances solved in cache-sized chunks, and TV's batched grid
(u = A^T p form), each against a per-instance loop of the textbook iteration in float64, where
rounding cannot hide a different iterate or stopping step."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_baselines import reference_coefficients

import csbench.baselines.common as common
from csbench.baselines.common import dense_maps, least_squares_parts, operator_norm_squared
from csbench.baselines.lasso import LassoDCT, LassoWavelet
from csbench.baselines.solvers import lasso_continuation
from csbench.baselines.tv import (ADAPT_EVERY, GRADIENT_NORM_SQUARED, STEP_BALANCE, TotalVariation, gradient,
                                 gradient_adjoint, tv_solve)
from csbench.measurements import DenseOperator, get_measurement
from csbench.problem import Problem

SHAPE = (1, 8, 8)
N = 64


def problem64(batch: int, m: int, seed: int = 0, dtype=torch.float64) -> Problem:
    """Gaussian measurements (A_ij ~ N(0, 1/m), sigma = 0.05) of random piecewise-smooth images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 4, 4, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(x, size=SHAPE[1:], mode="nearest").reshape(batch, N)
    matrices = torch.randn(batch, m, N, generator=g, dtype=torch.float64) / m ** 0.5
    noise = 0.05 / m ** 0.5 * torch.randn(batch, m, generator=g, dtype=torch.float64)
    y = (matrices @ x[..., None])[..., 0] + noise
    return Problem(y=y.to(dtype), operator=DenseOperator(matrices.to(dtype)), shape=SHAPE, noise=0.05)


# -- the plain algorithms, one instance and one lam at a time ---------------------------------------
def plain_fista_gap(matrix, y, lam, lipschitz, steps, tol, check=10, x0=None):
    """FISTA without restart, gradient M^T (M z - y) at z, stopped at a relative duality gap <= tol
    (checked every `check` iterations) or after `steps` iterations."""
    c = torch.zeros(matrix.shape[1], dtype=y.dtype) if x0 is None else x0.clone()
    z, t = c.clone(), 1.0
    for iteration in range(1, steps + 1):
        v = z - matrix.T @ (matrix @ z - y) / lipschitz
        c_new = torch.sign(v) * (v.abs() - lam / lipschitz).clamp_min(0)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z, c, t = c_new + (t - 1) / t_new * (c_new - c), c_new, t_new
        if iteration % check == 0 or iteration == steps:
            r = y - matrix @ c
            primal = 0.5 * r @ r + lam * c.abs().sum()
            scale = min(1.0, lam / float((matrix.T @ r).abs().max()))
            if primal - (scale * y @ r - 0.5 * scale ** 2 * r @ r) <= tol * primal:
                break
    return c


def plain_continuation(matrix, y, lam, lipschitz, steps, tol, stage_tol=None):
    """Two warm-start stages at lam / 0.2^k to a gap min(100 tol, 1e-2), then lam at tol."""
    c = None
    for k in (2, 1):
        c = plain_fista_gap(matrix, y, lam / 0.2 ** k, lipschitz, steps,
                            min(100 * tol, 1e-2) if stage_tol is None else stage_tol, x0=c)
    return plain_fista_gap(matrix, y, lam, lipschitz, steps, tol, x0=c)


def plain_tv(matrix, y, lam, norm_a, shape, steps, tol):
    """Chambolle-Pock with K = [A; D], dual p of the data term kept in R^m, and the adaptive steps
    of Goldstein, Li & Yuan (2015) as tv.py sets them (tau sigma ||K||^2 = 1): one instance, one lam."""
    norm_k = norm_a + GRADIENT_NORM_SQUARED
    tau, adapt = 1 / math.sqrt(norm_k), 0.5
    x = torch.zeros(matrix.shape[1], dtype=y.dtype)
    x_bar, p, q = x.clone(), torch.zeros_like(y), gradient(x.reshape(1, *shape))
    for iteration in range(1, steps + 1):
        sigma = 1 / (tau * norm_k)
        p_new = (p + sigma * (matrix @ x_bar - y)) / (1 + sigma)
        q_new = q + sigma * gradient(x_bar.reshape(1, *shape))
        q_new = q_new / (q_new.pow(2).sum(dim=1, keepdim=True).sqrt() / lam).clamp_min(1)
        x_new = (x - tau * (matrix.T @ p_new + gradient_adjoint(q_new).reshape(-1))).clamp(0, 1)
        if iteration % ADAPT_EVERY == 0:
            dp, dq, dx = p - p_new, q - q_new, x - x_new
            primal = dx / tau - (matrix.T @ dp + gradient_adjoint(dq).reshape(-1))
            dual = torch.cat([dp / sigma - matrix @ dx, (dq / sigma - gradient(dx.reshape(1, *shape))).reshape(-1)])
            if float(primal.norm()) > STEP_BALANCE * 1.5 * float(dual.norm()):
                tau, adapt = tau / (1 - adapt), adapt * 0.95
            elif float(primal.norm()) < STEP_BALANCE * float(dual.norm()) / 1.5:
                tau, adapt = tau * (1 - adapt), adapt * 0.95
        change = float((x_new - x).norm())
        x_bar, x, p, q = 2 * x_new - x, x_new, p_new, q_new
        if change <= tol * float(x.norm()):
            break
    return x


# -- Lasso ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tol", [1e-6, 0.05])
def test_fista_gap_is_the_plain_iteration(tol):
    """The gradient tracked at c (free duality gap): the plain per-instance answers, where some
    (instance, lam) stop on the gap and others at the step cap. At a loose tol (0.05) the stages
    still solve to a gap of 1e-2 (100 tol would stop them at their first check)."""
    problem = problem64(batch=3, m=40)
    matrices, y = problem.operator.dense(), problem.y
    lam = torch.tensor([1e-3, 0.1, 2.0], dtype=torch.float64)[:, None].expand(-1, 3)
    lipschitz = problem.operator.lipschitz_bound()
    forward, adjoint = dense_maps(matrices)
    steps = 80   # tol 1e-6, lam = 2: final stops at 10, 20, 60 iterations; lam = 1e-3 at the cap
    c = lasso_continuation(forward, adjoint, y, lam, lipschitz, steps=steps, tol=tol)

    def plain(**stage):
        return torch.stack([torch.stack([plain_continuation(matrices[b], y[b], float(lam[g, b]),
                                                            float(lipschitz[b]), steps, tol, **stage)
                                         for b in range(3)]) for g in range(3)])
    expected = plain()
    assert torch.allclose(c, expected, rtol=0, atol=1e-10)
    assert not torch.allclose(c[0], expected[2], atol=1e-3)   # the lam rows differ: the test can tell
    if tol > 1e-4:   # and so does the stages' tolerance
        assert not torch.allclose(c, plain(stage_tol=100 * tol), atol=1e-6)


@pytest.mark.parametrize("cls", [LassoWavelet, LassoDCT])
def test_lasso_chunks_give_the_whole_batch_answer(cls, monkeypatch):
    """One instance per chunk, or one chunk: the same answers."""
    problem = problem64(batch=5, m=40, seed=1)
    grid = [1e-3, 0.05, 0.5]
    monkeypatch.setattr(common, "CACHE_BYTES", 1)
    assert len(list(least_squares_parts(problem))) == 5
    chunked = cls().solve(problem, grid)
    monkeypatch.setattr(common, "CACHE_BYTES", 2 ** 40)
    assert len(list(least_squares_parts(problem))) == 1
    assert torch.allclose(chunked, cls().solve(problem, grid), rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", [LassoWavelet, LassoDCT])
def test_lasso_with_fast_transforms_is_the_plain_iteration_in_the_reference_basis(cls):
    """The matrix-free path (subsampled-DCT products, fast transform, every lam in one batch) gives
    the plain per-instance continuation's c with M_b = A_b Psi written out from scipy's DCT and
    PyWavelets (not the fast code): the same images for every lam, hence the same tuned lam."""
    shape, m, batch, lams = (3, 8, 8), 80, 2, [1e-3, 0.022, 0.46]
    n = math.prod(shape)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(batch, 3, 2, 2, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(x, size=shape[1:], mode="bilinear").reshape(batch, n)
    model = get_measurement("subsampled-dct")
    operator = model.operator(m, shape, batch, g)
    problem = Problem(y=model.measure(x, operator, 0.05, g), operator=operator, shape=shape, noise=0.05)
    _, c = cls().coefficients(problem, lams)
    x_hat = cls().solve(problem, lams).reshape(len(lams), batch, n)

    unit_images = np.eye(n).reshape(n, *shape)
    dct_rows = torch.from_numpy(reference_coefficients("dct", unit_images).reshape(n, n).T)   # F x = dctn(x)
    psi = torch.from_numpy(reference_coefficients(cls.basis, unit_images).reshape(n, n))     # x = Psi c
    for b in range(batch):
        matrix = (n / m) ** 0.5 * dct_rows[operator.rows[b]] * operator.signs[b].double() @ psi
        for k, lam in enumerate(lams):
            plain = plain_continuation(matrix, problem.y[b], lam, n / m, cls.steps, cls.tol)
            assert torch.allclose(c[k, b], plain, rtol=0, atol=1e-7)
            assert torch.allclose(x_hat[k, b], (psi @ plain).clamp(0, 1), rtol=0, atol=1e-7)
    assert not torch.allclose(x_hat[0], x_hat[-1], atol=1e-2)   # lam matters: the test can tell


def test_chunks_cover_the_batch_in_order():
    problem = problem64(batch=7, m=20, dtype=torch.float32)
    per_instance = 4 * 20 * N
    parts = list(least_squares_parts(problem, budget=2 * per_instance))
    assert len(parts) == 4 and max(p.index.stop - p.index.start for p in parts) == 2
    assert parts[0].index.start == 0 and parts[-1].index.stop == 7
    assert all(a.index.stop == b.index.start for a, b in zip(parts, parts[1:]))
    for part in parts:
        matrices = problem.operator.dense()[part.index]
        x = torch.randn(3, part.y.shape[0], N)
        assert torch.allclose(part.forward(x), (matrices @ x[..., None])[..., 0], atol=1e-5)
        assert torch.allclose(part.y, problem.y[part.index])


# -- total variation --------------------------------------------------------------------------------
@pytest.mark.parametrize("m, budget", [(24, None), (24, 1), (56, None), (56, 1)])
def test_tv_grid_is_the_plain_iteration(m, budget, monkeypatch):
    """Every lam in one program, with and without chunks (u = A^T p form): the plain per-instance,
    per-lam Chambolle-Pock answer, where some points stop early and some at the step cap."""
    problem = problem64(batch=3, m=m, seed=2)
    if budget is not None:
        monkeypatch.setattr(common, "CACHE_BYTES", budget)
    lams, steps, tol = [1e-3, 0.02, 0.2], 300, 1e-4
    x_hat = tv_solve(problem, lams, steps=steps, tol=tol).reshape(3, 3, N)
    norm_a = operator_norm_squared(problem)
    for g, lam in enumerate(lams):
        for b in range(3):
            matrix, y = problem.operator.dense()[b], problem.y[b]
            plain = plain_tv(matrix, y, lam, float(norm_a[b]), SHAPE, steps, tol)
            assert torch.allclose(x_hat[g, b], plain, rtol=0, atol=1e-9)


def test_tv_recover_grid_is_recover_at_each_point():
    problem = problem64(batch=4, m=30, seed=3, dtype=torch.float32)
    grid = [{"lam": lam} for lam in (1e-4, 0.01, 0.1, 1.0)]
    results = TotalVariation().recover_grid(problem, grid)
    for point, x_hat in zip(grid, results):
        alone = TotalVariation(**point).recover(problem)
        assert x_hat.shape == alone.shape == (4, *SHAPE)
        assert torch.allclose(x_hat, alone, atol=1e-5)
    assert not torch.allclose(results[0], results[-1], atol=1e-2)
