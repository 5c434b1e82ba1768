"""Generative priors: recover x = G(z_hat) by latent optimisation (Bora et al. 2017), with G a
trained VAE or DCGAN decoder, or the random ReLU network that generated the `random-net` data.

    z_hat = argmin_z  D(A G(z), y) + penalty ||z||^2      (D by link, see latent.py)
"""
from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from csbench.errors import CsbenchError
from csbench.generative.latent import check_measurements, initial_latents, optimise_latent
from csbench.generative.zoo import find_checkpoint, load_generator
from csbench.priors import Prior, PriorContext, as_images
from csbench.problem import Problem


class GenerativePrior(Prior):
    """A prior built on a generator G from `csbench.generative.zoo` (vae, dcgan, random-net, and
    hv, pgd-gan, sparsegen). The generator is the class's `model`, else the parameter `model`,
    else "random-net" on the random-net dataset and "dcgan" elsewhere."""

    kind = "generative"
    model: str | None = None
    generator: Any = None  # set by `setup`

    def model_for(self, dataset: Any) -> str:
        chosen = self.model or self.params.get("model")
        if chosen:
            return chosen
        return "random-net" if getattr(dataset, "generator", None) is not None else "dcgan"

    def setup(self, context: PriorContext) -> None:
        super().setup(context)
        self.generator = load_generator(self.model_for(context.dataset), context.dataset, context.device)

    def supports(self, measurement: Any, dataset: Any) -> str | None:
        reason = super().supports(measurement, dataset)
        if reason:
            return reason
        model = self.model_for(dataset)
        if model == "random-net":
            if getattr(dataset, "generator", None) is None:
                return f"{self.name}: generator random-net needs the random-net dataset, not {dataset.name!r}"
        elif find_checkpoint(model, dataset.name) is None:
            return (f"no {model} checkpoint for dataset {dataset.name} "
                    f"(train one with `csbench train {model} --dataset {dataset.name}`)")
        return None

    def assets(self, dataset: Any) -> list:
        """The checkpoint G is loaded from (none for random-net): part of a result's identity."""
        model = self.model_for(dataset)
        path = None if model == "random-net" else find_checkpoint(model, dataset.name)
        return [path] if path else []

    @property
    def latent_dim(self) -> int:
        if self.generator is None:
            raise CsbenchError(f"prior {self.name!r} has no generator: call setup(context) first")
        return self.generator.latent_dim

    def decode(self, z: Tensor) -> Tensor:
        return self.generator.decode(z)

    @property
    def decode_and_pullback(self) -> Callable[[Tensor], tuple[Tensor, Callable[[Tensor], Tensor]]] | None:
        """The generator's hand-written gradient path (models.py), used by latent optimisation on
        `self.decode`; None where the generator has none or a subclass redefines `decode`."""
        if type(self).decode is not GenerativePrior.decode:
            return None
        return getattr(self.generator, "decode_and_pullback", None)

    def initial_latents(self, problem: Problem, restarts: int) -> Tensor:
        """z0 ~ N(0, I), shape (R, B, k), the same per instance alone or in a batch (latent.py);
        checks that y matches the operator first."""
        check_measurements(problem)
        z = initial_latents(problem.batch, restarts, self.latent_dim, problem.generator)
        return z.to(problem.device)

    def finish(self, x: Tensor, problem: Problem) -> Tensor:
        """(B, n) or (B, C, H, W) -> (B, C, H, W), clipped to [0, 1] when the dataset's signals
        lie there (`Dataset.bounded`; random-net's ReLU outputs do not)."""
        x = as_images(x.detach(), problem.shape)
        bounded = self.context is None or getattr(self.context.dataset, "bounded", True)
        return x.clamp(0.0, 1.0) if bounded else x


class LatentOptimisationPrior(GenerativePrior):
    """Bora et al.'s recovery: Adam on z (see module docstring), the best of `restarts` starts."""

    links = ("identity", "sign", "abs")

    def recover(self, problem: Problem) -> Tensor:
        x_hat, _, _ = optimise_latent(self.decode, problem, latent_dim=self.latent_dim,
                                      steps=int(self.params["steps"]), lr=float(self.params["lr"]),
                                      restarts=int(self.params["restarts"]), penalty=float(self.params["penalty"]))
        return as_images(x_hat, problem.shape)


class VAEPrior(LatentOptimisationPrior):
    """Bora et al.'s MNIST recipe: Adam lr 0.01, 1000 steps, 10 restarts, penalty 0.1. On 10 mnist
    validation digits (sigma 0.1) penalty 0.1 vs 0 gave MSE 0.027 vs 0.035 at m = 25 and 0.016 vs
    0.015 at m = 100, so 0.1 is kept.

    All 1000 steps run: on 64 test digits at m = 100 the best restart's loss is within 1e-4 of
    its final value from step 470 (median; 90% by 694), but the winning restart still changes
    after step 980 for half of them, so stopping an image once its best restart settles and no
    other can catch up (a 50-step window) ran 97-99.5% of the steps at tol 1e-4 and 1e-5."""

    name = "vae"
    model = "vae"
    description = "VAE decoder (k=20), min ||A G(z) - y||^2 + 0.1 ||z||^2 over z (Bora et al. 2017)"
    parameters = {"steps": 1000, "lr": 0.01, "restarts": 10, "penalty": 0.1}


class DCGANPrior(LatentOptimisationPrior):
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


class RandomNetPrior(LatentOptimisationPrior):
    """The true generator of the `random-net` dataset (a random expansive ReLU network,
    Hand & Voroninski): recovery with a perfectly known range, the theory's setting. lr 0.05: on
    10 validation signals (k = 10, noiseless, m = 20) it recovered all to 1e-2 relative error,
    lr 0.01 8 of 10."""

    name = "random-net"
    model = "random-net"
    description = "the random-net dataset's own ReLU network G, min ||A G(z) - y||^2 over z"
    parameters = {"steps": 1000, "lr": 0.05, "restarts": 5, "penalty": 0.0}
