"""The fast paths of the generative and untrained priors compute the same numbers as the plain
formulations they replace (up to float rounding): the frozen DCGAN, the chain-rule data gradient,
latent optimisation, the generators' hand-written gradients, and the tuning grids solved in one
program."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from csbench.baselines.solvers import soft_threshold
from csbench.baselines.transforms import Basis
from csbench.datasets.random_net import RandomReluGenerator
from csbench.errors import CsbenchError
from csbench.generative.hv import gauss_newton_norm, hv_descent
from csbench.generative.latent import (Adam, data_gradient, data_term, data_term_and_gradient, generator_pullback,
                                      initial_latents, optimise_latent, pullback_or_autograd)
from csbench.generative.models import VAE, DCGANGenerator, FrozenDCGAN, freeze
from csbench.generative.pgd import PGDGANPrior, pgd_range
from csbench.generative.priors import VAEPrior
from csbench.generative.sparsegen import SparseGenPrior, sparsegen
from csbench.measurements.base import DenseOperator
from csbench.priors import Prior, PriorContext
from csbench.problem import Problem
from csbench.untrained import DeepDecoderPrior, channel_norm, upsample
from matrix_free import MatrixFree

LINKS = ("identity", "abs", "sign")


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> bool:
    """|a - b| <= rtol max|b|: equal up to float32 rounding at the scale of b."""
    return bool((a - b).abs().max() <= rtol * b.abs().max())


def problem_for(x: torch.Tensor, m: int, seed: int, link: str = "identity", dataset: str = "") -> Problem:
    """y = link(A x + e), A_ij ~ N(0, 1/m), for signals x (B, C, H, W)."""
    batch, n = x.shape[0], x[0].numel()
    g = torch.Generator().manual_seed(seed)
    operator = DenseOperator(torch.randn(batch, m, n, generator=g) / m ** 0.5)
    z = operator.forward(x.reshape(batch, n)) + 0.1 * torch.randn(batch, m, generator=g) / m ** 0.5
    y = {"identity": z, "abs": z.abs(), "sign": torch.sign(z)}[link]
    return Problem(y=y, operator=operator, shape=tuple(x.shape[1:]), noise=0.1, link=link, dataset=dataset,
                   generator=torch.Generator().manual_seed(seed + 1))


@pytest.fixture(scope="module")
def trained_like_dcgan() -> DCGANGenerator:
    """A DCGAN generator with random weights and non-trivial batch-norm statistics, in eval mode."""
    net = DCGANGenerator()
    g = torch.Generator().manual_seed(0)
    net.reset_parameters(g)
    for bn in (net.body[0], net.body[3]):
        bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=g))
        bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))
        bn.bias.data.copy_(0.1 * torch.randn(bn.num_features, generator=g))
    return net.eval()


def test_frozen_dcgan_is_the_same_generator(trained_like_dcgan):
    frozen = freeze(trained_like_dcgan)
    assert isinstance(frozen, FrozenDCGAN) and frozen.latent_dim == 100 and frozen.shape == (1, 28, 28)
    z = torch.randn(3, 4, 100, generator=torch.Generator().manual_seed(1))
    plain, fast = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    x_plain, x_fast = trained_like_dcgan.decode(plain), frozen.decode(fast)
    assert x_fast.shape == (3, 4, 1, 28, 28) and close(x_fast, x_plain)
    weights = torch.rand(x_plain.shape, generator=torch.Generator().manual_seed(2))
    (x_plain * weights).sum().backward()
    (x_fast * weights).sum().backward()
    assert close(fast.grad, plain.grad)
    assert not any(p.requires_grad for p in frozen.parameters()) and not list(frozen.parameters())


def test_freeze_keeps_other_generators_and_refuses_training_batch_norm(trained_like_dcgan):
    vae = VAE(latent_dim=2, hidden=8).train()
    assert freeze(vae) is vae and not vae.training and not any(p.requires_grad for p in vae.parameters())
    with pytest.raises(CsbenchError, match="eval mode"):
        FrozenDCGAN(DCGANGenerator().train())


@pytest.mark.parametrize("link", LINKS)
def test_data_term_gradient_is_the_chain_rule(link):
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    problem = problem_for(x, m=20, seed=4, link=link)
    g = torch.randn(3, 5, 36, generator=torch.Generator().manual_seed(5), requires_grad=True)
    plain = data_term(problem.operator.forward(g), problem.y, link)
    (plain_grad,) = torch.autograd.grad(plain.sum(), g)
    loss, grad = data_term_and_gradient(problem.operator, g, problem.y, link)
    assert loss.shape == (3, 5) and grad.shape == g.shape
    assert close(loss, plain) and close(grad, plain_grad)


def small_relu_net() -> RandomReluGenerator:
    return RandomReluGenerator((4, 64, 256), seed=3)


@pytest.mark.parametrize("link", LINKS)
def test_latent_optimisation_is_plain_adam_on_the_objective(link):
    """The reference: autograd of D(A G(z), y) + penalty ||z||^2 through everything, Adam on z."""
    net = small_relu_net()
    decode = lambda z: net(z.reshape(-1, 4)).reshape(*z.shape[:-1], 1, 16, 16)   # noqa: E731
    x = decode(torch.randn(4, 4, generator=torch.Generator().manual_seed(6)))
    problem = problem_for(x, m=30, seed=7, link=link)
    steps, lr, restarts, penalty = 40, 0.05, 3, 0.1
    x_hat, _, loss = optimise_latent(decode, problem, latent_dim=4, steps=steps, lr=lr, restarts=restarts,
                                     penalty=penalty, generator=torch.Generator().manual_seed(8))
    z = initial_latents(4, restarts, 4, torch.Generator().manual_seed(8)).requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)

    def objective() -> torch.Tensor:
        ax = problem.operator.forward(decode(z).flatten(-3))
        return data_term(ax, problem.y, link) + penalty * z.pow(2).sum(-1)

    for _ in range(steps):
        optimiser.zero_grad()
        objective().sum().backward()
        optimiser.step()
    with torch.no_grad():
        final = objective()
    best = final.argmin(0)
    assert close(loss, final.min(0).values)
    assert close(x_hat, decode(z.detach()[best, torch.arange(4)]), rtol=1e-4)


def grid_both_ways(prior: Prior, problem_maker, grid: list[dict]) -> tuple[list, list]:
    """(point by point, as the base class runs a grid; the prior's own recover_grid), each on a
    fresh problem with the same seeds."""
    return Prior.recover_grid(prior, problem_maker(), grid), prior.recover_grid(problem_maker(), grid)


def test_sparsegen_lam_grid_in_one_program_equals_point_by_point():
    network = small_relu_net()
    dataset = SimpleNamespace(name="random-net", generator=network, shape=(1, 16, 16))
    prior = SparseGenPrior(steps=60, restarts=2)
    prior.setup(PriorContext(dataset=dataset, shape=dataset.shape))
    x = network(torch.randn(3, 4, generator=torch.Generator().manual_seed(9))).reshape(3, 1, 16, 16)
    grid = [{"lam": lam} for lam in prior.tuning["lam"]]
    looped, batched = grid_both_ways(prior, lambda: problem_for(x, 40, seed=10, dataset="random-net"), grid)
    assert len(batched) == len(grid)
    for one, together in zip(looped, batched):
        assert together.shape == x.shape and close(together, one, rtol=1e-4)
    assert not close(looped[0], looped[-1])                     # the points do differ


def test_deep_decoder_grid_in_one_loop_equals_point_by_point():
    """Few steps: Adam turns float rounding into lr-sized steps where a gradient is ~0, so long
    runs agree in error, not pixel by pixel."""
    prior = DeepDecoderPrior(steps=10)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(11))
    grid = [{"channels": c} for c in prior.tuning["channels"]]
    looped, batched = grid_both_ways(prior, lambda: problem_for(x, 60, seed=12), grid)
    assert len(batched) == len(grid)
    for one, together in zip(looped, batched):
        assert together.shape == x.shape and close(together, one, rtol=1e-4)


def test_channel_norm_is_the_textbook_formula():
    g = torch.Generator().manual_seed(13)
    h = torch.randn(2, 3, 5, 5, generator=g)
    scale, shift = torch.rand(2, 3, generator=g), torch.randn(2, 3, generator=g)
    mean = h.mean(dim=(2, 3), keepdim=True)
    var = h.var(dim=(2, 3), unbiased=False, keepdim=True)
    plain = (h - mean) / torch.sqrt(var + 1e-5) * scale[..., None, None] + shift[..., None, None]
    assert close(channel_norm(h, scale, shift), plain)


@pytest.mark.parametrize("size_in, size_out", [((7, 7), (14, 14)), ((4, 7), (7, 13))])
def test_upsampling_is_bilinear_interpolation(size_in, size_out):
    h = torch.randn(2, 3, *size_in, generator=torch.Generator().manual_seed(14))
    plain = torch.nn.functional.interpolate(h, size=size_out, mode="bilinear", align_corners=False)
    assert close(upsample(h, size_out), plain)


@pytest.mark.parametrize("link", ("identity", "abs"))
def test_hv_descent_is_plain_gradient_descent_with_the_negation_check(link):
    net = small_relu_net()
    decode = lambda z: net(z.reshape(-1, 4)).reshape(*z.shape[:-1], 1, 16, 16)   # noqa: E731
    x = decode(torch.randn(3, 4, generator=torch.Generator().manual_seed(15)))
    problem = problem_for(x, m=40, seed=16, link=link)
    z0 = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(17))
    z_fast, loss_fast = hv_descent(decode, problem.operator, problem.y, z0, steps=30, link=link)

    def f(z: torch.Tensor) -> torch.Tensor:
        return 0.5 * data_term(problem.operator.forward(decode(z).flatten(-3)), problem.y, link)

    rate = (1.0 / gauss_newton_norm(decode, problem.operator, z0)).unsqueeze(-1)
    z = z0.clone()
    for _ in range(30):
        with torch.no_grad():
            z = torch.where((f(-z) < f(z)).unsqueeze(-1), -z, z)
        z.requires_grad_(True)
        (grad,) = torch.autograd.grad(f(z).sum(), z)
        z = (z - rate * grad).detach()
    assert close(z_fast, z, rtol=1e-4) and close(loss_fast, f(z).detach(), rtol=1e-4)


# -- hand-written gradients of the generators, Adam, and the dense data gradient -------------------
def small_vae() -> VAE:
    vae = VAE(shape=(1, 6, 6), latent_dim=3, hidden=16)
    vae.reset_parameters(torch.Generator().manual_seed(18))
    with torch.no_grad():                                       # non-zero biases, some softplus inputs > 20
        for layer in vae.decoder[::2]:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=torch.Generator().manual_seed(19)))
        vae.decoder[0].weight.mul_(8.0)
    return vae.eval().requires_grad_(False)


def pullback_and_autograd(generator, z: torch.Tensor, seed: int):
    """((G(z), J^T v) by `decode_and_pullback`, the same by autograd through `decode`), G(z) flattened."""
    g, pullback = generator.decode_and_pullback(z)
    v = torch.randn(g.shape, generator=torch.Generator().manual_seed(seed), dtype=z.dtype)
    leaf = z.clone().requires_grad_(True)
    plain = generator.decode(leaf).flatten(-3)
    (plain_grad,) = torch.autograd.grad(plain, leaf, v)
    return (g, pullback(v)), (plain.detach(), plain_grad)


@pytest.mark.parametrize("dtype", (torch.float64, torch.float32))
def test_vae_pullback_is_the_autograd_gradient(dtype):
    vae = small_vae().to(dtype)
    z = 3 * torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(20), dtype=dtype)
    (g, grad), (plain, plain_grad) = pullback_and_autograd(vae, z, seed=21)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert g.shape == (4, 5, 36) and grad.shape == z.shape
    assert close(g, plain, rtol) and close(grad, plain_grad, rtol)


@pytest.mark.parametrize("dtype", (torch.float64, torch.float32))
def test_dcgan_pullback_is_the_autograd_gradient(trained_like_dcgan, dtype):
    frozen = freeze(trained_like_dcgan).to(dtype)
    z = torch.randn(3, 4, 100, generator=torch.Generator().manual_seed(22), dtype=dtype)
    (g, grad), (plain, plain_grad) = pullback_and_autograd(frozen, z, seed=23)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert g.shape == (3, 4, 784) and grad.shape == z.shape
    assert close(g, plain, rtol) and close(grad, plain_grad, rtol)


@pytest.fixture
def threads():
    """torch.set_num_threads for one test."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("count, rows_per_chunk, blocks", [(1, 5, [4, 4, 4]), (1, 12, [12]), (2, 5, [12])])
def test_dcgan_blocks_of_rows_are_the_module(trained_like_dcgan, threads, count, rows_per_chunk, blocks):
    """G(z) and J^T v computed block by block (on one thread) equal autograd through the
    DCGANGenerator itself (float64), with a non-zero output bias."""
    threads(count)
    module = copy.deepcopy(trained_like_dcgan).double()
    module.body[5].bias.data.fill_(-0.7)
    frozen = freeze(module)
    frozen.rows_per_chunk = rows_per_chunk
    z = torch.randn(3, 4, 100, generator=torch.Generator().manual_seed(40), dtype=torch.float64)
    assert [len(rows) for rows in frozen.chunks(z)] == blocks
    g, pullback = frozen.decode_and_pullback(z)
    v = torch.randn(g.shape, generator=torch.Generator().manual_seed(41), dtype=torch.float64)
    leaf = z.clone().requires_grad_(True)
    plain = module.decode(leaf).flatten(-3)
    (plain_grad,) = torch.autograd.grad(plain, leaf, v)
    assert close(g, plain, 1e-12) and close(frozen.decode(z).flatten(-3), plain, 1e-12)
    assert close(pullback(v), plain_grad, 1e-12)


def test_adam_is_torch_adam_to_the_bit():
    g = torch.Generator().manual_seed(24)
    z = torch.randn(3, 4, 5, generator=g)
    reference = z.clone().requires_grad_(True)
    optimiser, torch_adam = Adam(z, lr=0.05), torch.optim.Adam([reference], lr=0.05)
    for _ in range(30):
        grad = torch.randn(z.shape, generator=g) * torch.rand(1, generator=g)
        optimiser.step(grad)
        reference.grad = grad.clone()
        torch_adam.step()
    assert torch.equal(z, reference.detach())


@pytest.mark.parametrize("link, m", [("identity", 10), ("identity", 30), ("abs", 30), ("sign", 30)])
def test_dense_data_gradient_is_the_chain_rule(link, m):
    """Instance-major products, and the Gram matrix for the identity link with m > n / 2 (n = 36)."""
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(25), dtype=torch.float64)
    problem = problem_for(x.float(), m=m, seed=26, link=link)
    operator = DenseOperator(problem.operator.matrices.double())
    y = problem.y.double()
    gradient, instance_major = data_gradient(operator, y, link)
    g = torch.randn(5, 3, 36, generator=torch.Generator().manual_seed(27), dtype=torch.float64, requires_grad=True)
    plain = data_term(operator.forward(g.transpose(0, 1)), y, link)              # (R, B) from (R, B, n)
    (plain_grad,) = torch.autograd.grad(plain.sum(), g)
    assert instance_major and close(gradient(g.detach()), plain_grad, rtol=1e-12)


