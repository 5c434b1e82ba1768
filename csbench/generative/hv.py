"""Subgradient descent with a negation check (Huang, Hand, Heckel, Voroninski, arXiv 1812.04176).

For a generator G and measurements y = A G(z*) + e, descend

    f(z) = 1/2 || A G(z) - y ||^2          (phaseless link: 1/2 || |A G(z)| - y ||^2)

and, before every step, replace z by -z when f(-z) < f(z). For random expansive ReLU networks
f has one spurious critical point, near -rho_d z* (`csbench.theory.rho`); the check jumps out
of its basin, plain descent (`check=False`) can end there.

Step size (normalised): `step` is in units of 1 / L, with L = ||A J_G(z_0)||_2^2 the top
eigenvalue of the Gauss-Newton matrix J^T A^T A J at the start (power iteration, per restart and
instance), so the same `step` works for any generator and any scale of A. A ReLU net without
biases is positively homogeneous, so L does not depend on ||z_0||; for the Hand-Voroninski nets
(W_i ~ N(0, 1/n_i)) each layer halves ||J v||^2 and L is about 2^-d times the spread of A's
spectrum. The re-implementation's "step 0.7" is in its own scaling and is not copied literally.
Default step 1.0: on random-net[k=10] (depth 2) with m = 100, noiseless, 300 steps reach a
relative error of about 1e-7.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.generative.latent import Decode, data_term, data_term_and_gradient, decode_flat, pick_best
from csbench.generative.priors import GenerativePrior
from csbench.measurements.base import LinearOperator
from csbench.problem import Problem

def check_link(link: str) -> None:
    if link not in ("identity", "abs"):
        raise CsbenchError(f"link {link!r} is not supported here (identity, abs)")


def measurement_loss(ax: Tensor, y: Tensor, link: str) -> Tensor:
    """f = 1/2 ||link(A x) - y||^2 per problem, (..., B, m) -> (..., B); link identity or abs."""
    check_link(link)
    return 0.5 * data_term(ax, y, link)


def _flat_measure(decode: Decode, operator: LinearOperator) -> Callable[[Tensor], Tensor]:
    """z (..., B, k) -> A G(z) (..., B, m)."""
    return lambda z: operator.forward(decode_flat(decode, z))


def gauss_newton_norm(decode: Decode, operator: LinearOperator, z: Tensor, *,
                      iterations: int = 20) -> Tensor:
    """||A J_G(z)||_2^2 for each z[..., :] (power iteration on J^T A^T A J from v = z / ||z||,
    so each problem's value depends on itself only), shape z.shape[:-1]."""
    measure = _flat_measure(decode, operator)
    z = z.detach()
    _, pullback = torch.func.vjp(measure, z)
    v = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    value = torch.ones(z.shape[:-1], dtype=z.dtype, device=z.device)
    for _ in range(iterations):
        _, push = torch.func.jvp(measure, (z,), (v,))
        (w,) = pullback(push)
        value = w.norm(dim=-1)
        v = w / value.clamp_min(1e-30).unsqueeze(-1)
    return value.detach()


def hv_descent(decode: Decode, operator: LinearOperator, y: Tensor, z0: Tensor, *, steps: int,
               step: float = 1.0, check: bool = True, link: str = "identity"
               ) -> tuple[Tensor, Tensor]:
    """Run (sub)gradient descent on f from z0 (shape (R, B, k), R restarts of B instances).

    With `check`, every iteration first flips z -> -z where f(-z) < f(z). Returns the final
    z (R, B, k) and f(z) (R, B).
    """
    check_link(link)
    measure = _flat_measure(decode, operator)
    with torch.enable_grad():
        lipschitz = gauss_newton_norm(decode, operator, z0)
        rate = (step / lipschitz.clamp_min(1e-30)).unsqueeze(-1)
        z = z0.detach().clone()
        for _ in range(steps):
            if check:
                with torch.no_grad():
                    both = measurement_loss(measure(torch.stack([z, -z])), y, link)
                    z = torch.where((both[1] < both[0]).unsqueeze(-1), -z, z)
            z.requires_grad_(True)
            g = decode_flat(decode, z)
            _, grad_g = data_term_and_gradient(operator, g, y, link)              # of 2 f, in G(z)
            (grad,) = torch.autograd.grad(g, z, 0.5 * grad_g)
            z = (z - rate * grad).detach()
    with torch.no_grad():
        loss = measurement_loss(measure(z), y, link)
    return z, loss


class HVPrior(GenerativePrior):
    name = "hv"
    description = "subgradient descent on ||A G(z) - y||^2 with a negation check (Huang-Hand-Heckel-Voroninski)"
    parameters = {"model": None, "steps": 500, "step": 1.0, "restarts": 3, "check": True}
    links = ("identity", "abs")

    def recover(self, problem: Problem) -> Tensor:
        z0 = self.initial_latents(problem, int(self.params["restarts"]))
        z, loss = hv_descent(self.decode, problem.operator, problem.y, z0,
                             steps=int(self.params["steps"]), step=float(self.params["step"]),
                             check=bool(self.params["check"]), link=problem.link)
        with torch.no_grad():
            x = self.decode(pick_best(z, loss))
        return self.finish(x, problem)
