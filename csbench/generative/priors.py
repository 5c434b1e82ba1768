"""Generative priors: recover x = G(z_hat) by latent optimisation (Bora et al. 2017), with G a
trained VAE or DCGAN decoder, or the random ReLU network that generated the `random-net` data.

    z_hat = argmin_z  D(A G(z), y) + penalty ||z||^2      (D by link, see latent.py)
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from csbench.errors import CsbenchError
from csbench.generative.latent import optimise_latent
from csbench.generative.zoo import find_checkpoint, load_generator
from csbench.priors import Prior, PriorContext, as_images
from csbench.problem import Problem


class GenerativePrior(Prior):
    """Shared machinery: `setup` loads the generator `model` for the context's dataset."""

    kind = "generative"
    links = ("identity", "sign", "abs")
    model: str

    def setup(self, context: PriorContext) -> None:
        super().setup(context)
        self.generator = load_generator(self.model, context.dataset, context.device)

    def supports(self, measurement: Any, dataset: Any) -> str | None:
        reason = super().supports(measurement, dataset)
        if reason is None and find_checkpoint(self.model, dataset.name) is None:
            reason = (f"no {self.model} checkpoint for dataset {dataset.name} "
                      f"(train one with `csbench train {self.model} --dataset {dataset.name}`)")
        return reason

    def recover(self, problem: Problem) -> Tensor:
        generator = getattr(self, "generator", None)
        if generator is None:
            raise CsbenchError(f"prior {self.name!r} has no generator: call setup(context) first")
        x_hat, _, _ = optimise_latent(generator.decode, problem, latent_dim=generator.latent_dim,
                                      steps=int(self.params["steps"]), lr=float(self.params["lr"]),
                                      restarts=int(self.params["restarts"]), penalty=float(self.params["penalty"]))
        return as_images(x_hat, problem.shape)


class VAEPrior(GenerativePrior):
    """Bora et al.'s MNIST recipe: Adam lr 0.01, 1000 steps, 10 restarts, penalty 0.1. On 10 mnist
    validation digits (sigma 0.1) penalty 0.1 vs 0 gave MSE 0.027 vs 0.035 at m = 25 and 0.016 vs
    0.015 at m = 100, so 0.1 is kept."""

    name = "vae"
    model = "vae"
    description = "VAE decoder (k=20), min ||A G(z) - y||^2 + 0.1 ||z||^2 over z (Bora et al. 2017)"
    parameters = {"steps": 1000, "lr": 0.01, "restarts": 10, "penalty": 0.1}


class DCGANPrior(GenerativePrior):
    """Bora et al.'s DCGAN recipe (Adam lr 0.1, 500 steps, 5 restarts; paper 2-10) with penalty 0.1
    instead of the paper's 0.001 (chosen for CelebA at sigma 0.01): on 10 mnist validation digits
    (sigma 0.1) penalty 0.001 / 0.01 / 0.1 gave MSE 0.088 / 0.074 / 0.048 at m = 25 and
    0.008 / 0.004 / 0.005 at m = 100; lr 0.01 was worse at m = 100 (0.024).

    At lr 0.1 the optimisation is chaotic: float32 rounding differences between batch sizes
    (1e-11 in G(z)) grow to about 0.1 in x over 500 steps, so an instance's result depends on its
    batch at that level (equally good local minima), though never on the other instances' data."""

    name = "dcgan"
    model = "dcgan"
    description = "DCGAN generator (k=100), min ||A G(z) - y||^2 + 0.1 ||z||^2 over z (Bora et al. 2017)"
    parameters = {"steps": 500, "lr": 0.1, "restarts": 5, "penalty": 0.1}


class RandomNetPrior(GenerativePrior):
    """The true generator of the `random-net` dataset (a random expansive ReLU network,
    Hand & Voroninski): recovery with a perfectly known range, the theory's setting. lr 0.05: on
    10 validation signals (k = 10, noiseless, m = 20) it recovered all to 1e-2 relative error,
    lr 0.01 8 of 10."""

    name = "random-net"
    model = "random-net"
    description = "the random-net dataset's own ReLU network G, min ||A G(z) - y||^2 over z"
    parameters = {"steps": 1000, "lr": 0.05, "restarts": 5, "penalty": 0.0}

    def supports(self, measurement: Any, dataset: Any) -> str | None:
        reason = Prior.supports(self, measurement, dataset)
        if reason is None and getattr(dataset, "generator", None) is None:
            reason = f"random-net only works on the random-net dataset (it uses its network), not {dataset.name}"
        return reason