def latent_runs(generator, problem: Problem, **settings):
    """optimise_latent on `generator.decode` (its hand-written path) and on a plain function of z
    (autograd), from the same starts."""
    fast = optimise_latent(generator.decode, problem, generator=torch.Generator().manual_seed(28), **settings)
    plain = optimise_latent(lambda z: generator.decode(z), problem, generator=torch.Generator().manual_seed(28),
                            **settings)
    return fast, plain


@pytest.mark.parametrize("link", LINKS)
def test_vae_latent_optimisation_equals_the_autograd_path(link):
    vae = small_vae()
    x = vae.decode(torch.randn(4, 3, generator=torch.Generator().manual_seed(29)))
    for m in (10, 30):                                          # m > n / 2: the Gram path for identity
        problem = problem_for(x, m=m, seed=30, link=link)
        fast, plain = latent_runs(vae, problem, latent_dim=3, steps=40, lr=0.05, restarts=3, penalty=0.1)
        for a, b in zip(fast, plain):
            assert close(a, b, rtol=1e-4)


def test_dcgan_latent_optimisation_equals_the_autograd_path(trained_like_dcgan):
    frozen = freeze(trained_like_dcgan)
    x = frozen.decode(torch.randn(3, 100, generator=torch.Generator().manual_seed(31)))
    problem = problem_for(x, m=50, seed=32)
    fast, plain = latent_runs(frozen, problem, latent_dim=100, steps=10, lr=0.01, restarts=2, penalty=0.1)
    for a, b in zip(fast, plain):
        assert close(a, b, rtol=1e-4)


