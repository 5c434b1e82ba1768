"""Train a generator on a dataset's train split and save a checkpoint (`csbench train MODEL`).

    vae:   Bora et al.: Adam lr 1e-3, batch 100, negative ELBO (Bernoulli BCE + KL), 100 epochs on mnist.
    dcgan: Radford et al.: Adam lr 2e-4, betas (0.5, 0.999), batch 64, non-saturating GAN loss
           with BCE-with-logits; 25 epochs on mnist (8,000 digits).
    score: a noise-conditional U-Net denoiser trained by denoising score matching (score_net.py):
           Adam lr 2e-3 with cosine decay, batch 32, 10 epochs, log sigma ~ N(-1, 1.4^2), EMA 0.995 of the
           weights (the EMA weights are saved); quality: denoising error on held-out images per
           noise level and a grid of unconditional annealed-Langevin samples (score_quality).

Deterministic under `seed` on a given machine: weight init, shuffling and noise all come from one
explicit torch.Generator, and torch's deterministic algorithms are switched on while training.
Fashion-MNIST trains on the first 20,000 images of its train split by default (`n_train`) for 30
(vae) / 10 (dcgan) epochs, to keep CPU training time modest. After training, the representation error min_z ||G(z) - x||^2 / n on the
first 200 validation images is stored in the sidecar (protocol in REPRESENTATION_PROTOCOL).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm import tqdm

from csbench.datasets import load_dataset
from csbench.errors import CsbenchError
from csbench.generative.checkpoints import save_checkpoint, update_sidecar
from csbench.generative.latent import representation_error
from csbench.generative.models import VAE, DCGANDiscriminator, DCGANGenerator
from csbench.rng import torch_generator

SETTINGS: dict[str, dict[str, Any]] = {
    "vae": {"epochs": 100, "batch_size": 100, "lr": 1e-3, "betas": [0.9, 0.999]},
    "dcgan": {"epochs": 25, "batch_size": 64, "lr": 2e-4, "betas": [0.5, 0.999]},
    "score": {"epochs": 10, "batch_size": 32, "lr": 2e-3, "betas": [0.9, 0.999], "ema": 0.995,
              "p_mean": -1.0, "p_std": 1.4, "sigma_min": 0.005, "sigma_max": 20.0,
              "net": {"width": 16, "emb": 64, "sigma_data": 0.5}},
}
DEFAULT_N_TRAIN = {"fashion-mnist": 20_000}
DEFAULT_EPOCHS = {("vae", "fashion-mnist"): 30, ("dcgan", "fashion-mnist"): 10, ("score", "fashion-mnist"): 3}
REPRESENTATION_PROTOCOL = {"split": "validation", "n_images": 200, "steps": 500, "restarts": 3, "lr": 0.05}


def default_checkpoint_dir() -> Path:
    """Where `csbench train` writes and the zoo looks first (see zoo.checkpoint_dirs)."""
    from csbench.generative.zoo import checkpoint_dirs
    return checkpoint_dirs()[0]


def train(model: str, dataset: str, *, epochs: int | None = None, seed: int = 0, out: Path | None = None,
          n_train: int | None = None, quiet: bool = False, options: dict[str, Any] | None = None) -> Path:
    """Train `model` ("vae" | "dcgan" | "score") on `dataset`'s train split; returns the checkpoint path.

    Writes `out` (default `<checkpoint dir>/{model}-{dataset}.pt`), its JSON sidecar and the loss
    curve `out.with_suffix(".png")`. `options` overrides entries of SETTINGS[model] (e.g. a tiny
    score net for tests: {"net": {"width": 4}, "quality_images": 8}).
    """
    if model not in SETTINGS:
        raise CsbenchError(f"cannot train {model!r}; trainable models: {', '.join(SETTINGS)}")
    data = load_dataset(dataset)
    settings = {**SETTINGS[model], **(options or {})}
    settings["epochs"] = epochs if epochs is not None else DEFAULT_EPOCHS.get((model, data.name), settings["epochs"])
    if settings["epochs"] < 1:
        raise CsbenchError(f"epochs must be >= 1, got {settings['epochs']}")
    n_train = n_train if n_train is not None else DEFAULT_N_TRAIN.get(data.name)
    x = data.split("train", n_train)
    out = Path(out) if out is not None else default_checkpoint_dir() / f"{model}-{data.name}.pt"
    generator = torch_generator(seed, "train", model, data.name)

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        start = time.perf_counter()
        fit = {"vae": _fit_vae, "dcgan": _fit_dcgan, "score": _fit_score}[model]
        network, curves = fit(x, settings, generator, quiet)
        seconds = time.perf_counter() - start
    finally:
        torch.use_deterministic_algorithms(was_deterministic)

    network.eval()
    metadata = {
        "model": model, "dataset": data.name, "split": "train", "n_train": int(x.shape[0]), "seed": seed,
        "latent_dim": network.latent_dim, **settings,
        "final_loss": {name: values[-1] for name, values in curves.items()},
        "loss_curve": curves, "training_seconds": round(seconds, 1),
    }
    save_checkpoint(network, out, metadata)
    plot_curves(curves, out.with_suffix(".png"), f"{model} on {data.name}")
    if model == "score":
        from csbench.generative.score import score_quality
        update_sidecar(out, **score_quality(network, data, seed, out.with_name(out.stem + "-samples.png"),
                                            n_images=int(settings.get("quality_images", 200)),
                                            n_samples=int(settings.get("quality_samples", 64))))
    else:
        update_sidecar(out, **measure_representation_error(network, data, seed))
    return out


def measure_representation_error(network: nn.Module, data: Any, seed: int = 0) -> dict[str, Any]:
    """Mean of min_z ||G(z) - x||^2 / n over held-out images, with the protocol used."""
    protocol = REPRESENTATION_PROTOCOL
    x = data.split(protocol["split"], protocol["n_images"])
    errors = representation_error(network.decode, x, latent_dim=network.latent_dim, steps=protocol["steps"],
                                  lr=protocol["lr"], restarts=protocol["restarts"],
                                  generator=torch_generator(seed, "representation-error", data.name))
    return {"representation_error": round(errors.mean().item(), 6),
            "representation_protocol": {**protocol, "n_images": int(x.shape[0])}}


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A fresh shuffle of range(n) cut into batches (the last one may be smaller)."""
    return list(torch.randperm(n, generator=generator).split(batch_size))


