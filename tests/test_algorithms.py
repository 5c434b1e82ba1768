"""Recovery algorithms beyond the paper: hv (negation-check descent), pgd-gan, sparsegen, deep-decoder."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from csbench.baselines.transforms import Basis
from csbench.config import make_config
from csbench.datasets import load_dataset
from csbench.datasets.random_net import RandomReluGenerator, expansive_widths
from csbench.errors import CsbenchError
from csbench.generative.hv import HVPrior, hv_descent
from csbench.generative.latent import optimise_latent
from csbench.generative.pgd import PGDGANPrior
from csbench.generative.sparsegen import SparseGenPrior
from csbench.measurements.base import DenseOperator
from csbench.measurements.gaussian import Gaussian
from csbench.priors import PriorContext
from csbench.problem import Problem
from csbench.runner import Task, _prepared_prior, tune
from csbench.theory import rho
from csbench.untrained import DeepDecoderPrior, parameter_count


def measure(x: torch.Tensor, m: int, seed: int, dataset: str = "random-net") -> Problem:
    """Noiseless y = A x, A_ij ~ N(0, 1/m), for flattened x (B, n) shown as square images."""
    batch, n = x.shape
    side = int(n ** 0.5)
    g = torch.Generator().manual_seed(seed)
    operator = DenseOperator(torch.randn(batch, m, n, generator=g) / m ** 0.5)
    return Problem(y=operator.forward(x), operator=operator, shape=(1, side, side), noise=0.0,
                   dataset=dataset, generator=torch.Generator().manual_seed(seed + 1))


def relative_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat.flatten(1) - x.flatten(1)).norm(dim=1) / x.flatten(1).norm(dim=1)


@pytest.fixture(scope="module")
def small_net():
    """A small random ReLU generator (k = 4 -> 64 -> 256, images 16 x 16) as a dataset stand-in."""
    network = RandomReluGenerator((4, 64, 256), seed=3)
    return SimpleNamespace(name="random-net", generator=network, shape=(1, 16, 16), bounded=False)


def prior_on(cls, dataset, **params):
    prior = cls(**params)
    prior.setup(PriorContext(dataset=dataset, shape=dataset.shape))
    return prior


def test_hv_recovers_random_net_signals_k10_m100():
    dataset = load_dataset("random-net[k=10]")
    x = dataset.split("test", 10).flatten(1)
    prior = prior_on(HVPrior, dataset, steps=300, restarts=1)            # one start suffices
    x_hat = prior.recover(measure(x, 100, seed=0, dataset="random-net[k=10]"))
    assert x_hat.shape == (10, 1, 28, 28)
    assert int((relative_error(x_hat, x) < 1e-3).sum()) >= 8


def test_hv_recovers_from_phaseless_measurements():
    """y = |A x|: the same descent on 1/2 || |A G(z)| - y ||^2 (3 restarts, best by loss)."""
    dataset = load_dataset("random-net[k=10]")
    x = dataset.split("test", 4).flatten(1)
    problem = measure(x, 100, seed=7, dataset="random-net[k=10]")
    problem.y, problem.link = problem.y.abs(), "abs"
    x_hat = prior_on(HVPrior, dataset, steps=300).recover(problem)
    assert bool((relative_error(x_hat, x) < 1e-3).all())


def test_hv_is_not_clipped_on_random_net_and_is_batch_independent():
    dataset = load_dataset("random-net[k=10]")
    x = dataset.split("test", 3).flatten(1)
    prior = prior_on(HVPrior, dataset, steps=200, restarts=1)
    problem = measure(x, 60, seed=4, dataset="random-net[k=10]")
    together = prior.recover(problem)
    alone = prior.recover(problem.select(0))
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    large = torch.full((3, 784), 2.0)
    assert float(prior.finish(large, problem).max()) == 2.0          # random-net: never clipped
    on_images = prior_on(HVPrior, load_dataset("mnist"), steps=200, restarts=1)
    assert float(on_images.finish(large, problem).max()) == 1.0      # images: clipped to [0, 1]


def test_plain_descent_sticks_near_minus_rho_while_the_negation_check_recovers():
    """Start on the spurious critical point -rho_d z* of a depth-3 net: plain descent stays near
    it for most instances, the negation check jumps to the basin of z* for all."""
    depth = 3
    network = RandomReluGenerator(expansive_widths(10, depth, 250), seed=0)
    g = torch.Generator().manual_seed(0)
    operator = DenseOperator(torch.randn(6, 100, 784, generator=g) / 100 ** 0.5)
    z_true = torch.randn(6, 10, generator=g)
    x = network(z_true)
    y = operator.forward(x)
    z0 = (-rho(depth) * z_true)[None]
    plain, _ = hv_descent(network, operator, y, z0, steps=100, check=False)
    checked, _ = hv_descent(network, operator, y, z0, steps=100, check=True)
    ratio = (plain[0] * z_true).sum(1) / z_true.pow(2).sum(1)
    stuck = ((ratio + rho(depth)).abs() < 0.15) & (relative_error(network(plain[0]), x) > 0.5)
    assert int(stuck.sum()) >= 3
    assert bool((relative_error(network(checked[0]), x) < 1e-3).all())


def float64_net() -> RandomReluGenerator:
    """Depth 3 (k = 4 -> 32 -> 64 -> 100) in float64, where the two gradient paths agree to ~1e-15."""
    return RandomReluGenerator((4, 32, 64, 100), seed=1).double()


def test_random_relu_linearisation_is_autograds_jvp_and_vjp():
    net = float64_net()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    v = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    w = torch.randn(3, 5, 100, generator=g, dtype=torch.float64)
    x, push, pull = net.linearise(z)
    x_ref, jvp = torch.func.jvp(net, (z,), (v,))
    _, vjp = torch.func.vjp(net, z)
    assert x.shape == (3, 5, 100) and torch.equal(x, x_ref)
    assert torch.allclose(push(v), jvp, rtol=0, atol=1e-12)
    assert torch.allclose(pull(w), vjp(w)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("link, check", [("identity", True), ("abs", True), ("identity", False)])
def test_hv_descent_pullback_path_equals_the_autograd_path(link, check):
    """The network itself (it has `linearise`) against a plain function of it (autograd).
    Starts: restart 0 near -z* (flips at once), restart 1 near z* (kept), so steps where some
    rows flip and others do not are taken too. m = 50 >> k: where a run stalls on a kink (a ReLU
    of one row changing sign) rounding differences can grow, which a test of 1e-10 cannot tell
    from a bug."""
    net = float64_net()
    g = torch.Generator().manual_seed(3)
    operator = DenseOperator(torch.randn(5, 50, 100, generator=g, dtype=torch.float64) / 50 ** 0.5)
    z_true = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y = operator.forward(net(z_true))
    y = y.abs() if link == "abs" else y
    noise = 0.3 * torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    z0 = torch.stack([-z_true, z_true, torch.zeros_like(z_true)]) + noise
    fast, fast_loss = hv_descent(net, operator, y, z0, steps=60, check=check, link=link)
    plain, plain_loss = hv_descent(lambda z: net(z), operator, y, z0, steps=60, check=check, link=link)
    assert fast.shape == z0.shape and fast_loss.shape == (3, 5)
    assert torch.allclose(fast, plain, rtol=0, atol=1e-10)
    assert torch.allclose(fast_loss, plain_loss, rtol=1e-10, atol=1e-20)


def test_pgd_gan_recovers_an_in_range_signal(small_net):
    g = torch.Generator().manual_seed(1)
    x = small_net.generator(torch.randn(6, 4, generator=g))
    prior = prior_on(PGDGANPrior, small_net, restarts=3)
    x_hat = prior.recover(measure(x, 40, seed=2))
    assert x_hat.shape == (6, 1, 16, 16)
    assert int((relative_error(x_hat, x) < 0.05).sum()) >= 5


def test_sparsegen_recovers_in_range_and_beats_latent_optimisation_off_range(small_net):
    g = torch.Generator().manual_seed(2)
    x = small_net.generator(torch.randn(6, 4, generator=g))
    prior = prior_on(SparseGenPrior, small_net)
    assert float(relative_error(prior.recover(measure(x, 40, seed=3)), x).median()) < 0.05
    # x = G(z) + a 3-sparse Haar-wavelet deviation, as strong as G(z) itself
    coefficients = torch.zeros(6, 256)
    positions = torch.rand(6, 256, generator=g).argsort(dim=1)[:, :3]
    coefficients.scatter_(1, positions, 0.6 * x.norm(dim=1, keepdim=True).expand(6, 3))
    x_off = x + Basis("wavelet", (1, 16, 16)).synthesize(coefficients)
    problem = measure(x_off, 60, seed=4)
    sparse_error = relative_error(prior.recover(problem), x_off)
    latent_hat, _, _ = optimise_latent(prior.decode, problem, latent_dim=4, steps=1000, lr=0.05, restarts=2)
    latent_error = relative_error(latent_hat, x_off)
    assert float(sparse_error.median()) < 0.1
    assert float(sparse_error.median()) < 0.25 * float(latent_error.median())


def test_mismatched_measurements_raise_a_one_line_error(small_net):
    problem = measure(small_net.generator(torch.ones(2, 4)), 20, seed=8)
    problem.y = problem.y[:, :-1]
    for prior in (prior_on(HVPrior, small_net), prior_on(PGDGANPrior, small_net),
                  prior_on(SparseGenPrior, small_net), DeepDecoderPrior()):
        with pytest.raises(CsbenchError, match="do not match the operator"):
            prior.recover(problem)


def test_supports_reasons():
    gaussian = Gaussian()
    mnist_like = SimpleNamespace(name="no-such-dataset", shape=(1, 28, 28))
    assert "random-net" in HVPrior(model="random-net").supports(gaussian, mnist_like)
    assert "checkpoint" in PGDGANPrior().supports(gaussian, mnist_like)
    assert "checkpoint" in SparseGenPrior(model="vae").supports(gaussian, mnist_like)
    one_bit = SimpleNamespace(link="sign", name="one-bit")
    assert "sign" in HVPrior().supports(one_bit, load_dataset("random-net[k=5]"))
    assert HVPrior().supports(gaussian, load_dataset("random-net[k=5]")) is None


def smooth_images() -> torch.Tensor:
    """Three 28 x 28 Gaussian blobs on a grey background, (3, 784) in [0, 1]."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centres = ((10, 12), (16, 14), (14, 18))
    blobs = [0.2 + 0.6 * torch.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / 60) for cx, cy in centres]
    return torch.stack(blobs).reshape(3, 784)