def test_priors_use_the_generator_pullback_unless_decode_is_redefined(trained_like_dcgan):
    prior = VAEPrior()
    prior.generator = small_vae()
    assert generator_pullback(prior.decode) == prior.generator.decode_and_pullback

    class Shifted(VAEPrior):
        def decode(self, z):
            return super().decode(z) + 1

    shifted = Shifted()
    shifted.generator = prior.generator
    assert generator_pullback(shifted.decode) is None and generator_pullback(lambda z: z) is None


# -- sparsegen and pgd-gan on the fast paths ------------------------------------------------------
class Counted:
    """A generator's `decode` and, where it has one, `decode_and_pullback`, counting the calls of each."""

    def __init__(self, generator):
        self.generator, self.calls = generator, {"decode": 0, "decode_and_pullback": 0}
        if hasattr(generator, "decode_and_pullback"):
            self.decode_and_pullback = self.counted_pullback

    def decode(self, z):
        self.calls["decode"] += 1
        return self.generator.decode(z)

    def counted_pullback(self, z):
        self.calls["decode_and_pullback"] += 1
        return self.generator.decode_and_pullback(z)


class PlugIn(torch.nn.Module):
    """A plug-in generator with trainable weights and no `decode_and_pullback`: z (..., 3) -> 1 x 6 x 6."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 36),
                                       torch.nn.Sigmoid())
        for parameter in self.net.parameters():
            torch.nn.init.normal_(parameter, 0.0, 1.0, generator=torch.Generator().manual_seed(33))

    def decode(self, z):
        return self.net(z).reshape(*z.shape[:-1], 1, 6, 6)


def sparsegen_reference(decode, operator, y, z0, basis, *, lam, penalty, steps, lr):
    """SparseGen as written in the paper: autograd of the smooth part f = ||A (G(z) + v) - y||^2 +
    penalty ||z||^2 in (z, v = Psi c), torch's Adam on z, c <- S_{t lam}(c - t Psi^T grad_v f), all
    (R, B) laid out."""
    t = 0.5 / operator.norm_squared()[:, None]
    z, c = z0.clone().requires_grad_(True), torch.zeros(*z0.shape[:-1], operator.n)
    optimiser = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        v = basis.synthesize(c).requires_grad_(True)
        ((operator.forward(decode(z).flatten(-3) + v) - y).pow(2).sum() + penalty * z.pow(2).sum()).backward()
        optimiser.step()
        c = soft_threshold(c - t * basis.analyze(v.grad), t * lam[:, None, None])
    with torch.no_grad():
        x = decode(z).flatten(-3) + basis.synthesize(c)
        return z.detach(), c, (operator.forward(x) - y).pow(2).sum(-1) + lam[:, None] * c.abs().sum(-1) \
            + penalty * z.pow(2).sum(-1)


def pgd_reference(decode, operator, y, z0, *, eta, outer, inner, lr):
    """PGD-GAN as written: each projection a fresh torch Adam on ||G(z) - u||^2 by autograd."""
    z = z0
    for _ in range(outer):
        with torch.no_grad():
            x = decode(z).flatten(-3)
            u = x + eta * operator.adjoint(y - operator.forward(x))
        z = z.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=lr)
        for _ in range(inner):
            optimiser.zero_grad()
            (decode(z).flatten(-3) - u).pow(2).sum().backward()
            optimiser.step()
        z = z.detach()
    with torch.no_grad():
        return z, (operator.forward(decode(z).flatten(-3)) - y).pow(2).sum(-1)


def generator_setting(name: str, dcgan):
    """(generator, latent dim, image shape, steps) of the small VAE, the frozen DCGAN or the plug-in."""
    if name == "vae":
        return small_vae(), 3, (1, 6, 6), 30
    if name == "dcgan":
        return freeze(dcgan), 100, (1, 28, 28), 8
    return PlugIn(), 3, (1, 6, 6), 30


def problem_and_starts(generator, latent_dim: int, m_fraction: float, seed: int) -> tuple[Problem, torch.Tensor]:
    """A problem on 3 signals G(z) + small noise, and 3 restarts z0 (3, 3, k)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = generator.decode(torch.randn(3, latent_dim, generator=g))
    problem = problem_for(x, m=round(m_fraction * x[0].numel()), seed=seed + 1)
    return problem, torch.randn(3, 3, latent_dim, generator=g)


