"""Deep decoder (Heckel & Hand, arXiv 1810.03982): an untrained network as the prior.

    x = D_W(u) = sigmoid(W_out relu(N(W_L U(... relu(N(W_1 u)) ...)))),   u fixed, random

u is a fixed random (k, H / 2^L, W / 2^L) tensor, W_l are 1 x 1 convolutions (k x k channel
mixes), U bilinear upsampling (x2 per level, to the image size at the last level), N channel
normalisation (zero mean, unit variance over the pixels of a channel, then a learned scale and
shift). Only the weights W are fitted, to the measurements of each instance:

    W_hat = argmin_W ||A D_W(u) - y||^2     (Adam, a fixed number of steps),   x_hat = D_W_hat(u).

With k channels, L levels and C output channels there are L (k^2 + 2k) + C k parameters, fewer
than the pixels: the architecture itself is the (underparametrised) prior. Every instance has its
own weights, stacked along the batch axis, so B fits run as one tensor program; nothing is shared
between instances. The points of a tuning grid (decoders of different widths) fit side by side in
the same loop: their outputs are measured together, reading each A once per step for all of them.

`deep_decode` is the plain formulation (batched einsums, differentiable by autograd). The fit runs
`DecoderBlock` instead: the decoders of one depth as a single network with block-diagonal weights
and a hand-written gradient (no autograd graph), Adam on one flat tensor: the same numbers up to
float rounding (tests/test_untrained_fast_path.py), without autograd's per-op overhead.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from csbench.generative.latent import Adam, check_measurements, data_gradient
from csbench.priors import Prior, as_images
from csbench.problem import Problem
from csbench.progress import step_progress


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Spatial sizes of the L levels, halving backwards from the image size (rounded up)."""
    return [(math.ceil(height / 2 ** (levels - 1 - i)), math.ceil(width / 2 ** (levels - 1 - i)))
            for i in range(levels)]


