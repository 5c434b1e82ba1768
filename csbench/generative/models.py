"""Generator architectures: the paper's VAE and a DCGAN for 28x28 images.

Every generator G exposes the same interface, used by latent optimisation:

    G.decode(z)  z: (..., k) -> (..., C, H, W) in the signal space [0, 1]
    G.latent_dim = k,  G.shape = (C, H, W)

Each model also records `architecture` (its name) and `config` (the keyword arguments that
rebuild it), so a checkpoint sidecar is enough to reconstruct it (`build_model`).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from csbench.errors import CsbenchError


class VAE(nn.Module):
    """Bora et al.'s MNIST VAE: encoder n-500-500-(k mean, k log-variance), decoder k-500-500-n,
    softplus hidden activations, sigmoid output.

    Loss per image (negative ELBO): BCE(x, G(z)) + KL(N(mu, diag e^{logvar}) || N(0, I)),
    KL = -1/2 sum(1 + logvar - mu^2 - e^{logvar}),  z = mu + e^{logvar/2} eps.
    """

    architecture = "vae"

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), latent_dim: int = 20, hidden: int = 500):
        super().__init__()
        self.shape = tuple(shape)
        self.latent_dim = latent_dim
        self.config = {"shape": list(self.shape), "latent_dim": latent_dim, "hidden": hidden}
        n = math.prod(self.shape)
        self.encoder = nn.Sequential(nn.Linear(n, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(),
                                     nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Softplus(), nn.Linear(hidden, hidden),
                                     nn.Softplus(), nn.Linear(hidden, n))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Xavier-uniform weights, zero biases, drawn from `generator`."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, C, H, W) -> (mu, logvar), each (B, k)."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    def logits(self, z: Tensor) -> Tensor:
        """Pre-sigmoid decoder output, (..., n)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(z)).reshape(*z.shape[:-1], *self.shape)

    def loss(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Mean over the batch of the negative ELBO (nats per image); eps drawn from `generator`."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        bce = F.binary_cross_entropy_with_logits(self.logits(z), x.flatten(1), reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kl) / x.shape[0]


class DCGANGenerator(nn.Module):
    """DCGAN generator for 28x28 (w = width, 32 by default to keep CPU cost low): z (k) -> fc ->
    2w x 7x7 -> BN, ReLU -> ConvT(4, s2) -> w x 14x14 -> BN, ReLU -> ConvT(4, s2) -> C x 28x28 ->
    sigmoid. Runs in eval mode (BN running stats) at recovery."""

    architecture = "dcgan"

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), latent_dim: int = 100, width: int = 32):
        super().__init__()
        self.shape = tuple(shape)
        self.latent_dim = latent_dim
        self.config = {"shape": list(self.shape), "latent_dim": latent_dim, "width": width}
        if self.shape[1:] != (28, 28):
            raise CsbenchError(f"the dcgan generator is built for 28x28 images, not {self.shape[1]}x{self.shape[2]}")
        self.width = width
        self.project = nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False)
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, self.shape[0], 4, stride=2, padding=1),
        )

    def reset_parameters(self, generator: torch.Generator) -> None:
        dcgan_init(self, generator)

    def decode(self, z: Tensor) -> Tensor:
        lead = z.shape[:-1]
        h = self.project(z.reshape(-1, self.latent_dim)).reshape(-1, 2 * self.width, 7, 7)
        return torch.sigmoid(self.body(h)).reshape(*lead, *self.shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)


class DCGANDiscriminator(nn.Module):
    """Conv(4, s2) w -> LeakyReLU -> Conv(4, s2) 2w -> BN -> LeakyReLU -> linear logit (no sigmoid:
    train with BCE-with-logits)."""

    architecture = "dcgan-discriminator"

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), width: int = 32):
        super().__init__()
        self.config = {"shape": list(shape), "width": width}
        self.net = nn.Sequential(
            nn.Conv2d(shape[0], width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1),
        )

    def reset_parameters(self, generator: torch.Generator) -> None:
        dcgan_init(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, 28, 28) -> logits (B,)."""
        return self.net(x).squeeze(-1)


def dcgan_init(module: nn.Module, generator: torch.Generator) -> None:
    """Radford et al.: weights N(0, 0.02), BN scale N(1, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(layer.bias)


ARCHITECTURES: dict[str, type[nn.Module]] = {"vae": VAE, "dcgan": DCGANGenerator}


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild a generator from its sidecar entries (`architecture`, `config`)."""
    if architecture not in ARCHITECTURES:
        raise CsbenchError(f"unknown generator architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    config = dict(config)
    if "shape" in config:
        config["shape"] = tuple(config["shape"])
    return ARCHITECTURES[architecture](**config)
