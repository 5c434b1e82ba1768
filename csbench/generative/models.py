"""Generator architectures: the paper's VAE and a DCGAN for 28x28 images.

Every generator G exposes the same interface, used by latent optimisation:

    G.decode(z)  z: (..., k) -> (..., C, H, W) in the signal space [0, 1]
    G.latent_dim = k,  G.shape = (C, H, W)

and may add a hand-written gradient path, used by latent optimisation in place of autograd:

    G.decode_and_pullback(z) -> (G(z) flattened (..., n), v -> J_G(z)^T v  (..., n) -> (..., k))

Each model also records `architecture` (its name) and `config` (the keyword arguments that
rebuild it), so a checkpoint sidecar is enough to reconstruct it (`build_model`).
"""
from __future__ import annotations

import math
from typing import Any, Callable

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

    def decode_and_pullback(self, z: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """G(z) flattened (..., n) and v -> J_G(z)^T v, by hand (no autograd graph): with
        a_l = W_l h_{l-1} + b_l, h_0 = z, h_l = softplus(a_l), g = sigmoid(a_3),

            J^T v = W_1^T (s(a_1) * W_2^T (s(a_2) * W_3^T (g (1 - g) v))),   s = sigmoid = softplus'

        (softplus' and sigmoid' by the kernels autograd uses). Parameters are frozen: no gradients."""
        (w1, b1), (w2, b2), (w3, b3) = ((layer.weight, layer.bias) for layer in self.decoder[::2])
        lead, rows = z.shape[:-1], z.reshape(-1, self.latent_dim)
        a1 = torch.addmm(b1, rows, w1.T)
        h1 = F.softplus(a1)
        a2 = torch.addmm(b2, h1, w2.T)
        g = torch.addmm(b3, F.softplus(a2), w3.T).sigmoid_()

        def pullback(v: Tensor) -> Tensor:
            d = torch.ops.aten.sigmoid_backward(v.reshape(g.shape), g)
            d = torch.ops.aten.softplus_backward(d @ w3, a2, 1.0, 20.0)
            d = torch.ops.aten.softplus_backward(d @ w2, a1, 1.0, 20.0)
            return (d @ w1).reshape(*lead, self.latent_dim)

        return g.reshape(*lead, g.shape[-1]), pullback

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


class FrozenDCGAN(nn.Module):
    """A trained DCGANGenerator rearranged for recovery: the same G(z) in eval mode, with no
    parameter gradients, and fewer, faster operations per call.

    Eval-mode batch norm is an affine map per channel, BN(h) = s h + t with
    s = gamma / sqrt(var + eps), t = beta - mean s, folded into the linear map before it:

        h1 = relu(diag(s1) P z + t1)                 (2w x 7 x 7, stored channels-last)
        h2 = relu(ConvT_{diag(s2) W1}(h1) + t2)      (w x 14 x 14, channels-last)
        x  = sigmoid(col2im(h2 W2) + b2)             (C x 28 x 28)

    The last transposed convolution is a matrix product over channels, h2 (14 * 14, w) x
    W2 (w, C * 4 * 4), scattered onto the output by col2im (`F.fold`); with C = 1 this beats
    the convolution kernels. On one CPU thread the rows go through in equal blocks of at most
    `rows_per_chunk`: a block's activations (25 KB a row at w = 32) are reused from cache and its
    buffers from the allocator, where whole-batch buffers (37 MB for h2 at 1500 rows) are fresh
    pages to fault in at every call. (With more threads the whole batch goes at once: blocks
    multiply the parallel regions, and measured slower at 2 threads on shared cores.) Numbers
    equal the module's up to float rounding."""

    rows_per_chunk = 256

    def __init__(self, net: DCGANGenerator):
        super().__init__()
        if net.training:
            raise CsbenchError("FrozenDCGAN folds batch-norm running statistics: put the generator in eval mode")
        self.shape, self.latent_dim, self.width = net.shape, net.latent_dim, net.width
        bn1, convt1, bn2, convt2 = net.body[0], net.body[2], net.body[3], net.body[5]
        with torch.no_grad():
            s1, t1 = batch_norm_affine(bn1)
            s2, t2 = batch_norm_affine(bn2)
            channels = 2 * self.width
            project = net.project.weight.reshape(channels, 7 * 7, self.latent_dim) * s1[:, None, None]
            self.register_buffer("project", project.transpose(0, 1).reshape(-1, self.latent_dim).contiguous())
            self.register_buffer("project_bias", t1.repeat(7 * 7))                 # (7 * 7 * 2w,), channel fastest
            self.register_buffer("convt1", (convt1.weight * s2[None, :, None, None]).contiguous())
            self.register_buffer("convt1_bias", t2.clone())
            self.register_buffer("convt2", convt2.weight.reshape(self.width, -1).clone())  # (w, C * 16)
            self.register_buffer("convt2_bias", convt2.bias.clone())
        self.requires_grad_(False)

    def chunks(self, z: Tensor) -> tuple[Tensor, ...]:
        """The rows of z (..., k) as (N, k) blocks: on one CPU thread equal ones of at most `rows_per_chunk`."""
        rows = z.reshape(-1, self.latent_dim)
        if rows.device.type != "cpu" or torch.get_num_threads() > 1:
            return (rows,)
        return rows.tensor_split(max(1, -(-rows.shape[0] // self.rows_per_chunk)))

    def layers(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(h1 (N, 7 * 7 * 2w), h2 (N, w, 14, 14) channels-last, x (N, C, 28, 28)) for z (N, k)."""
        h1 = F.linear(z, self.project, self.project_bias).relu_()
        n = h1.shape[0]
        h2 = F.conv_transpose2d(h1.view(n, 7, 7, 2 * self.width).permute(0, 3, 1, 2), self.convt1,
                                self.convt1_bias, stride=2, padding=1).relu_()
        cols = h2.permute(0, 2, 3, 1).reshape(-1, self.width) @ self.convt2
        x = F.fold(cols.view(n, 14 * 14, -1).transpose(1, 2), (28, 28), 4, stride=2, padding=1)
        return h1, h2, x.add_(self.convt2_bias[:, None, None]).sigmoid_()

    def decode(self, z: Tensor) -> Tensor:
        x = torch.cat([self.layers(rows)[2] for rows in self.chunks(z)])
        return x.reshape(*z.shape[:-1], *self.shape)

    def decode_and_pullback(self, z: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """G(z) flattened (..., n) (as `decode`) and v -> J_G(z)^T v by hand: the input gradient of
        a transposed convolution is the convolution with the same kernel and stride,

            J^T v = P1^T (1[h1 > 0] * conv(1[h2 > 0] * conv(x (1 - x) v, W2), W1)),

        block by block as the forward (`pullback_rows`)."""
        lead = z.shape[:-1]
        saved = [self.layers(rows) for rows in self.chunks(z)]
        x = torch.cat([layers[2] for layers in saved])

        def pullback(v: Tensor) -> Tensor:
            parts = v.reshape(x.shape).split([layers[2].shape[0] for layers in saved])
            grads = [self.pullback_rows(part, *layers) for part, layers in zip(parts, saved)]
            return torch.cat(grads).reshape(*lead, self.latent_dim)

        return x.reshape(*lead, -1), pullback

    def pullback_rows(self, v: Tensor, h1: Tensor, h2: Tensor, x: Tensor) -> Tensor:
        """J^T v (N, k) for v (N, C, 28, 28) at the `layers` (h1, h2, x) of the same N rows: both
        convolutions on channels-last tensors (faster than autograd's conv-transpose backward), the
        masks applied in place (no new buffers)."""
        n, c = x.shape[:2]
        d = x.new_empty(n, 28, 28, c).permute(0, 3, 1, 2)                   # channels-last, as h1, h2
        torch.ops.aten.sigmoid_backward.grad_input(v, x, grad_input=d)
        d = F.conv2d(d, self.convt2.reshape(self.width, c, 4, 4), stride=2, padding=1)
        torch.ops.aten.threshold_backward.grad_input(d, h2, 0.0, grad_input=d)
        d = F.conv2d(d, self.convt1, stride=2, padding=1).permute(0, 2, 3, 1).reshape(h1.shape)
        torch.ops.aten.threshold_backward.grad_input(d, h1, 0.0, grad_input=d)
        return d @ self.project


def batch_norm_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(s, t) with BN(h) = s h + t per channel in eval mode."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return s, bn.bias - bn.running_mean * s


def freeze(generator: nn.Module) -> nn.Module:
    """The generator for recovery: eval mode, no parameter gradients; a DCGAN as its FrozenDCGAN."""
    generator = generator.eval().requires_grad_(False)
    return FrozenDCGAN(generator) if isinstance(generator, DCGANGenerator) else generator


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
