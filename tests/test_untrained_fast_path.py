"""The deep decoder's fast path (csbench/untrained.py): `DecoderBlock`'s hand-written forward and
backward, with the decoders of a grid side by side, compute what autograd of the reference
`deep_decode` computes, and the fit is torch.optim.Adam on that objective, up to float rounding."""
from __future__ import annotations

import pytest
import torch

from csbench.generative.latent import data_gradient, data_term
from csbench.measurements.base import DenseOperator
from csbench.problem import Problem
from csbench.untrained import DecoderBlock, DeepDecoderPrior, deep_decode, init_decoder
from matrix_free import MatrixFree

KEYS = ("mixes", "scale", "shift", "output")


def close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    """|a - b| <= rtol max|b|: equal up to rounding at the scale of b."""
    return bool((a - b).abs().max() <= rtol * b.abs().max())


def problem_for(x: torch.Tensor, m: int, seed: int, link: str = "identity", dense: bool = True) -> Problem:
    """y = link(A x + e), A_ij ~ N(0, 1/m), for signals x (B, C, H, W) of x's dtype."""
    batch, n = x.shape[0], x[0].numel()
    g = torch.Generator().manual_seed(seed)
    matrices = (torch.randn(batch, m, n, generator=g) / m ** 0.5).to(x.dtype)
    operator = DenseOperator(matrices) if dense else MatrixFree(DenseOperator(matrices))
    z = operator.forward(x.reshape(batch, n)) + (0.1 * torch.randn(batch, m, generator=g) / m ** 0.5).to(x.dtype)
    y = {"identity": z, "abs": z.abs(), "sign": torch.sign(z)}[link]
    return Problem(y=y, operator=operator, shape=tuple(x.shape[1:]), noise=0.1, link=link,
                   generator=torch.Generator().manual_seed(seed + 1))


def random_decoders(batch: int, widths: tuple[int, ...], levels: int, shape: tuple[int, int, int],
                    dtype: torch.dtype, seed: int) -> list:
    """init_decoder's draws with every weight perturbed per instance (shifts, scales of both signs)."""
    g = torch.Generator().manual_seed(seed)
    decoders = []
    for k in widths:
        seed_input, weights = init_decoder(batch, k, levels, shape, g)
        weights = {key: (value + torch.randn(value.shape, generator=g)).to(dtype) for key, value in weights.items()}
        decoders.append((seed_input.to(dtype), weights))
    return decoders


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float64, 1e-11)])
@pytest.mark.parametrize("shape, levels, widths, link", [
    ((1, 28, 28), 3, (4, 8, 12), "identity"),      # the paper's grid, x2 upsampling
    ((1, 28, 28), 3, (4, 8, 12), "abs"),
    ((3, 10, 13), 2, (5,), "sign"),                # colour, odd sizes (7 -> 10, 5 -> 13), one decoder
    ((3, 10, 13), 2, (3, 6), "identity"),
])
def test_block_gradient_is_autograd_of_deep_decode(dtype, rtol, shape, levels, widths, link):
    batch, m = 3, 40
    decoders = random_decoders(batch, widths, levels, shape, dtype, seed=1)
    block = DecoderBlock(decoders, shape, torch.device("cpu"))
    x = block.forward()
    truth = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(dtype)
    problem = problem_for(truth, m, seed=3, link=link)
    gradient, instance_major = data_gradient(problem.operator, problem.y, link)
    assert instance_major and x.shape == (batch, len(widths), truth[0].numel())
    block.backward(gradient(x))
    fast = {key: value.clone() for key, value in block.grads.items()}

    start = 0
    for p, (seed_input, weights) in enumerate(decoders):
        leaves = {key: value.clone().requires_grad_(True) for key, value in weights.items()}
        plain = deep_decode(leaves, seed_input, shape[1:]).flatten(1)
        assert close(x[:, p], plain.detach(), rtol)
        loss = data_term(problem.operator.forward(plain), problem.y, link).sum()
        grads = dict(zip(KEYS, torch.autograd.grad(loss, [leaves[key] for key in KEYS])))
        block_, rows = slice(start, start + seed_input.shape[1]), slice(p * shape[0], (p + 1) * shape[0])
        start += seed_input.shape[1]
        assert close(fast["mixes"][:, :, block_, block_], grads["mixes"], rtol)
        assert close(fast["scale"][..., block_], grads["scale"], rtol)
        assert close(fast["shift"][..., block_], grads["shift"], rtol)
        assert close(fast["output"][:, rows, block_], grads["output"], rtol)
        fast["mixes"][:, :, block_, block_] = 0
        fast["output"][:, rows, block_] = 0
    assert not fast["mixes"].any() and not fast["output"].any()     # off the blocks: exactly 0


