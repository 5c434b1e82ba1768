"""The score-based prior: seeded training of the score network, its sidecar, posterior sampling
with the committed checkpoints (better than the zero image, deterministic, batch independent,
every linear measurement model), and the prior contract."""
from __future__ import annotations

import json

import pytest
import torch

from csbench.check import contract
from csbench.datasets import load_dataset
from csbench.errors import CsbenchError
from csbench.generative import train as training
from csbench.generative.score import ScorePrior, annealed_langevin, find_score_checkpoint, noise_levels
from csbench.generative.score_net import ScoreUNet, load_score_net
from csbench.measurements import MEASUREMENTS
from csbench.priors import PriorContext, SealedDataset, make_prior
from csbench.runner import Task, make_problem

TINY = {"net": {"width": 4, "emb": 8, "sigma_data": 0.5}, "quality_images": 8, "quality_samples": 4}
# cheap sampler settings for tests (the defaults run 80 network evaluations per sample)
FAST = {"samples": 1, "levels": 12, "steps": 1}
LINEAR = [name for name, cls in MEASUREMENTS.items() if cls.link == "identity"]


def tiny_run(tmp_path, name: str):
    return training.train("score", "mnist", epochs=1, n_train=64, seed=3, out=tmp_path / name / "score-mnist.pt",
                          quiet=True, options=TINY)


def test_training_is_seeded_and_reproducible(tmp_path):
    first, second = tiny_run(tmp_path, "a"), tiny_run(tmp_path, "b")
    assert first.read_bytes() == second.read_bytes()
    meta_a, meta_b = (json.loads(p.with_suffix(".json").read_text()) for p in (first, second))
    assert meta_a["sha256"] == meta_b["sha256"]
    assert meta_a["loss_curve"] == meta_b["loss_curve"]
    assert meta_a["denoising_error"] == meta_b["denoising_error"]


def test_sidecar_has_the_fields_and_loads(tmp_path):
    path = tiny_run(tmp_path, "c")
    meta = json.loads(path.with_suffix(".json").read_text())
    for key in ("architecture", "config", "dataset", "seed", "epochs", "loss_curve", "final_loss", "sha256",
                "training_seconds", "denoising_error", "denoising_protocol", "samples_png", "torch_version"):
        assert key in meta, key
    assert meta["model"] == "score" and meta["seed"] == 3 and meta["epochs"] == 1
    assert set(meta["denoising_error"]) == {"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1.0", "2.0", "5.0"}
    assert (path.parent / meta["samples_png"]).is_file()
    net, _ = load_score_net(path)
    assert net.config["width"] == 4 and not any(p.requires_grad for p in net.parameters())


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tiny_run(tmp_path, "d")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CsbenchError, match="sha256"):
        load_score_net(path)


def test_denoiser_is_the_score_by_tweedie():
    net = ScoreUNet(width=4, emb=8)
    net.reset_parameters(torch.Generator().manual_seed(0))
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(net.score(x, 0.3), (net.denoise(x, 0.3) - x) / 0.09, atol=1e-5)
    # zero output layer at init: D is the shrinkage 1/2 + c_skip (x - 1/2)
    c_skip = 0.25 / (0.09 + 0.25)
    assert torch.allclose(net.denoise(x, 0.3), 0.5 + c_skip * (x - 0.5), atol=1e-6)


def test_noise_levels_are_geometric():
    sigmas = noise_levels(10.0, 0.01, 4)
    assert sigmas[0] == pytest.approx(10.0) and sigmas[-1] == pytest.approx(0.01)
    assert sigmas[1] / sigmas[0] == pytest.approx(sigmas[3] / sigmas[2])
    with pytest.raises(CsbenchError):
        noise_levels(0.01, 1.0, 3)


# -- the prior, with the committed checkpoint -------------------------------------------------------
pytestmark_committed = pytest.mark.skipif(find_score_checkpoint("mnist") is None, reason="no committed score-mnist")


def prepared(spec: str = "score") -> ScorePrior:
    prior = make_prior(spec)
    data = load_dataset("mnist")
    prior.setup(PriorContext(dataset=SealedDataset(data), shape=tuple(data.shape)))
    return prior.with_params(**FAST)


