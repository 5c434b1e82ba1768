"""How much one random draw moves a prior's mean error, with starts shared by every image or drawn
per image, both measured in the same run.

    python benchmarks/bench_start_spread.py [--prior "deep-decoder[channels=12]"] [--m 100] [--images 64]
                                            [--draws 5] [--threads T]

A bootstrap CI over images sees the spread of per-image errors, not that of a draw shared by every
image: one start (or one set of restarts) given to all B images moves all their errors alike. For
D generator seeds the script recovers the first B MNIST test digits of a task (Gaussian A,
sigma = 0.1, the prior's parameters as named, e.g. `dcgan` or `deep-decoder[channels=12]`) and
prints the mean MSE per draw and the coefficient of variation of those means, CV = std / mean, twice: with every image drawing its own start and with
one start copied to every image (the prior's starts taken from its first instance's draw). The
deep decoder draws per image (`csbench/untrained.py`); vae, dcgan, pgd-gan, sparsegen and hv
share their restarts (`initial_latents`), so for them the per-image line patches `initial_latents`
to draw (R, B, k). Ends with `ratio: X` (CV shared / CV per image: how much the shared draw adds).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from unittest import mock

import torch

import csbench.generative.latent as latent
import csbench.generative.priors as generative_priors
import csbench.untrained as untrained
from csbench.metrics import mse
from csbench.naming import parse_name
from csbench.runner import Task, _dataset, _prepared_prior, make_problem


PER_IMAGE_DECODER = untrained.init_decoder


def per_image_latents(batch: int, restarts: int, latent_dim: int, generator: torch.Generator) -> torch.Tensor:
    """R starts for each of the B images: (R, B, k) ~ N(0, I)."""
    return torch.randn(restarts, batch, latent_dim, generator=generator)


def shared_decoder(batch: int, channels: int, levels: int, shape: tuple, generator: torch.Generator) -> tuple:
    """The first instance's start, copied to all B (how the deep decoder drew before)."""
    seed_input, weights = PER_IMAGE_DECODER(1, channels, levels, shape, generator)
    return (seed_input.expand(batch, *seed_input.shape[1:]).clone(),
            {key: value.expand(batch, *value.shape[1:]).clone() for key, value in weights.items()})


def schemes(prior: str) -> dict[str, list[tuple[object, str, Callable]]]:
    """{scheme: (module, name, replacement) patches}, none where the prior already draws that way."""
    if parse_name(prior)[0] == "deep-decoder":
        return {"per image": [], "shared": [(untrained, "init_decoder", shared_decoder)]}
    return {"per image": [(module, "initial_latents", per_image_latents) for module in (latent, generative_priors)],
            "shared": []}


def spread(prior_name: str, m: int, images: int, draws: int, patches: list) -> list[float]:
    """Mean MSE over the first `images` test digits, once per generator seed 1..draws."""
    data = _dataset("mnist")
    x = data.split("test", images)
    prior = _prepared_prior(prior_name, data, "cpu", 0, ())
    problem = make_problem(x, Task("mnist", "gaussian", prior_name, m, 0.1, 0), "test", "cpu")
    means = []
    for seed in range(1, draws + 1):
        with ExitStack() as stack:
            for module, name, value in patches:
                stack.enter_context(mock.patch.object(module, name, value))
            x_hat = prior.recover(dataclasses.replace(problem, generator=torch.Generator().manual_seed(seed)))
        means.append(float(mse(x_hat, x).mean()))
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="deep-decoder[channels=12]")
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv = {}
    for scheme, patches in schemes(args.prior).items():
        means = spread(args.prior, args.m, args.images, args.draws, patches)
        cv[scheme] = statistics.stdev(means) / statistics.mean(means)
        print(f"{args.prior} m={args.m} {args.images} images, starts {scheme}: mean MSE per draw "
              f"{' '.join(f'{v:.4g}' for v in means)}; CV {100 * cv[scheme]:.1f}%", flush=True)
    print(f"ratio: {cv['shared'] / cv['per image']:.2f}")


if __name__ == "__main__":
    main()
