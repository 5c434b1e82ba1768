"""The generative model zoo: training determinism, checkpoint integrity, latent optimisation,
committed checkpoints and the generative priors."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from csbench.datasets import load_dataset
from csbench.errors import CsbenchError
from csbench.generative import train as training
from csbench.generative.checkpoints import load_checkpoint, read_sidecar, save_checkpoint
from csbench.generative.latent import data_term, initial_latents, optimise_latent, representation_error
from csbench.generative.models import VAE, DCGANGenerator
from csbench.generative.priors import DCGANPrior, RandomNetPrior, VAEPrior
from csbench.generative.zoo import catalogue, load_generator
from csbench.measurements.base import DenseOperator
from csbench.measurements.gaussian import Gaussian
from csbench.priors import PriorContext
from csbench.problem import Problem

# Mean representation error min_z ||G(z) - x||^2 / n on the first 8 validation images (300 Adam
# steps, lr 0.05, 2 restarts), measured on the committed checkpoints, with a margin of about 1.6x.
# Measured: vae-mnist 0.0122, dcgan-mnist 0.0034, vae-fashion-mnist 0.0190, dcgan-fashion-mnist 0.0093.
REPRESENTATION_BOUNDS = {"vae-mnist": 0.02, "dcgan-mnist": 0.0055,
                         "vae-fashion-mnist": 0.03, "dcgan-fashion-mnist": 0.015}


def gaussian_problem(x: torch.Tensor, m: int, sigma: float, seed: int, link: str = "identity") -> Problem:
    batch, n = x.shape[0], x[0].numel()
    g = torch.Generator().manual_seed(seed)
    operator = DenseOperator(torch.randn(batch, m, n, generator=g) / m ** 0.5)
    z = operator.forward(x.reshape(batch, n)) + torch.randn(batch, m, generator=g) * sigma / m ** 0.5
    y = {"identity": z, "abs": z.abs(), "sign": torch.sign(z)}[link]
    return Problem(y=y, operator=operator, shape=tuple(x.shape[1:]), noise=sigma, link=link,
                   generator=torch.Generator().manual_seed(seed + 1))


class TinyReluNet(torch.nn.Module):
    """G(z) = relu(W2 relu(W1 z + b1) + b2) into (1, 6, 6): a small generator with a known range."""

    def __init__(self, k: int = 4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latent_dim, self.shape = k, (1, 6, 6)
        self.w1, self.b1 = torch.randn(40, k, generator=g) / 40 ** 0.5, 0.1 * torch.randn(40, generator=g)
        self.w2, self.b2 = torch.randn(36, 40, generator=g) / 36 ** 0.5, 0.3 + 0.1 * torch.randn(36, generator=g)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(z @ self.w1.T + self.b1)
        return torch.relu(h @ self.w2.T + self.b2).reshape(*z.shape[:-1], *self.shape)


# -- training and checkpoints ---------------------------------------------------------------------
@pytest.fixture
def fast_representation(monkeypatch):
    monkeypatch.setitem(training.REPRESENTATION_PROTOCOL, "n_images", 4)
    monkeypatch.setitem(training.REPRESENTATION_PROTOCOL, "steps", 5)
    monkeypatch.setitem(training.REPRESENTATION_PROTOCOL, "restarts", 1)


@pytest.mark.parametrize("model, n_train", [("vae", 200), ("dcgan", 64)])
def test_short_training_is_loadable_and_bit_identical(tmp_path, fast_representation, model, n_train):
    runs = (("a", 3), ("b", 3), ("c", 4)) if model == "dcgan" else (("a", 3), ("b", 3))
    paths = [training.train(model, "mnist", epochs=1, seed=seed, n_train=n_train, quiet=True,
                            out=tmp_path / name / f"{model}.pt") for name, seed in runs]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    if len(paths) == 3:
        assert paths[2].read_bytes() != paths[0].read_bytes()
    generator, meta = load_checkpoint(paths[0])
    assert meta["model"] == model and meta["dataset"] == "mnist" and meta["n_train"] == n_train
    assert meta["epochs"] == 1 and meta["seed"] == 3 and meta["split"] == "train"
    assert meta["representation_error"] > 0 and meta["representation_protocol"]["n_images"] == 4
    assert paths[0].with_suffix(".png").stat().st_size > 0
    x = generator.decode(torch.zeros(2, generator.latent_dim))
    assert x.shape == (2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1


def test_train_rejects_unknown_model():
    with pytest.raises(CsbenchError, match="cannot train"):
        training.train("random-net", "mnist", quiet=True)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    vae = VAE(latent_dim=2, hidden=8)
    vae.reset_parameters(torch.Generator().manual_seed(0))
    return save_checkpoint(vae, tmp_path / "tiny.pt", {"model": "vae", "dataset": "mnist"})


def test_checkpoint_round_trip(tiny_checkpoint):
    module, meta = load_checkpoint(tiny_checkpoint)
    assert meta["config"] == {"shape": [1, 28, 28], "latent_dim": 2, "hidden": 8}
    original = VAE(latent_dim=2, hidden=8)
    original.reset_parameters(torch.Generator().manual_seed(0))
    for key, value in original.state_dict().items():
        assert torch.equal(module.state_dict()[key], value)


def test_corrupt_checkpoint_is_a_clean_error(tiny_checkpoint):
    data = bytearray(tiny_checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tiny_checkpoint.write_bytes(bytes(data))
    with pytest.raises(CsbenchError, match=f"{tiny_checkpoint}.*sha256"):
        load_checkpoint(tiny_checkpoint)


def test_truncated_checkpoint_is_a_clean_error(tiny_checkpoint):
    tiny_checkpoint.write_bytes(tiny_checkpoint.read_bytes()[:200])
    meta = read_sidecar(tiny_checkpoint)   # a matching hash, so torch.load itself meets the damage
    meta["sha256"] = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    tiny_checkpoint.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CsbenchError, match=f"{tiny_checkpoint} cannot be read"):
        load_checkpoint(tiny_checkpoint)


def test_mismatched_checkpoint_is_a_clean_error(tiny_checkpoint):
    meta = read_sidecar(tiny_checkpoint)
    meta["config"]["hidden"] = 16
    tiny_checkpoint.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CsbenchError, match=f"{tiny_checkpoint} does not match architecture"):
        load_checkpoint(tiny_checkpoint)


def test_missing_sidecar_and_file_are_clean_errors(tiny_checkpoint):
    tiny_checkpoint.unlink()
    with pytest.raises(CsbenchError, match=f"{tiny_checkpoint} is missing"):
        load_checkpoint(tiny_checkpoint)
    tiny_checkpoint.with_suffix(".json").unlink()
    with pytest.raises(CsbenchError, match="sidecar .*tiny.json is missing"):
        load_checkpoint(tiny_checkpoint)


# -- committed checkpoints ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REPRESENTATION_BOUNDS))
def test_committed_checkpoint(name):
    model, dataset_name = name.split("-", 1)
    dataset = load_dataset(dataset_name)
    generator = load_generator(model, dataset)
    z = torch.randn(3, 2, generator.latent_dim, generator=torch.Generator().manual_seed(0))
    x = generator.decode(z)
    assert x.shape == (3, 2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    digits = dataset.split("validation", 8)
    errors = representation_error(generator.decode, digits, latent_dim=generator.latent_dim, steps=300,
                                  lr=0.05, restarts=2, generator=torch.Generator().manual_seed(0))
    assert errors.shape == (8,)
    assert errors.mean() < REPRESENTATION_BOUNDS[name]
    assert errors.mean() < 0.25 * digits.pow(2).mean()     # far better than the all-zero image
    entry = next(e for e in catalogue() if (e["model"], e["dataset"]) == (model, dataset_name))
    assert 0 < entry["representation_error"] < REPRESENTATION_BOUNDS[name]


def test_missing_checkpoint_names_the_training_command(monkeypatch, tmp_path):
    monkeypatch.setattr("csbench.generative.zoo.PACKAGE_CHECKPOINTS", tmp_path)
    monkeypatch.delenv("CSBENCH_CHECKPOINTS", raising=False)
    with pytest.raises(CsbenchError, match="no vae checkpoint for dataset mnist; train one with `csbench train vae"):
        load_generator("vae", load_dataset("mnist"))


# -- latent optimisation --------------------------------------------------------------------------
def test_recovers_a_signal_in_the_range_of_a_small_generator():
    net = TinyReluNet()
    z_true = torch.randn(3, net.latent_dim, generator=torch.Generator().manual_seed(5))
    x = net.decode(z_true)
    problem = gaussian_problem(x, m=12, sigma=0.0, seed=1)          # m = 12 > 2k = 8, noiseless
    x_hat, z_hat, loss = optimise_latent(net.decode, problem, latent_dim=4, steps=600, lr=0.05, restarts=4)
    assert x_hat.shape == x.shape and z_hat.shape == (3, 4) and loss.shape == (3,)
    relative = (x_hat - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert relative.max() < 1e-2
    assert loss.max() < 1e-4


def test_phaseless_link_recovers_up_to_the_range():
    net = TinyReluNet()
    x = net.decode(torch.randn(2, 4, generator=torch.Generator().manual_seed(6)))
    problem = gaussian_problem(x, m=30, sigma=0.0, seed=2, link="abs")
    x_hat, _, loss = optimise_latent(net.decode, problem, latent_dim=4, steps=300, lr=0.05, restarts=4)
    assert loss.max() < 1e-6
    assert (x_hat - x).pow(2).mean() < 1e-6


def test_one_bit_link_matches_the_signs():
    """sign(A x) fixes x only up to what G's range allows: check sign agreement and direction."""
    net = TinyReluNet()
    x = net.decode(torch.randn(2, 4, generator=torch.Generator().manual_seed(6)))
    problem = gaussian_problem(x, m=30, sigma=0.0, seed=2, link="sign")
    x_hat, _, _ = optimise_latent(net.decode, problem, latent_dim=4, steps=300, lr=0.05, restarts=4)
    agreement = (torch.sign(problem.operator.forward(x_hat.flatten(1))) == problem.y).float().mean(1)
    assert agreement.min() > 0.9
    assert torch.nn.functional.cosine_similarity(x_hat.flatten(1), x.flatten(1)).min() > 0.9