def test_deep_decoder_fits_a_smooth_image_with_fewer_weights_than_measurements():
    x = smooth_images()
    m = 300
    prior = DeepDecoderPrior(steps=400)
    assert parameter_count(int(prior.params["channels"]), int(prior.params["levels"]), 1) < m
    x_hat = prior.recover(measure(x, m, seed=5, dataset="folder"))
    assert x_hat.shape == (3, 1, 28, 28)
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1
    mse = (x_hat.flatten(1) - x).pow(2).mean(1)
    assert float(mse.max()) < 1e-3                                 # zero image: ~0.1
    problem = measure(x, m, seed=5, dataset="folder")
    alone = DeepDecoderPrior(steps=20).recover(Problem(        # instance 0 alone, same seed
        y=problem.y[:1], operator=DenseOperator(problem.operator.dense()[:1]), shape=problem.shape,
        noise=0.0, generator=torch.Generator().manual_seed(6)))
    together = DeepDecoderPrior(steps=20).recover(problem)
    assert torch.allclose(alone[0], together[0], atol=1e-5)


def test_deep_decoder_widths_end_at_the_widest_under_parametrised_decoder():
    """Heckel & Hand's premise is fewer weights than pixels: the grid's widest decoder keeps it on
    28 x 28 images and one channel more would not, so tuning is never capped short of it."""
    prior = DeepDecoderPrior()
    widest, levels = max(prior.tuning["channels"]), int(prior.params["levels"])
    assert parameter_count(widest, levels, 1) < 28 * 28 <= parameter_count(widest + 1, levels, 1)