def problem_for(images: list[int], m: int = 200, measurement: str = "gaussian", seed: int = 0):
    x = load_dataset("mnist").split("validation", max(images) + 1)[images]
    return x, make_problem(x, Task("mnist", measurement, "score", m, 0.1, seed), "test-score", "cpu")


@pytestmark_committed
def test_recovers_better_than_the_zero_image():
    x, problem = problem_for([0, 1, 2, 3], m=200)
    x_hat = prepared().with_params(levels=30, steps=1).recover(problem)  # the default sampler, one sample
    mse = (x_hat - x).pow(2).mean(dim=(1, 2, 3))
    zero = x.pow(2).mean(dim=(1, 2, 3))
    assert (mse < 0.5 * zero).all(), (mse, zero)
    assert mse.mean() < 0.03


@pytestmark_committed
def test_deterministic_and_batch_independent():
    prior = prepared()
    _, a = problem_for([0, 1, 2])
    _, b = problem_for([0, 1, 2])
    first = prior.recover(a)
    assert torch.equal(first, prior.recover(b))
    _, other = problem_for([3, 1, 4])  # instance 1 keeps its A and y, its neighbours change
    assert (prior.recover(other)[1] - first[1]).abs().max() <= 1e-5
    _, reseeded = problem_for([0, 1, 2], seed=1)
    assert not torch.equal(first, prior.recover(reseeded))


@pytestmark_committed
def test_grid_is_batched_and_equals_point_by_point():
    prior = prepared()
    _, problem = problem_for([0, 1])
    grid = [{"weight": 0.5}, {"weight": 1.0, "step": 0.3}]
    batched = prior.recover_grid(problem, grid)
    for point, x in zip(grid, batched):
        _, again = problem_for([0, 1])
        # equal up to the rounding of batched kernels
        assert torch.allclose(x, prior.with_params(**point).recover(again), atol=1e-4)
    assert not torch.allclose(batched[0], batched[1])


@pytestmark_committed
def test_averaging_samples_changes_the_estimate():
    prior = prepared()
    _, problem = problem_for([0])
    one = prior.recover(problem)
    _, problem = problem_for([0])
    two = prior.with_params(samples=2).recover(problem)
    assert not torch.equal(one, two) and torch.isfinite(two).all()


@pytestmark_committed
@pytest.mark.parametrize("measurement", LINEAR)
def test_every_linear_measurement_model(measurement):
    prior = prepared()
    data = load_dataset("mnist")
    model = MEASUREMENTS[measurement]()
    assert prior.supports(model, data) is None
    x, problem = problem_for([0, 1], m=300, measurement=measurement)
    x_hat = prior.recover(problem)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
    if measurement != "inpaint-block":  # (the central square, where the digit is, is not measured)
        assert (x_hat - x).pow(2).mean() < x.pow(2).mean()


@pytestmark_committed
def test_nonlinear_links_are_skipped_and_bad_input_refused():
    prior = prepared()
    data = load_dataset("mnist")
    for name, cls in MEASUREMENTS.items():
        if cls.link != "identity":
            assert "does not support" in prior.supports(cls(), data)
    _, problem = problem_for([0, 1])
    problem.y = problem.y[:, :-1]
    with pytest.raises(CsbenchError, match="do not match"):
        prior.recover(problem)


@pytestmark_committed
def test_contract():
    prior = make_prior("score[samples=1,levels=12,steps=1]")
    outcomes = contract(prior, "mnist")
    assert [o for o in outcomes if o.status != "ok"] == [] and len(outcomes) >= 9


def test_unconditional_sampler_shapes():
    net = ScoreUNet(width=4, emb=8)
    net.reset_parameters(torch.Generator().manual_seed(0))
    x = annealed_langevin(net, torch.Generator().manual_seed(1), batch=2, samples=3, step=torch.tensor([0.1, 0.2]),
                          levels=3, steps=1)
    assert x.shape == (2, 3, 2, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    # instances share their noise: with no measurements every instance gets the same sample
    assert torch.equal(x[:, :, 0], x[:, :, 1])