def test_restart_choice_uses_the_loss_not_the_truth():
    """With 0 steps each restart's final z is its initial draw: the winner must be the restart of
    lowest loss, even where another restart is closer to the truth (as it is here)."""
    net = TinyReluNet()
    x = net.decode(torch.randn(8, 4, generator=torch.Generator().manual_seed(7)))
    problem = gaussian_problem(x, m=3, sigma=1.0, seed=3)
    restarts, penalty = 6, 0.05
    _, z_hat, loss = optimise_latent(net.decode, problem, latent_dim=4, steps=0, restarts=restarts, penalty=penalty)
    starts = initial_latents(8, restarts, 4, torch.Generator().manual_seed(4))    # problem.generator's seed
    candidates = data_term(problem.operator.forward(net.decode(starts).flatten(-3)), problem.y, "identity")
    candidates = candidates + penalty * starts.pow(2).sum(-1)
    by_loss = candidates.argmin(0)
    by_truth = (net.decode(starts) - x).flatten(2).pow(2).sum(-1).argmin(0)
    assert torch.equal(z_hat, starts[by_loss, torch.arange(8)])
    assert torch.allclose(loss, candidates.min(0).values)
    assert (by_loss != by_truth).any()


def test_instances_are_independent_of_their_batch():
    net = TinyReluNet()
    x = net.decode(torch.randn(5, 4, generator=torch.Generator().manual_seed(8)))
    batch = gaussian_problem(x, m=10, sigma=0.1, seed=4)
    x_batch, _, loss_batch = optimise_latent(net.decode, batch, latent_dim=4, steps=100, lr=0.05, restarts=3)
    for index in (0, 3):
        alone = Problem(y=batch.y[index:index + 1], operator=DenseOperator(batch.operator.dense()[index:index + 1]),
                        shape=batch.shape, noise=0.1, generator=torch.Generator().manual_seed(5))
        x_alone, _, loss_alone = optimise_latent(net.decode, alone, latent_dim=4, steps=100, lr=0.05, restarts=3)
        assert torch.allclose(x_alone[0], x_batch[index], atol=1e-5)
        assert torch.allclose(loss_alone[0], loss_batch[index], rtol=1e-4, atol=1e-6)