@pytest.mark.slow
def test_deep_decoder_tuning_picks_its_widest_decoder_on_mnist_digits_at_m_400():
    """The runner's own tuning (8 MNIST validation digits, Gaussian A, sigma = 0.1): at m = 400 the
    widest decoder scores at least 20% below 12 channels, the old grid's top."""
    task = Task("mnist", "gaussian", "deep-decoder", 400, 0.1, 0)
    _, chosen, points = tune(DeepDecoderPrior(), task, make_config(n_validation=8), load_dataset("mnist"))
    scores = {point["params"]["channels"]: point["score"] for point in points}
    assert chosen == {"channels": 15}
    assert scores[15] < 0.8 * scores[12]


@pytest.mark.slow
def test_sparsegen_tuning_finds_its_best_lam_at_m_750_inside_its_grid():
    """The runner's own tuning (8 MNIST validation digits, Gaussian A, sigma = 0.1): at m = 750 lam
    = 0.003 scores at least 30% below 0.01, the old grid's bottom (measured: 51%; 30% on the paper
    preset's 32 digits, 25% on Fashion-MNIST's), and the grid's new bottom, 0.001, at least 3x
    higher (measured: 9.9x), so the best lam lies inside the grid, not at its edge."""
    data = load_dataset("mnist")
    prior = _prepared_prior("sparsegen", data, "cpu", 0, ())                     # set up as a worker does
    _, chosen, points = tune(prior, Task("mnist", "gaussian", "sparsegen", 750, 0.1, 0), make_config(n_validation=8), data)
    scores = {point["params"]["lam"]: point["score"] for point in points}
    assert chosen == {"lam": 0.003} and min(scores) == 0.001
    assert scores[0.003] < 0.7 * scores[0.01] and scores[0.001] > 3 * scores[0.003]
