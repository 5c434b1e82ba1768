"""Links f in  y = f(A x + e):  the one place that knows what each link does.

A link is named by a string on measurement models, problems and priors (`identity`, `sign`,
`abs`); `LINKS[name]` holds its behaviour, used by every part of csbench:

    measure     y from z = A x and noise e:      identity  z + e,   abs  |z| + e,   sign  sign(z + e)
    data_term   D(A G(z), y) of latent optimisation:
                identity ||A x - y||^2,   abs || |A x| - y ||^2,
                sign     sum_i softplus(-sqrt(m) y_i (A x)_i)  (logistic loss on unit-variance rows)
    align       x_hat with the link's ambiguity resolved against x before scoring:
                abs: the closer of x_hat, -x_hat;  sign: x_hat times c = max(<x_hat, x>/||x_hat||^2, 0)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from csbench.errors import CsbenchError


@dataclass(frozen=True)
class Link:
    name: str
    convention: str  # how the metrics treat the link (shown in the report)

    def measure(self, z: Tensor, e: Tensor) -> Tensor:
        return z + e

    def data_term(self, ax: Tensor, y: Tensor) -> Tensor:
        """(..., B, m), (B, m) -> (..., B)."""
        return (ax - y).pow(2).sum(-1)

    def align(self, x_hat: Tensor, x: Tensor) -> Tensor:
        return x_hat


class Abs(Link):
    def measure(self, z: Tensor, e: Tensor) -> Tensor:
        return z.abs() + e  # noise after the modulus: a noisy y may be negative

    def data_term(self, ax: Tensor, y: Tensor) -> Tensor:
        return (ax.abs() - y).pow(2).sum(-1)

    def align(self, x_hat: Tensor, x: Tensor) -> Tensor:
        flat_hat, flat = x_hat.flatten(1), x.flatten(1).to(x_hat.dtype)
        flip = (flat_hat + flat).norm(dim=1) < (flat_hat - flat).norm(dim=1)
        return torch.where(flip.view((-1,) + (1,) * (x_hat.dim() - 1)), -x_hat, x_hat)


class Sign(Link):
    def measure(self, z: Tensor, e: Tensor) -> Tensor:
        y = torch.sign(z + e)
        return torch.where(y == 0, torch.ones_like(y), y)  # sign(0) := +1, so y is in {-1, +1}

    def data_term(self, ax: Tensor, y: Tensor) -> Tensor:
        return torch.nn.functional.softplus(-(ax.shape[-1] ** 0.5) * y * ax).sum(-1)

    def align(self, x_hat: Tensor, x: Tensor) -> Tensor:
        flat_hat, flat = x_hat.flatten(1), x.flatten(1).to(x_hat.dtype)
        energy = (flat_hat * flat_hat).sum(dim=1)
        scale = (flat_hat * flat).sum(dim=1) / energy
        scale = torch.where(energy == 0, torch.zeros_like(scale), scale).clamp_min(0.0)
        return x_hat * scale.view((-1,) + (1,) * (x_hat.dim() - 1))


LINKS: dict[str, Link] = {
    "identity": Link("identity", "errors of x_hat as returned"),
    "abs": Abs("abs", "phaseless y = |A x| + e cannot tell x from -x: x_hat is replaced by whichever "
                      "of x_hat, -x_hat is closer to x (error = min(||x_hat - x||, ||x_hat + x||) per image)"),
    "sign": Sign("sign", "one-bit y = sign(A x + e) loses the scale of x: x_hat is rescaled by the "
                         "least-squares c = <x_hat, x> / ||x_hat||^2, clipped to c >= 0 (c = 0 when "
                         "x_hat = 0), per image"),
}


def get_link(name: str) -> Link:
    if name not in LINKS:
        raise CsbenchError(f"unknown link {name!r}; known: {', '.join(LINKS)}")
    return LINKS[name]
