"""Empirical phase transitions, noiseless Gaussian measurements A_ij ~ N(0, 1/m).

(a) `random_net_phase`: x* = G(z*) for a random expansive ReLU net G (k -> ... -> 784,
    `csbench.datasets.random_net`), recovered by the negation-check descent (`hv_descent`).
    Success: relative error ||G(z_hat) - x*|| / ||x*|| < 1e-3 (in signal space, so a
    different z with the same G(z) counts), keeping the best of `restarts` random starts by the
    loss ||A G(z) - y||^2 (never the truth). Theory: m >= k is necessary, about 2k suffices.
(b) `l1_phase`: s-sparse x* in R^n (n = 128 by default, Gaussian non-zeros at uniform random
    positions), recovered by l1 minimisation, solved as a Lasso with a tiny lam = 1e-4 ||A^T y||_inf
    by `fista_l1`. Success: relative error < 1e-2. Theory: the statistical dimension
    `statistical_dimension_l1(s, n)`.

All m of one k run as one batch: a problem with m measurements is padded with zero rows of A
(and zeros in y) to the largest m, which leaves it unchanged. The l1 grid draws its problems the
same way and solves each m as its own batch without the padding (it stays in cache), by
matrix-vector products (`matrix_vector_maps`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from csbench.baselines.solvers import LinearMap, fista_l1
from csbench.datasets.random_net import RandomReluGenerator, expansive_widths
from csbench.generative.hv import hv_descent
from csbench.generative.latent import decode_flat, pick_best
from csbench.measurements.base import DenseOperator
from csbench.rng import torch_generator

RANDOM_NET_TOLERANCE = 1e-3
L1_TOLERANCE = 1e-2


def padded_gaussian(ms: list[int], trials: int, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A of shape (len(ms) * trials, max m, n): block i has ms[i] rows ~ N(0, 1/ms[i]), the rest 0.
    Also returns the m of each instance."""
    top = max(ms)
    per_instance = torch.tensor([m for m in ms for _ in range(trials)])
    a = torch.randn(len(per_instance), top, n, generator=generator) / per_instance.sqrt()[:, None, None]
    a = a * (torch.arange(top)[None, :, None] < per_instance[:, None, None])
    return a, per_instance


def matrix_vector_maps(matrices: Tensor) -> tuple[LinearMap, LinearMap]:
    """x -> A x and r -> A^T r for A (B, m, n) on (B, n) / (B, m): A x as products with contiguous
    columns, bmm(A, x[..., None]) (1.3x faster on CPU than `DenseOperator.forward`, whose (B, n, 1)
    view of x has strides (n, 1, B n)), A^T r as rows r^T A."""
    return (lambda x: torch.bmm(matrices, x.unsqueeze(-1)).squeeze(-1),
            lambda r: torch.bmm(r.unsqueeze(1), matrices).squeeze(1))


def random_net_phase(ks: tuple[int, ...] = (2, 4, 6, 8, 10), ms: tuple[int, ...] = tuple(range(2, 31, 2)), *,
                     trials: int = 6, restarts: int = 3, depth: int = 2, width: int = 250, steps: int = 300,
                     seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """Success of the negation-check descent over the (k, m) grid; `scale` multiplies trials.

    One row per (k, m, trial): k, m, trial, rel_error, success.
    """
    trials = max(1, round(trials * scale))
    rows = []
    for k in ks:
        network = RandomReluGenerator(expansive_widths(k, depth, width), seed=seed)
        generator = torch_generator("phase-random-net", seed, k)
        a, m_of = padded_gaussian(list(ms), trials, network.widths[-1], generator)
        z_true = torch.randn(len(m_of), k, generator=generator)
        with torch.no_grad():
            x_true = network(z_true)
        operator = DenseOperator(a)
        z0 = torch.randn(restarts, len(m_of), k, generator=generator)
        z, loss = hv_descent(network, operator, operator.forward(x_true), z0, steps=steps)
        with torch.no_grad():
            error = (decode_flat(network, pick_best(z, loss)) - x_true).norm(dim=1) / x_true.norm(dim=1)
        for i, (m, e) in enumerate(zip(m_of.tolist(), error.tolist())):
            rows.append({"k": k, "m": m, "trial": i % trials, "rel_error": e,
                         "success": e < RANDOM_NET_TOLERANCE})
    return pd.DataFrame(rows)


def l1_phase(ss: tuple[int, ...] = (2, 4, 8, 16, 32, 48), ms: tuple[int, ...] = tuple(range(8, 129, 8)), *,
             n: int = 128, trials: int = 6, steps: int = 3000, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """Success of l1 minimisation over the (s, m) grid; `scale` multiplies trials.

    One row per (s, m, trial): s, n, m, trial, rel_error, success.
    """
    trials = max(1, round(trials * scale))
    generator = torch_generator("phase-l1", seed, n)
    blocks = [(s, m) for s in ss for m in ms]
    a, m_of = padded_gaussian([m for _, m in blocks], trials, n, generator)
    s_of = torch.tensor([s for s, _ in blocks for _ in range(trials)])
    ranks = torch.rand(len(s_of), n, generator=generator).argsort(dim=1).argsort(dim=1)
    x_true = torch.randn(len(s_of), n, generator=generator) * (ranks < s_of[:, None])
    operator = DenseOperator(a)
    y = operator.forward(x_true)
    lam = 1e-4 * operator.adjoint(y).abs().amax(dim=1)
    lipschitz = operator.lipschitz_bound(iterations=30, generator=generator)
    x_hat = torch.empty_like(x_true)
    for m in ms:  # one solve per m without the padding rows: each stays in cache, and stops on its own
        rows = m_of == m
        forward, adjoint = matrix_vector_maps(a[rows, :m].contiguous())
        x_hat[rows] = fista_l1(forward, adjoint, y[rows, :m], lam[rows], lipschitz[rows], steps=steps, tol=1e-7)
    error = (x_hat - x_true).norm(dim=1) / x_true.norm(dim=1)
    return pd.DataFrame({"s": s_of.numpy(), "n": n, "m": m_of.numpy(), "trial": np.arange(len(s_of)) % trials,
                         "rel_error": error.numpy(), "success": (error < L1_TOLERANCE).numpy()})
