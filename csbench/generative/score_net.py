"""A compact noise-conditional denoiser / score network for 28x28 images, and its training loss.

Parametrisation (Karras et al. 2022, "EDM"): with u = x - 1/2 (images centred), s_d = `sigma_data`
and a U-Net F_theta, the denoiser is

    D(x, s) = 1/2 + c_skip(s) u + c_out(s) F_theta(c_in(s) u, log(s) / 4),
    c_skip = s_d^2 / (s^2 + s_d^2),  c_out = s s_d / sqrt(s^2 + s_d^2),  c_in = 1 / sqrt(s^2 + s_d^2).

D estimates E[x0 | x0 + s e = x] (e ~ N(0, I)), so by Tweedie's formula the score of the
noised data density p_s = p_data * N(0, s^2 I) is

    grad_x log p_s(x) = (D(x, s) - x) / s^2.

Denoising score matching (Vincent 2011) trains it: with x0 from the data, e ~ N(0, I),
log s ~ N(p_mean, p_std^2) (clamped to [sigma_min, sigma_max]),

    L(theta) = E || F_theta(c_in u_s, log(s)/4) - (u0 - c_skip u_s) / c_out ||^2 / n,
    u_s = x0 + s e - 1/2,

which equals E[ lambda(s) ||D(x0 + s e, s) - x0||^2 ] / n with lambda = 1 / c_out^2, i.e. the
score-matching loss s^4 lambda(s) || s_theta(x, s) - grad log N(x; x0, s^2 I) ||^2 reweighted.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from csbench.errors import CsbenchError
from csbench.generative.checkpoints import read_sidecar, verified_state

ARCHITECTURE = "score-unet"


def _groups(channels: int) -> int:
    """The largest group count <= 8 dividing `channels`."""
    return max(g for g in range(1, 9) if channels % g == 0)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus a per-channel shift from the noise embedding, twice; residual."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.film(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class ScoreUNet(nn.Module):
    """Three-resolution U-Net (28 -> 14 -> 7 for MNIST-sized images) with one residual block per
    level and direction, conditioned on c_noise = log(sigma)/4 by random Fourier features + MLP.

    `denoise(x, sigma)` is D above (x in image space, sigma of shape (B,) or scalar);
    `score(x, sigma)` = (D(x, sigma) - x) / sigma^2. Works on (..., C, H, W) inputs.
    """

    architecture = ARCHITECTURE

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), width: int = 16, emb: int = 64,
                 sigma_data: float = 0.5):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.width, self.emb, self.sigma_data = int(width), int(emb), float(sigma_data)
        self.config = {"shape": list(self.shape), "width": self.width, "emb": self.emb, "sigma_data": self.sigma_data}
        self.latent_dim = None  # not a latent-variable generator
        c, w = self.shape[0], self.width
        self.register_buffer("freqs", torch.zeros(emb // 2))
        self.embed = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.stem = nn.Conv2d(c, w, 3, padding=1)
        self.down1 = _ResBlock(w, w, emb)
        self.pool1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.down2 = _ResBlock(2 * w, 2 * w, emb)
        self.pool2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)
        self.mid = _ResBlock(4 * w, 4 * w, emb)
        self.up2 = _ResBlock(4 * w + 2 * w, 2 * w, emb)
        self.up1 = _ResBlock(2 * w + w, w, emb)
        self.head = nn.Sequential(nn.GroupNorm(_groups(w), w), nn.SiLU(), nn.Conv2d(w, c, 3, padding=1))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Seeded init: weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default law), biases 0,
        norms (1, 0), the output conv zeroed (D starts as the c_skip shrinkage), Fourier freqs N(0, 16)."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    fan_in = module.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in)
                    module.weight.copy_((torch.rand(module.weight.shape, generator=generator) * 2 - 1) * bound)
                    module.bias.zero_()
                elif isinstance(module, nn.GroupNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            self.head[-1].weight.zero_()
            self.freqs.copy_(torch.randn(self.freqs.shape, generator=generator) * 4.0)

    def network(self, u: Tensor, c_noise: Tensor) -> Tensor:
        """F_theta: (B, C, H, W) scaled input, (B,) noise code -> (B, C, H, W)."""
        angles = 2 * math.pi * c_noise[:, None] * self.freqs[None, :]
        emb = self.embed(torch.cat([angles.cos(), angles.sin()], dim=1))
        h0 = self.down1(self.stem(u), emb)
        h1 = self.down2(self.pool1(h0), emb)
        h = self.mid(self.pool2(h1), emb)
        h = F.interpolate(h, size=h1.shape[-2:], mode="nearest")
        h = self.up2(torch.cat([h, h1], dim=1), emb)
        h = F.interpolate(h, size=h0.shape[-2:], mode="nearest")
        h = self.up1(torch.cat([h, h0], dim=1), emb)
        return self.head(h)

    def coefficients(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        sd2 = self.sigma_data ** 2
        total = sigma ** 2 + sd2
        return sd2 / total, sigma * self.sigma_data / total.sqrt(), 1.0 / total.sqrt()

    def denoise(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """D(x, sigma) ~ E[x0 | x], for x of shape (..., C, H, W) and sigma a scalar or (...)."""
        lead = x.shape[:-3]
        x = x.reshape(-1, *self.shape)
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(lead).reshape(-1)
        c_skip, c_out, c_in = (c[:, None, None, None] for c in self.coefficients(sigma))
        u = x - 0.5
        out = 0.5 + c_skip * u + c_out * self.network(c_in * u, sigma.log() / 4)
        return out.reshape(*lead, *self.shape)

    def score(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 (Tweedie)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        s2 = sigma.reshape(*sigma.shape, 1, 1, 1) ** 2 if sigma.dim() else sigma ** 2
        return (self.denoise(x, sigma) - x) / s2

    def loss(self, x0: Tensor, generator: torch.Generator, p_mean: float, p_std: float,
             sigma_min: float, sigma_max: float) -> Tensor:
        """Denoising score matching (module docstring), mean over the batch and pixels."""
        batch = x0.shape[0]
        log_sigma = torch.randn(batch, generator=generator) * p_std + p_mean
        sigma = log_sigma.exp().clamp(sigma_min, sigma_max)
        noise = torch.randn(x0.shape, generator=generator)
        c_skip, c_out, c_in = (c[:, None, None, None] for c in self.coefficients(sigma))
        u0 = x0 - 0.5
        us = u0 + sigma[:, None, None, None] * noise
        target = (u0 - c_skip * us) / c_out
        return (self.network(c_in * us, sigma.log() / 4) - target).pow(2).mean()


def build_score_net(config: dict[str, Any]) -> ScoreUNet:
    config = dict(config)
    config["shape"] = tuple(config.get("shape", (1, 28, 28)))
    return ScoreUNet(**config)


def load_score_net(path: Path, device: str | torch.device = "cpu") -> tuple[ScoreUNet, dict[str, Any]]:
    """(frozen ScoreUNet in eval mode, sidecar) from a `score-*.pt` checkpoint: the sha256 in the
    sidecar is verified and the state dict loaded with weights_only=True."""
    path = Path(path)
    meta = read_sidecar(path)
    if meta["architecture"] != ARCHITECTURE:
        raise CsbenchError(f"checkpoint {path} is a {meta['architecture']!r}, not a {ARCHITECTURE!r}")
    state = verified_state(path, meta)
    net = build_score_net(meta["config"])
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CsbenchError(f"checkpoint {path} does not match architecture {ARCHITECTURE!r}: "
                           f"{str(exc).splitlines()[0]}") from None
    return net.to(device).eval().requires_grad_(False), meta
