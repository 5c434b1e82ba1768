"""Recovery by latent optimisation, the one code path of every generative prior (Bora et al. 2017):

    z_hat = argmin_z  D(A G(z), y) + penalty ||z||^2,     x_hat = G(z_hat)

with the data term D of the measurement link (csbench/measurements/links.py: ||A G(z) - y||^2 for
identity, || |A G(z)| - y ||^2 for phaseless, a logistic loss for one-bit, which only fixes x up
to what G's range allows).

Adam runs on z of shape (R, B, k): R restarts of B instances in one tensor program. The summed
loss is minimised, and since each z_{r,b} only enters its own term, every (restart, instance) is
optimised exactly independently. The restart with the lowest final loss wins per instance (the
ground truth is never used). Every instance starts from the same R draws of the generator, so
an instance's result is the same alone or anywhere inside a batch.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.measurements.base import LinearOperator
from csbench.measurements.links import get_link
from csbench.problem import Problem
from csbench.progress import progress

Decode = Callable[[Tensor], Tensor]


class IdentityOperator(LinearOperator):
    """A = I_n for every instance (m = n): used for the representation error min_z ||G(z) - x||^2."""

    def __init__(self, n: int, batch: int):
        super().__init__(n, n, batch)

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y


def data_term(ax: Tensor, y: Tensor, link: str) -> Tensor:
    """D(A G(z), y) per problem: ax (R, B, m), y (B, m) -> (R, B), D the link's (links.py)."""
    return get_link(link).data_term(ax, y)


def data_term_and_gradient(operator: LinearOperator, g: Tensor, y: Tensor, link: str) -> tuple[Tensor, Tensor]:
    """D(A g, y) per problem (..., B) and its gradient in g (..., B, n) by the chain rule,

        grad_g D(A g, y) = A^T grad_u D(u, y)  at u = A g,

    with the operator's own adjoint: autograd through `operator.forward` would run A^T in a
    slower layout (a transposed view of A), and callers that also need A^T r share this one."""
    with torch.enable_grad():
        ax = operator.forward(g.detach()).requires_grad_(True)
        loss = data_term(ax, y, link)
        (grad_ax,) = torch.autograd.grad(loss.sum(), ax)
    return loss.detach(), operator.adjoint(grad_ax)


def decode_flat(decode: Decode, z: Tensor) -> Tensor:
    """G(z) flattened: z (..., k) -> (..., n), whatever shape `decode` gives each signal."""
    return decode(z).reshape(*z.shape[:-1], -1)


def pick_best(values: Tensor, loss: Tensor) -> Tensor:
    """values (R, B, ...) -> (B, ...) at the restart with the lowest loss (R, B) per instance."""
    best = loss.argmin(dim=0)
    return values[best, torch.arange(values.shape[1], device=values.device)]


def check_measurements(problem: Problem) -> None:
    """A one-line CsbenchError when y is not (B, m) for the problem's operator."""
    expected = (problem.operator.batch, problem.operator.m)
    if tuple(problem.y.shape) != expected:
        raise CsbenchError(f"measurements of shape {tuple(problem.y.shape)} do not match the operator "
                           f"({expected[0]} instances x {expected[1]} measurements)")


def initial_latents(batch: int, restarts: int, latent_dim: int, generator: torch.Generator) -> Tensor:
    """z0 of shape (R, B, k): R starts ~ N(0, I) drawn once and shared by all B instances, so an
    instance's start does not depend on its position or on the batch size."""
    return torch.randn(restarts, 1, latent_dim, generator=generator).repeat(1, batch, 1)


def optimise_latent(decode: Decode, problem: Problem, *, latent_dim: int, steps: int = 1000,
                    lr: float = 0.01, restarts: int = 10, penalty: float = 0.0,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise D(A G(z), y) + penalty ||z||^2 over z with Adam, `restarts` starts per instance.

    decode: z (..., k) -> (..., C, H, W). Returns x_hat (B, C, H, W), z (B, k) and the winning
    restart's final loss (B,). `generator` defaults to `problem.generator`.

    Each instance's result is independent of its batch up to floating-point rounding: kernels of
    different batch sizes may round differently, and a chaotic optimisation (e.g. the DCGAN's
    Adam lr 0.1) can amplify that into visibly different, equally good, local minima.
    """
    if steps < 0 or restarts < 1:
        raise CsbenchError(f"latent optimisation needs steps >= 0 and restarts >= 1, got {steps}, {restarts}")
    check_measurements(problem)
    y = problem.y
    generator = problem.generator if generator is None else generator
    z = initial_latents(problem.batch, restarts, latent_dim, generator).to(y.device).requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)

    with torch.enable_grad():
        for step in range(steps):
            if step % max(1, steps // 10) == 0:
                progress(f"latent optimisation, step {step}/{steps}, {restarts} restarts")
            optimiser.zero_grad(set_to_none=True)
            g = decode_flat(decode, z)
            _, grad_g = data_term_and_gradient(problem.operator, g, y, problem.link)
            torch.autograd.backward((g, penalty * z.pow(2).sum()), (grad_g, None))
            optimiser.step()
    with torch.no_grad():
        ax = problem.operator.forward(decode_flat(decode, z))
        final = data_term(ax, y, problem.link) + penalty * z.pow(2).sum(-1)
        z_best = pick_best(z.detach(), final)                        # (B, k)
        return decode(z_best), z_best, pick_best(final, final)


def representation_error(decode: Decode, x: Tensor, *, latent_dim: int, steps: int = 1000, lr: float = 0.01,
                         restarts: int = 10, generator: torch.Generator) -> Tensor:
    """min_z ||G(z) - x||^2 / n per image (B,), by optimise_latent with A = I and no penalty."""
    batch, n = x.shape[0], x[0].numel()
    problem = Problem(y=x.reshape(batch, n), operator=IdentityOperator(n, batch), shape=tuple(x.shape[1:]),
                      noise=0.0, generator=generator)
    x_hat, _, _ = optimise_latent(decode, problem, latent_dim=latent_dim, steps=steps, lr=lr,
                                  restarts=restarts, generator=generator)
    return (x_hat - x).pow(2).flatten(1).mean(1)