def test_representation_error_is_zero_in_the_range():
    net = TinyReluNet()
    x = net.decode(torch.randn(2, 4, generator=torch.Generator().manual_seed(9)))
    errors = representation_error(net.decode, x, latent_dim=4, steps=400, lr=0.05, restarts=3,
                                  generator=torch.Generator().manual_seed(0))
    assert errors.shape == (2,) and errors.max() < 1e-6


# -- priors ---------------------------------------------------------------------------------------
def test_vae_prior_beats_the_zero_image_at_25_measurements():
    dataset = load_dataset("mnist")
    x = dataset.split("test", 4)
    prior = VAEPrior(steps=300, restarts=3)
    prior.setup(PriorContext(dataset=dataset, shape=(1, 28, 28)))
    problem = gaussian_problem(x, m=25, sigma=0.1, seed=10)
    x_hat = prior.recover(problem)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
    mse, zero_mse = (x_hat - x).pow(2).mean(), x.pow(2).mean()
    assert mse < 0.75 * zero_mse       # measured: 0.059 against 0.108 for the all-zero image


def test_priors_report_what_they_do_not_support(monkeypatch, tmp_path):
    mnist = load_dataset("mnist")
    assert VAEPrior().supports(Gaussian(), mnist) is None
    assert "random-net dataset" in RandomNetPrior().supports(Gaussian(), mnist)
    monkeypatch.setattr("csbench.generative.zoo.PACKAGE_CHECKPOINTS", tmp_path)
    monkeypatch.delenv("CSBENCH_CHECKPOINTS", raising=False)
    assert "no dcgan checkpoint for dataset mnist" in DCGANPrior().supports(Gaussian(), mnist)
    with pytest.raises(CsbenchError, match="call setup"):
        VAEPrior().recover(gaussian_problem(mnist.split("test", 1), m=5, sigma=0.0, seed=0))


def test_random_net_prior_uses_the_datasets_network():
    dataset = load_dataset("random-net[k=5]")
    x = dataset.split("test", 2)
    prior = RandomNetPrior(steps=400, lr=0.05, restarts=4)
    assert prior.supports(Gaussian(), dataset) is None
    prior.setup(PriorContext(dataset=dataset, shape=dataset.shape))
    x_hat = prior.recover(gaussian_problem(x, m=40, sigma=0.0, seed=11))
    relative = (x_hat - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert relative.max() < 0.05


def test_dcgan_decodes_leading_dimensions():
    net = DCGANGenerator().eval()
    z = torch.randn(2, 3, 100, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(net.decode(z)[1, 2], net.decode(z[1, 2:3])[0], atol=1e-6)


def test_measurements_must_match_the_operator():
    net = TinyReluNet()
    problem = gaussian_problem(net.decode(torch.zeros(2, 4)), m=6, sigma=0.0, seed=0)
    problem.y = problem.y[:, :-1]
    with pytest.raises(CsbenchError, match="do not match the operator"):
        optimise_latent(net.decode, problem, latent_dim=4, steps=1, restarts=1)

