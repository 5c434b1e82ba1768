"""Deep decoder (Heckel & Hand, arXiv 1810.03982): an untrained network as the prior.

    x = D_W(u) = sigmoid(W_out relu(N(W_L U(... relu(N(W_1 u)) ...)))),   u fixed, random

u is a fixed random (k, H / 2^L, W / 2^L) tensor, W_l are 1 x 1 convolutions (k x k channel
mixes), U bilinear upsampling (x2 per level, to the image size at the last level), N channel
normalisation (zero mean, unit variance over the pixels of a channel, then a learned scale and
shift). Only the weights W are fitted, to the measurements of each instance:

    W_hat = argmin_W ||A D_W(u) - y||^2     (Adam, a fixed number of steps),   x_hat = D_W_hat(u).

With k channels, L levels and C output channels there are L (k^2 + 2k) + C k parameters, fewer
than the pixels: the architecture itself is the (underparametrised) prior. Every instance has its
own weights, stacked along the batch axis, so B fits run as one tensor program (batched 1 x 1
convolutions are einsums); nothing is shared between instances. The points of a tuning grid
(decoders of different widths) fit side by side in the same loop: their outputs are measured
together, reading each A once per step for all of them.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from csbench.generative.latent import check_measurements, data_term_and_gradient
from csbench.priors import Prior, as_images
from csbench.problem import Problem


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Spatial sizes of the L levels, halving backwards from the image size (rounded up)."""
    return [(math.ceil(height / 2 ** (levels - 1 - i)), math.ceil(width / 2 ** (levels - 1 - i)))
            for i in range(levels)]


def init_decoder(batch: int, channels: int, levels: int, shape: tuple[int, int, int],
                 generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """The fixed input u (B, k, h, w) ~ U(0, 1) and initial weights: mixes (B, L, k, k) and
    output (B, C, k) ~ N(0, 1/k), scale 1, shift 0. One draw is copied to every instance, so an
    instance starts the same alone or at any place in a batch (each still fits its own copy)."""
    out_channels, height, width = shape
    first = level_sizes(height, width, levels)[0]
    seed_input = torch.rand(channels, *first, generator=generator)
    mixes = torch.randn(levels, channels, channels, generator=generator) / math.sqrt(channels)
    output = torch.randn(out_channels, channels, generator=generator) / math.sqrt(channels)
    weights = {"mixes": mixes.expand(batch, -1, -1, -1).clone(), "scale": torch.ones(batch, levels, channels),
               "shift": torch.zeros(batch, levels, channels), "output": output.expand(batch, -1, -1).clone()}
    return seed_input.expand(batch, -1, -1, -1).clone(), weights


def channel_norm(h: Tensor, scale: Tensor, shift: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of h (B, k, H, W) over its pixels, then scale and shift (B, k):

        (h - mean) / sqrt(var + eps) * scale + shift  =  a h + (shift - a mean),  a = scale / sqrt(var + eps)

    (one pass for the statistics, one fused multiply-add over h)."""
    var, mean = torch.var_mean(h, dim=(2, 3), unbiased=False, keepdim=True)
    a = scale[..., None, None] * torch.rsqrt(var + eps)
    return torch.addcmul(shift[..., None, None] - a * mean, h, a)


@lru_cache(maxsize=None)
def interpolation_matrix(size_in: int, size_out: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """U (size_out, size_in) with U v = F.interpolate(v, size_out, mode="linear", align_corners=False)."""
    eye = torch.eye(size_in, dtype=dtype, device=device).unsqueeze(1)
    return F.interpolate(eye, size=size_out, mode="linear", align_corners=False).squeeze(1).T.contiguous()


def upsample(h: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of h (B, k, H, W) to `size` (align_corners=False), as the separable product
    U_H h U_W^T: two small matrix products, cheaper forward and backward than the interpolation kernel."""
    rows = interpolation_matrix(h.shape[-2], size[0], h.dtype, h.device)
    columns = interpolation_matrix(h.shape[-1], size[1], h.dtype, h.device)
    return rows @ h @ columns.T


def deep_decode(weights: dict[str, Tensor], seed_input: Tensor, image_size: tuple[int, int]) -> Tensor:
    """D_W(u) for every instance: seed_input (B, k, h, w) -> (B, C, H, W) in (0, 1)."""
    levels = weights["mixes"].shape[1]
    sizes = level_sizes(*image_size, levels)
    h = seed_input
    for level in range(levels):
        h = torch.einsum("boi,bihw->bohw", weights["mixes"][:, level], h)
        if tuple(h.shape[-2:]) != sizes[level]:
            h = upsample(h, sizes[level])
        h = torch.relu(channel_norm(h, weights["scale"][:, level], weights["shift"][:, level]))
    return torch.sigmoid(torch.einsum("boi,bihw->bohw", weights["output"], h))


def parameter_count(channels: int, levels: int, out_channels: int) -> int:
    """L (k^2 + 2k) + C k weights per instance."""
    return levels * (channels * channels + 2 * channels) + out_channels * channels


class DeepDecoderPrior(Prior):
    name = "deep-decoder"
    kind = "untrained"
    description = "untrained deep decoder (1x1 convs, upsampling, channel norm) fitted to y per image (Heckel-Hand)"
    parameters = {"channels": 8, "levels": 3, "steps": 1500, "lr": 0.01}
    tuning = {"channels": [4, 8, 12]}

    def recover(self, problem: Problem) -> Tensor:
        return self.fit(problem, [(int(self.params["channels"]), int(self.params["levels"]))])[0]

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """A grid over the architecture (channels, levels) fits all its decoders in one loop, each
        initialised in grid order, as consecutive `recover` calls would be."""
        if any(set(point) - {"channels", "levels"} for point in grid):
            return super().recover_grid(problem, grid)
        try:
            return self.fit(problem, [(int(point.get("channels", self.params["channels"])),
                                       int(point.get("levels", self.params["levels"]))) for point in grid])
        except Exception as exc:  # a failure of the shared loop fails every point
            return [exc] * len(grid)

    def fit(self, problem: Problem, architectures: list[tuple[int, int]]) -> list[Tensor]:
        """x_hat (B, C, H, W) for each (channels, levels): the decoders' outputs (P, B, n) are
        measured together and one Adam updates all weights (elementwise, so every decoder
        takes exactly the steps it would take alone)."""
        check_measurements(problem)
        image_size = tuple(problem.shape[1:])
        decoders = []
        for channels, levels in architectures:
            seed_input, weights = init_decoder(problem.batch, channels, levels, problem.shape, problem.generator)
            decoders.append((seed_input.to(problem.device),
                             {key: value.to(problem.device).requires_grad_(True) for key, value in weights.items()}))
        optimiser = torch.optim.Adam([w for _, weights in decoders for w in weights.values()],
                                     lr=float(self.params["lr"]), foreach=True)

        def outputs() -> list[Tensor]:
            return [deep_decode(weights, seed_input, image_size).flatten(1) for seed_input, weights in decoders]

        with torch.enable_grad():
            for _ in range(int(self.params["steps"])):
                optimiser.zero_grad(set_to_none=True)
                xs = outputs()
                _, grads = data_term_and_gradient(problem.operator, torch.stack(xs), problem.y, problem.link)
                torch.autograd.backward(xs, list(grads))
                optimiser.step()
        with torch.no_grad():
            return [as_images(x, problem.shape) for x in outputs()]
