"""Signals from a random expansive ReLU network (the Hand-Voroninski setting).

    G(z) = relu(W_d ... relu(W_2 relu(W_1 z))),   W_i ~ N(0, 1/n_i) of shape (n_i, n_{i-1}),

no biases, widths (k = n_0, n_1, ..., n_d). Test signals are x* = G(z*), z* ~ N(0, I_k).
Each layer halves E||h||^2, so E||G(z)||^2 = k / 2^d: values are non-negative and
small, NOT in [0, 1] — the one dataset that breaks that convention.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from csbench.datasets.base import Dataset
from csbench.datasets.splits import check_split, requested_count
from csbench.errors import CsbenchError
from csbench.rng import torch_generator

OUTPUT_SIDE = 28
OUTPUT_DIM = OUTPUT_SIDE * OUTPUT_SIDE
SPLIT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}


class RandomReluGenerator(torch.nn.Module):
    """G(z) = relu(W_d ... relu(W_1 z)) with fixed Gaussian weights W_i ~ N(0, 1/n_i).

    The weights are buffers (not trained, no gradients), drawn layer by layer from one
    torch.Generator seeded from `seed`; `forward` maps z (B, k) to (B, n_d).
    """

    def __init__(self, widths: tuple[int, ...], seed: int = 0) -> None:
        super().__init__()
        if len(widths) < 2 or any(int(w) != w or w < 1 for w in widths):
            raise CsbenchError(f"widths must be at least two positive integers (k, n_1, ...), got {widths}")
        self.widths = tuple(int(w) for w in widths)
        self.latent_dim = self.widths[0]
        generator = torch_generator("random-relu-generator", seed)
        for i, (n_in, n_out) in enumerate(zip(self.widths, self.widths[1:]), start=1):
            weight = torch.randn(n_out, n_in, generator=generator) / math.sqrt(n_out)
            self.register_buffer(f"weight_{i}", weight)

    @property
    def weights(self) -> list[Tensor]:
        return [getattr(self, f"weight_{i}") for i in range(1, len(self.widths))]

    def forward(self, z: Tensor) -> Tensor:
        h = z
        for weight in self.weights:
            h = torch.relu(h @ weight.T)
        return h

    def linearise(self, z: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
        """G(z) (..., n_d), v -> J_G(z) v (..., n_d) and w -> J_G(z)^T w (..., k), by hand (no
        autograd graph): with h_0 = z, h_i = relu(W_i h_{i-1}) and D_i = diag(h_i > 0),

            J v = D_d W_d ... D_1 W_1 v,     J^T w = W_1^T D_1 ... W_d^T D_d w

        (D_i applied by the kernel autograd uses for relu, so the numbers are autograd's). The
        weights are buffers: no gradients."""
        lead, h = z.shape[:-1], z.reshape(-1, self.latent_dim)
        weights, outputs = self.weights, []
        for weight in weights:
            h = torch.relu(h @ weight.T)
            outputs.append(h)

        def push(v: Tensor) -> Tensor:
            d = v.reshape(-1, self.latent_dim)
            for weight, out in zip(weights, outputs):
                d = torch.ops.aten.threshold_backward(d @ weight.T, out, 0)
            return d.reshape(*lead, d.shape[-1])

        def pull(w: Tensor) -> Tensor:
            d = w.reshape(h.shape)
            for weight, out in zip(reversed(weights), reversed(outputs)):
                d = torch.ops.aten.threshold_backward(d, out, 0) @ weight
            return d.reshape(*lead, self.latent_dim)

        return h.reshape(*lead, h.shape[-1]), push, pull


def expansive_widths(k: int, depth: int, width: int) -> tuple[int, ...]:
    """(k, n_1, ..., n_d): n_1 = width, n_d = 784, the hidden widths in between growing
    geometrically, n_i = round(width (784 / width)^((i - 1) / (d - 1))); depth 1 is (k, 784)."""
    if depth == 1:
        return (k, OUTPUT_DIM)
    ratio = OUTPUT_DIM / width
    hidden = tuple(round(width * ratio ** (i / (depth - 1))) for i in range(depth - 1))
    return (k, *hidden, OUTPUT_DIM)


class RandomNet(Dataset):
    """x* = G(z*) for a random ReLU net G (k -> ... -> 784), shown as (1, 28, 28) images.

    Name: `random-net[k=10,depth=2,width=250,net_seed=0]` (all optional); depth counts the
    weight layers, width is the first hidden width (see `expansive_widths`). `generator` is
    the model G (a prior may use it); `latents(which, n)` returns z* for theory experiments
    only. Values are non-negative but not in [0, 1]. Splits: train 8000, validation 1000,
    test 1000 latents, drawn from a generator derived from (net_seed, split).
    """

    name = "random-net"
    bounded = False  # ReLU outputs, not in [0, 1]
    description = "synthetic x = G(z) for a random expansive ReLU network G (Hand-Voroninski); values not in [0,1]"
    shape = (1, OUTPUT_SIDE, OUTPUT_SIDE)

    def __init__(self, k: int = 10, depth: int = 2, width: int = 250, net_seed: int = 0) -> None:
        for label, value in (("k", k), ("depth", depth), ("width", width), ("net_seed", net_seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if label == "net_seed" else 1):
                raise CsbenchError(f"random-net parameter {label} must be a {'non-negative' if label == 'net_seed' else 'positive'} integer, got {value!r}")
        self.net_seed = net_seed
        self.generator = RandomReluGenerator(expansive_widths(k, depth, width), seed=net_seed)
        self.provenance = f"synthetic: random ReLU network widths {self.generator.widths}, net_seed {net_seed}"

    def size(self, which: str) -> int:
        check_split(which)
        return SPLIT_SIZES[which]

    def latents(self, which: str, n: int | None = None) -> Tensor:
        """z* (n, k) of the first n signals of a split (the ground truth: never give it to a prior)."""
        count = requested_count(self.name, which, n, self.size(which))
        generator = torch_generator("random-net", self.net_seed, which)
        return torch.randn(self.size(which), self.generator.latent_dim, generator=generator)[:count]

    @torch.no_grad()
    def split(self, which: str, n: int | None = None) -> Tensor:
        """G(z*), shape (n, 1, 28, 28)."""
        return self.generator(self.latents(which, n)).reshape(-1, *self.shape)