@pytest.mark.parametrize("name", ("vae", "dcgan", "plug-in"))
@pytest.mark.parametrize("m_fraction, generic", [(0.3, False), (0.8, False), (0.3, True)])   # 0.8 > 1/2: Gram
def test_sparsegen_fast_and_autograd_paths_are_the_paper_formulation(trained_like_dcgan, name, m_fraction, generic):
    generator, latent_dim, shape, steps = generator_setting(name, trained_like_dcgan)
    problem, z0 = problem_and_starts(generator, latent_dim, m_fraction, seed=34)
    if generic:
        problem.operator = MatrixFree(problem.operator)
    assert data_gradient(problem.operator, problem.y, "identity")[1] is not generic   # generic: the operator's products
    basis, lam = Basis("wavelet", shape), torch.tensor([0.01, 0.1, 1.0])
    settings = dict(lam=lam, penalty=0.1, steps=steps, lr=0.05)
    counted = Counted(generator)
    fast = sparsegen(counted.decode, problem.operator, problem.y, z0, basis, **settings)
    plain = sparsegen(lambda z: generator.decode(z), problem.operator, problem.y, z0, basis, **settings)
    reference = sparsegen_reference(generator.decode, problem.operator, problem.y, z0, basis, **settings)
    pullbacks = steps if name != "plug-in" else 0
    assert counted.calls == {"decode": 1 + steps - pullbacks, "decode_and_pullback": pullbacks}
    for a, b, c, rtol in zip(fast, plain, reference, (1e-4, 1e-3, 1e-4)):   # c: small, 2 A^T r cancels
        assert a.shape == c.shape and close(a, c, rtol) and close(b, c, rtol)