def reference_fit(problem: Problem, architectures: list[tuple[int, int]], steps: int, lr: float) -> list:
    """The plain fit: autograd of D(A D_W(u), y) through `deep_decode`, torch.optim.Adam on all weights."""
    decoders = [init_decoder(problem.batch, k, levels, problem.shape, problem.generator) for k, levels in architectures]
    leaves = [{key: value.clone().requires_grad_(True) for key, value in weights.items()} for _, weights in decoders]
    optimiser = torch.optim.Adam([w for weights in leaves for w in weights.values()], lr=lr, foreach=True)

    def outputs() -> torch.Tensor:
        return torch.stack([deep_decode(weights, seed_input, problem.shape[1:]).flatten(1)
                            for (seed_input, _), weights in zip(decoders, leaves)])

    for _ in range(steps):
        optimiser.zero_grad()
        data_term(problem.operator.forward(outputs()), problem.y, problem.link).sum().backward()
        optimiser.step()
    with torch.no_grad():
        return [x.reshape(problem.batch, *problem.shape) for x in outputs()]


@pytest.mark.parametrize("m, link, dense", [(30, "identity", True), (150, "identity", True),   # A, then Gram
                                            (60, "abs", True), (60, "identity", False)])
def test_fit_is_adam_on_autograd_of_deep_decode(m, link, dense):
    """Few steps: Adam turns float rounding into lr-sized steps where a gradient is ~0, so long
    runs agree in error, not pixel by pixel."""
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    architectures = [(4, 3), (6, 2), (8, 3)]                       # two depths: two blocks, grid order kept
    problem = problem_for(x, m, seed=5, link=link, dense=dense)
    assert data_gradient(problem.operator, problem.y, link)[1] is dense  # dense: instance-major path; else generic
    plain = reference_fit(problem_for(x, m, seed=5, link=link, dense=dense), architectures, steps=15, lr=0.01)
    fast = DeepDecoderPrior(steps=15).fit(problem, architectures)
    assert len(fast) == len(architectures)
    for a, b in zip(fast, plain):
        assert a.shape == x.shape and a.is_contiguous() and close(a, b, rtol=1e-5)
    assert not close(fast[0], fast[2], rtol=1e-2)                  # the decoders do differ


def test_the_first_instances_fit_alike_in_any_batch_and_every_instance_starts_apart():
    """Instance i draws its own start, the same in any batch of more than i instances; two copies of
    one problem start apart, so a mean over images averages over starts."""
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(6))
    prior, grid = DeepDecoderPrior(steps=30), [{"channels": c} for c in (4, 8, 12)]
    together = prior.recover_grid(problem_for(x, 80, seed=7), grid)
    first_two = prior.recover_grid(problem_for(x, 80, seed=7).select([0, 1]), grid)
    copies = prior.recover_grid(problem_for(x, 80, seed=7).select([2, 2]), grid)
    for few, many, twins in zip(first_two, together, copies):
        assert few.shape == (2, 1, 16, 16) and close(few, many[:2], rtol=1e-6)
        assert not close(twins[0], twins[1], rtol=1e-3)
