"""Reconstruction metrics, batched over (B, C, H, W) images on the [0, 1] scale; each returns (B,).

    mse  = mean_pixels (x_hat - x)^2                          (the paper's per-pixel MSE)
    psnr = 10 log10(data_range^2 / mse)
    ssim = mean over the valid windows of
           ((2 mu_a mu_b + C1)(2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2)),
           Gaussian window 11 x 11, sigma 1.5, C1 = (0.01 L)^2, C2 = (0.03 L)^2 (Wang et al. 2004)

Links that lose information are scored after `align` (see CONVENTIONS). Metrics are computed in
float64; a non-finite x_hat gives nan, never an exception.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from csbench.measurements.links import LINKS, get_link

CONVENTIONS: dict[str, str] = {name: link.convention for name, link in LINKS.items()}

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _per_image(values: Tensor) -> Tensor:
    return values.flatten(1).mean(dim=1)


def mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Per-image mean over pixels of (x_hat - x)^2, shape (B,)."""
    return _per_image((x_hat.double() - x.double()) ** 2)


def psnr(x_hat: Tensor, x: Tensor, data_range: float = 1.0) -> Tensor:
    """10 log10(data_range^2 / mse) in dB, shape (B,); +inf for a perfect reconstruction."""
    return 10.0 * torch.log10(data_range ** 2 / mse(x_hat, x))


def _gaussian_window(size: int, sigma: float, device: torch.device) -> Tensor:
    offsets = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    weights = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return weights / weights.sum()


def _local_mean(images: Tensor, window: Tensor) -> Tensor:
    """Gaussian-weighted mean over each valid window of (N, 1, H, W) images (separable)."""
    size = window.numel()
    vertical = F.conv2d(images, window.view(1, 1, size, 1))
    return F.conv2d(vertical, window.view(1, 1, 1, size))


def ssim(x_hat: Tensor, x: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image, shape (B,), averaged over channels and valid windows.

    Images smaller than 11 pixels use the largest odd window that fits.
    """
    batch, channels, height, width = x.shape
    size = min(SSIM_WINDOW, height, width)
    size -= 1 - size % 2
    window = _gaussian_window(size, SSIM_SIGMA, x.device)
    a = x_hat.double().reshape(batch * channels, 1, height, width)
    b = x.double().reshape(batch * channels, 1, height, width)
    mu_a, mu_b = _local_mean(a, window), _local_mean(b, window)
    var_a = _local_mean(a * a, window) - mu_a ** 2
    var_b = _local_mean(b * b, window) - mu_b ** 2
    cov = _local_mean(a * b, window) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    similarity = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return _per_image(similarity.reshape(batch, -1))


def align(x_hat: Tensor, x: Tensor, link: str = "identity") -> Tensor:
    """x_hat with the ambiguity of `link` resolved against x (a metric may use x; a prior may not)."""
    return get_link(link).align(x_hat, x)


def evaluate(x_hat: Tensor, x: Tensor, link: str = "identity") -> dict[str, Tensor]:
    """{'mse', 'psnr', 'ssim'} per image (B,) of x_hat aligned to x for `link`."""
    aligned = align(x_hat, x, link)
    return {"mse": mse(aligned, x), "psnr": psnr(aligned, x), "ssim": ssim(aligned, x)}