def init_decoder(batch: int, channels: int, levels: int, shape: tuple[int, int, int],
                 generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """The fixed input u (B, k, h, w) ~ U(0, 1) and initial weights: mixes (B, L, k, k) and
    output (B, C, k) ~ N(0, 1/k), scale 1, shift 0. Each instance draws its own, in turn, from a
    stream seeded by one draw of `generator`: independent starts, so a mean over images also
    averages over starts (one start shared by all moved every image's error alike: over five draws
    the mean of 64 MNIST digits at m = 100 varied by 21%, against 4.7% with a start per image), and
    instance i starts the same in any batch of more than i instances."""
    out_channels, height, width = shape
    first = level_sizes(height, width, levels)[0]
    seed = torch.randint(2 ** 63 - 1, (), generator=generator, device=generator.device)
    stream = torch.Generator().manual_seed(int(seed))
    draws = [(torch.rand(channels, *first, generator=stream),
              torch.randn(levels, channels, channels, generator=stream) / math.sqrt(channels),
              torch.randn(out_channels, channels, generator=stream) / math.sqrt(channels)) for _ in range(batch)]
    seed_input, mixes, output = (torch.stack(parts) for parts in zip(*draws))
    weights = {"mixes": mixes, "scale": torch.ones(batch, levels, channels),
               "shift": torch.zeros(batch, levels, channels), "output": output}
    return seed_input, weights


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


class DecoderBlock:
    """P deep decoders of one depth L and widths k_1..k_P as one network of K = sum k_p channels:
    the mixes W_l (K, K) and the output W_out (P C, K) are block diagonal, and channel norm, relu
    and upsampling act channel by channel, so block p computes decoder p (the off-block zeros add
    exact zeros). Forward and backward are written out on h (B, K, pixels), without autograd:

        forward, level l:   z = U_H (W_l h) U_W^T,   z_hat = (z - mean) / sqrt(var + eps),
                            h' = relu(scale z_hat + shift);      x = sigmoid(W_out h_L)
        backward, level l:  dy = dh' [h' > 0],   d shift = sum dy,   d scale = sum dy z_hat,
                            dz = scale / sqrt(var + eps) (dy - (d shift + z_hat d scale) / N),
                            dW_l = (U_H^T dz U_W) h^T,   dh = W_l^T (U_H^T dz U_W)

    with sums over the N pixels of a channel: batch norm's backward, with the B K channels of all
    instances as the channels of a batch of one. All weights are views of one flat tensor `theta`
    and their gradients of `grad`; off-block gradients are masked to 0, so Adam never moves them."""

    def __init__(self, decoders: list[tuple[Tensor, dict[str, Tensor]]], shape: tuple[int, int, int],
                 device: torch.device):
        """decoders: (seed_input, weights) of each width, as `init_decoder` draws them."""
        widths = [seed_input.shape[1] for seed_input, _ in decoders]
        (batch, levels), dtype = decoders[0][1]["mixes"].shape[:2], decoders[0][0].dtype
        self.count, channels, out_channels = len(widths), sum(widths), shape[0]
        self.sizes = [tuple(decoders[0][0].shape[-2:]), *level_sizes(*shape[1:], levels)]
        self.up = [None if a == b else (interpolation_matrix(a[0], b[0], dtype, device),
                                        interpolation_matrix(a[1], b[1], dtype, device))
                   for a, b in zip(self.sizes, self.sizes[1:])]
        sections = {"mixes": (levels, channels, channels), "scale": (levels, channels),
                    "shift": (levels, channels), "output": (self.count * out_channels, channels)}
        counts = [batch * math.prod(size) for size in sections.values()]
        self.theta = torch.zeros(sum(counts), dtype=dtype, device=device)
        self.grad = torch.zeros_like(self.theta)
        self.weights, self.grads = ({key: part.view(batch, *size) for (key, size), part
                                     in zip(sections.items(), flat.split(counts))} for flat in (self.theta, self.grad))
        self.mask = torch.zeros(channels, channels, dtype=dtype, device=device)
        self.output_mask = torch.zeros(self.count * out_channels, channels, dtype=dtype, device=device)
        starts = [0, *itertools.accumulate(widths)]
        for p, (_, weights) in enumerate(decoders):
            block, rows = slice(starts[p], starts[p + 1]), slice(p * out_channels, (p + 1) * out_channels)
            self.weights["mixes"][:, :, block, block] = weights["mixes"]
            self.weights["scale"][:, :, block] = weights["scale"]
            self.weights["shift"][:, :, block] = weights["shift"]
            self.weights["output"][:, rows, block] = weights["output"]
            self.mask[block, block], self.output_mask[rows, block] = 1, 1
        self.seed_input = torch.cat([seed_input.flatten(2) for seed_input, _ in decoders], dim=1).to(device)
        self.zeros = torch.zeros(batch * channels, dtype=dtype, device=device)
        self.saved: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []             # per level: h, z - mean, rstd, h'
        self.h = self.x = self.seed_input                                        # h_L and x of the last forward

    def forward(self) -> Tensor:
        """x (B, P, C H W) of the P decoders at the current weights, keeping what `backward` needs."""
        w, h, self.saved = self.weights, self.seed_input, []
        for level, up in enumerate(self.up):
            z = torch.bmm(w["mixes"][:, level], h)
            if up is not None:
                rows, columns = up
                z = (rows @ (z.view(-1, *self.sizes[level]) @ columns.T)).view(*z.shape[:2], -1)
            centred = z.sub_(z.mean(-1, keepdim=True))
            norm = torch.linalg.vector_norm(centred, dim=-1, keepdim=True)
            rstd = norm.square_().div_(z.shape[-1]).add_(1e-5).rsqrt_()               # 1 / sqrt(var + eps)
            out = torch.mul(centred, w["scale"][:, level, :, None] * rstd).add_(w["shift"][:, level, :, None]).relu_()
            self.saved.append((h, centred, rstd, out))
            h = out
        self.h, self.x = h, torch.sigmoid(torch.bmm(w["output"], h))
        return self.x.view(self.x.shape[0], self.count, -1)

    def backward(self, grad_x: Tensor) -> Tensor:
        """`grad` (flat, as `theta`): the gradient of <grad_x, x> at the last `forward`, grad_x (B, P, C H W)."""
        w, g = self.weights, self.grads
        dt = grad_x.reshape(self.x.shape) * self.x * (1 - self.x)                 # sigmoid'
        torch.mul(torch.bmm(dt, self.h.transpose(1, 2)), self.output_mask, out=g["output"])
        dh = torch.bmm(w["output"].transpose(1, 2), dt)
        for level in reversed(range(len(self.up))):
            h, centred, rstd, out = self.saved[level]
            dy = torch.ops.aten.threshold_backward(dh, out, 0)                       # relu', as autograd's
            dz, d_scale, d_shift = torch.ops.aten.native_batch_norm_backward(
                dy.view(1, -1, dy.shape[-1]), centred.view(1, -1, dy.shape[-1]), w["scale"][:, level].reshape(-1),
                None, None, self.zeros, rstd.view(-1), True, 1e-5, [True, True, True])
            g["scale"][:, level], g["shift"][:, level] = d_scale.view(rstd.shape[:2]), d_shift.view(rstd.shape[:2])
            dz = dz.view(dy.shape)
            if self.up[level] is not None:
                rows, columns = self.up[level]
                dz = (rows.T @ dz.view(-1, *self.sizes[level + 1]) @ columns).view(*dy.shape[:2], -1)
            torch.mul(torch.bmm(dz, h.transpose(1, 2)), self.mask, out=g["mixes"][:, level])
            if level > 0:
                dh = torch.bmm(w["mixes"][:, level].transpose(1, 2), dz)
        return self.grad


class DeepDecoderPrior(Prior):
    name = "deep-decoder"
    kind = "untrained"
    description = "untrained deep decoder (1x1 convs, upsampling, channel norm) fitted to y per image (Heckel-Hand)"
    parameters = {"channels": 8, "levels": 3, "steps": 1500, "lr": 0.01}
    tuning = {"channels": [4, 8, 12, 15]}  # up to the widest decoder with fewer weights than 28 x 28 pixels

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
        """x_hat (B, C, H, W) for each (channels, levels): the decoders of each depth run as one
        `DecoderBlock`, their outputs (B, P, n) are measured together (instance-major for dense A,
        `data_gradient`) and one Adam per block updates its flat weights (elementwise, so every
        decoder takes exactly the steps it would take alone)."""
        check_measurements(problem)
        decoders = [init_decoder(problem.batch, channels, levels, problem.shape, problem.generator)
                    for channels, levels in architectures]
        depths = sorted({levels for _, levels in architectures})
        members = [[i for i, (_, levels) in enumerate(architectures) if levels == depth] for depth in depths]
        blocks = [DecoderBlock([decoders[i] for i in group], problem.shape, problem.device) for group in members]
        optimisers = [Adam(block.theta, float(self.params["lr"])) for block in blocks]
        gradient, instance_major = data_gradient(problem.operator, problem.y, problem.link)
        bounds = [0, *itertools.accumulate(len(group) for group in members)]

        with torch.no_grad():
            steps = int(self.params["steps"])
            for step in range(steps):
                step_progress("deep decoder", step, steps)
                xs = [block.forward() for block in blocks]
                x = xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)                  # (B, P, n)
                grad = gradient(x) if instance_major else gradient(x.transpose(0, 1)).transpose(0, 1)
                for i, (block, optimiser) in enumerate(zip(blocks, optimisers)):
                    optimiser.step(block.backward(grad[:, bounds[i]:bounds[i + 1]]))
            x_hats = {i: x for group, block in zip(members, blocks) for i, x in zip(group, block.forward().unbind(1))}
            return [as_images(x_hats[i].contiguous(), problem.shape) for i in range(len(architectures))]