@pytest.mark.parametrize("name", ("vae", "dcgan", "plug-in"))
def test_pgd_gan_fast_and_autograd_paths_are_the_paper_formulation(trained_like_dcgan, name):
    generator, latent_dim, _, steps = generator_setting(name, trained_like_dcgan)
    problem, z0 = problem_and_starts(generator, latent_dim, 0.5, seed=35)
    settings = dict(eta=0.5, outer=3, inner=steps // 3, lr=0.05)
    counted = Counted(generator)
    fast = pgd_range(counted.decode, problem.operator, problem.y, z0, **settings)
    plain = pgd_range(lambda z: generator.decode(z), problem.operator, problem.y, z0, **settings)
    reference = pgd_reference(generator.decode, problem.operator, problem.y, z0, **settings)
    decodes = 1 + 3 * (steps // 3)                                      # x_t is the projection's last decode
    assert counted.calls == ({"decode": decodes, "decode_and_pullback": 0} if name == "plug-in"
                             else {"decode": 0, "decode_and_pullback": decodes})
    for a, b, c in zip(fast, plain, reference):
        assert a.shape == c.shape and close(a, c, rtol=1e-4) and close(b, c, rtol=1e-4)


def test_plug_in_generators_keep_autograd_without_touching_their_weights():
    generator = PlugIn()
    assert generator_pullback(generator.decode) is None
    problem, z0 = problem_and_starts(generator, 3, 0.5, seed=36)
    g, pullback = pullback_or_autograd(generator.decode)(z0)
    v = torch.randn(g.shape, generator=torch.Generator().manual_seed(37))
    leaf = z0.clone().requires_grad_(True)
    (plain_grad,) = torch.autograd.grad(generator.decode(leaf).flatten(-3), leaf, v)
    assert close(g, generator.decode(z0).flatten(-3).detach()) and close(pullback(v), plain_grad)
    sparsegen(generator.decode, problem.operator, problem.y, z0, Basis("wavelet", (1, 6, 6)), lam=0.1,
              penalty=0.1, steps=3, lr=0.05)
    pgd_range(generator.decode, problem.operator, problem.y, z0, eta=0.5, outer=2, inner=2, lr=0.05)
    assert all(p.requires_grad and p.grad is None for p in generator.parameters())


@pytest.mark.parametrize("cls", (SparseGenPrior, PGDGANPrior))
def test_sparsegen_and_pgd_gan_priors_take_the_generator_pullback(cls):
    """The priors' `decode` finds the generator's pullback; a subclass redefining decode falls back
    to autograd, with the same result."""
    vae = small_vae()
    x = vae.decode(torch.randn(3, 3, generator=torch.Generator().manual_seed(38)))
    steps = {"steps": 20} if cls is SparseGenPrior else {"outer": 2, "inner": 10}

    class Redefined(cls):
        def decode(self, z):
            return self.generator.decode(z)

    results = []
    for prior in (cls(**steps), Redefined(**steps)):
        prior.generator = Counted(vae)
        prior.generator.latent_dim = 3
        results.append(prior.recover(problem_for(x, m=20, seed=39)))
        assert (prior.generator.calls["decode_and_pullback"] > 0) == (type(prior) is cls)
    assert results[0].shape == x.shape and close(results[0], results[1], rtol=1e-4)