def _fit_vae(x: Tensor, settings: dict, generator: torch.Generator, quiet: bool):
    vae = VAE(shape=tuple(x.shape[1:]))
    vae.reset_parameters(generator)
    optimiser = torch.optim.Adam(vae.parameters(), lr=settings["lr"], betas=tuple(settings["betas"]))
    curve: list[float] = []
    steps = settings["epochs"] * -(-x.shape[0] // settings["batch_size"])
    with tqdm(total=steps, desc="vae", disable=quiet) as bar:
        for _ in range(settings["epochs"]):
            total = 0.0
            for index in _batches(x.shape[0], settings["batch_size"], generator):
                loss = vae.loss(x[index], generator)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * index.numel()
                bar.update()
            curve.append(round(total / x.shape[0], 4))
            bar.set_postfix(loss=curve[-1])
    return vae, {"loss": curve}


def _fit_dcgan(x: Tensor, settings: dict, generator: torch.Generator, quiet: bool):
    shape = tuple(x.shape[1:])
    gen, disc = DCGANGenerator(shape=shape), DCGANDiscriminator(shape=shape)
    gen.reset_parameters(generator)
    disc.reset_parameters(generator)
    betas = tuple(settings["betas"])
    opt_g = torch.optim.Adam(gen.parameters(), lr=settings["lr"], betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=settings["lr"], betas=betas)
    curves: dict[str, list[float]] = {"discriminator": [], "generator": []}
    steps = settings["epochs"] * -(-x.shape[0] // settings["batch_size"])
    with tqdm(total=steps, desc="dcgan", disable=quiet) as bar:
        for _ in range(settings["epochs"]):
            d_total = g_total = 0.0
            for index in _batches(x.shape[0], settings["batch_size"], generator):
                real = x[index]
                z = torch.randn(real.shape[0], gen.latent_dim, generator=generator)
                fake = gen(z)
                # discriminator: real -> 1, fake -> 0
                real_logits, fake_logits = disc(real), disc(fake.detach())
                d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                          + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                # generator: non-saturating loss, fake -> 1
                logits = disc(fake)
                g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                d_total += d_loss.item() * real.shape[0]
                g_total += g_loss.item() * real.shape[0]
                bar.update()
            curves["discriminator"].append(round(d_total / x.shape[0], 4))
            curves["generator"].append(round(g_total / x.shape[0], 4))
            bar.set_postfix(d=curves["discriminator"][-1], g=curves["generator"][-1])
    return gen, curves


def _fit_score(x: Tensor, settings: dict, generator: torch.Generator, quiet: bool):
    """Denoising score matching (score_net.ScoreUNet.loss) with Adam, cosine lr decay to lr/20 and
    an exponential moving average of the weights, which is what is returned (and saved)."""
    from csbench.generative.score_net import ScoreUNet

    net = ScoreUNet(shape=tuple(x.shape[1:]), **settings["net"])
    net.reset_parameters(generator)
    ema = ScoreUNet(shape=tuple(x.shape[1:]), **settings["net"])
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings["lr"], betas=tuple(settings["betas"]))
    per_epoch = -(-x.shape[0] // settings["batch_size"])
    steps = settings["epochs"] * per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda t: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)))
    decay = float(settings["ema"])
    curve: list[float] = []
    with tqdm(total=steps, desc="score", disable=quiet) as bar:
        for _ in range(settings["epochs"]):
            total = 0.0
            for index in _batches(x.shape[0], settings["batch_size"], generator):
                loss = net.loss(x[index], generator, settings["p_mean"], settings["p_std"],
                                settings["sigma_min"], settings["sigma_max"])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                with torch.no_grad():
                    for target, source in zip(ema.state_dict().values(), net.state_dict().values()):
                        if target.dtype.is_floating_point:
                            target.mul_(decay).add_(source, alpha=1 - decay)
                total += loss.item() * index.numel()
                bar.update()
            curve.append(round(total / x.shape[0], 5))
            bar.set_postfix(loss=curve[-1])
    return ema, {"loss": curve}


def plot_curves(curves: dict[str, list[float]], path: Path, title: str) -> None:
    """Loss per epoch, one line per curve, saved as a png."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    figure = Figure(figsize=(5, 3.2))
    axis = figure.subplots()
    for name, values in curves.items():
        axis.plot(range(1, len(values) + 1), values, label=name)
    axis.set(xlabel="epoch", ylabel="mean loss per image", title=title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
