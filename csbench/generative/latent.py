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

Each Adam step needs grad_z = J_G(z)^T grad_g D(A g, y) + 2 penalty z at g = G(z). Two fast paths
give the same numbers up to float rounding: a generator's hand-written `decode_and_pullback`
(G(z) and v -> J_G(z)^T v without an autograd graph, models.py) in place of autograd, and, for
dense A, z kept instance-major (B, R, k) so that A_b's products see its R vectors as contiguous
rows (`data_gradient`). (Not the sparsity solvers' cache-sized chunks of instances, each run
through all steps: VAE tasks on 64 digits with 8 and 20 MB chunks were no faster at m = 300 and
slower at m = 750, 43-57 and 53-69 s against 43-47 and 48-49 s.)
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.measurements.base import DenseOperator, LinearOperator
from csbench.measurements.links import get_link
from csbench.problem import Problem
from csbench.progress import step_progress

Decode = Callable[[Tensor], Tensor]
DecodeAndPullback = Callable[[Tensor], tuple[Tensor, Callable[[Tensor], Tensor]]]   # z -> (G(z), v -> J^T v)


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


def link_gradient(u: Tensor, y: Tensor, link: str) -> tuple[Tensor, Tensor]:
    """D(u, y) per problem and its gradient in u, by autograd of the link's data term."""
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        loss = data_term(u, y, link)
        (grad,) = torch.autograd.grad(loss.sum(), u)
    return loss.detach(), grad


def data_term_and_gradient(operator: LinearOperator, g: Tensor, y: Tensor, link: str) -> tuple[Tensor, Tensor]:
    """D(A g, y) per problem (..., B) and its gradient in g (..., B, n) by the chain rule,

        grad_g D(A g, y) = A^T grad_u D(u, y)  at u = A g,

    with the operator's own adjoint: autograd through `operator.forward` would run A^T in a
    slower layout (a transposed view of A), and callers that also need A^T r share this one."""
    loss, grad_ax = link_gradient(operator.forward(g), y, link)
    return loss, operator.adjoint(grad_ax)


def data_gradient(operator: LinearOperator, y: Tensor, link: str) -> tuple[Callable[[Tensor], Tensor], bool]:
    """g -> grad_g D(A g, y), and whether g is instance-major (B, R, n) rather than (R, B, n).

    Dense A: instance-major, by `forward_instances` and `adjoint_instances`; for the identity link
    with m > n / 2, through the Gram matrix, one product (2 n^2 flops per vector) instead of two
    (4 m n):   grad = 2 A^T (A g - y) = g (2 A^T A) - 2 y^T A   (rows g, y; A^T A formed once).
    Other operators: `data_term_and_gradient`, with their own products. (Not a per-instance loop
    that reads A_b from DRAM once for both products, the second from cache: 20% faster alone at
    m = 200-400, but VAE and DCGAN tasks at m = 200 and 300, interleaved, took 273 against 288 s
    over 8 runs, inside their spread: VAE m = 300 41-44 against 41-42 s.)"""
    if not isinstance(operator, DenseOperator):
        return (lambda g: data_term_and_gradient(operator, g, y, link)[1]), False
    matrices, rows = operator.matrices, y[:, None, :]                      # rows (B, 1, m)
    if link == "identity" and 2 * operator.m > operator.n:
        gram = torch.bmm(matrices.transpose(1, 2), matrices).mul_(2)          # (B, n, n)
        offset = torch.bmm(rows, matrices).mul_(-2)                           # (B, 1, n)
        return (lambda g: torch.baddbmm(offset, g, gram)), True
    return (lambda g: operator.adjoint_instances(link_gradient(operator.forward_instances(g), rows, link)[1])), True


def generator_pullback(decode: Decode) -> DecodeAndPullback | None:
    """The `decode_and_pullback` of the object whose method `decode` is (a generator or a prior), if
    it has one: z -> (G(z) flattened, v -> J_G(z)^T v)."""
    return getattr(getattr(decode, "__self__", None), "decode_and_pullback", None)


def pullback_or_autograd(decode: Decode) -> DecodeAndPullback:
    """z -> (G(z) flattened, v -> J_G(z)^T v): the generator's `decode_and_pullback` where it has one
    (call it under no_grad), else the same by autograd through `decode` (plug-in generators)."""
    pullback = generator_pullback(decode)
    return autograd_pullback(decode) if pullback is None else pullback


def autograd_pullback(decode: Decode) -> DecodeAndPullback:
    """`decode_and_pullback` by autograd: one graph per call, J_G(z)^T v by one backward pass."""
    def decode_and_pullback(z: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        with torch.enable_grad():
            leaf = z.detach().requires_grad_(True)
            g = decode_flat(decode, leaf)
        return g.detach(), lambda v: torch.autograd.grad(g, leaf, v)[0]

    return decode_and_pullback


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


class Adam:
    """torch.optim.Adam (defaults betas (0.9, 0.999), eps 1e-8, no weight decay) on one tensor with
    the same operations, so the same numbers, without the optimiser's per-step overhead:

        m <- lerp(m, g, 1 - b1),  v <- b2 v + (1 - b2) g^2,
        z <- z - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)"""

    def __init__(self, z: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.z, self.lr, self.betas, self.eps, self.t = z, lr, betas, eps, 0
        self.m, self.v = torch.zeros_like(z), torch.zeros_like(z)

    def step(self, grad: Tensor) -> None:
        (b1, b2), self.t = self.betas, self.t + 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        self.z.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))


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
    gradient, instance_major = data_gradient(problem.operator, y, problem.link)
    pullback = generator_pullback(decode)
    z = initial_latents(problem.batch, restarts, latent_dim, generator).to(y.device)
    if instance_major:
        z = z.transpose(0, 1).contiguous()                             # (B, R, k)
    optimiser = Adam(z, lr)

    for step in range(steps):
        step_progress(f"latent optimisation ({restarts} restarts)", step, steps)
        if pullback is not None:
            with torch.no_grad():                                      # also for weights that need gradients
                g, vjp = pullback(z)
                optimiser.step(vjp(gradient(g)).add_(z, alpha=2 * penalty))
        else:
            with torch.enable_grad():
                leaf = z.detach().requires_grad_(True)
                g = decode_flat(decode, leaf)
                torch.autograd.backward((g, penalty * leaf.pow(2).sum()), (gradient(g.detach()), None))
            optimiser.step(leaf.grad)
    with torch.no_grad():
        z = z.transpose(0, 1) if instance_major else z                 # (R, B, k)
        ax = problem.operator.forward(decode_flat(decode, z))
        final = data_term(ax, y, problem.link) + penalty * z.pow(2).sum(-1)
        z_best = pick_best(z, final)                                   # (B, k)
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
