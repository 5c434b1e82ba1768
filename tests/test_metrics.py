"""Metrics: MSE/PSNR values, SSIM properties and an independent numpy SSIM, link alignment."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from csbench.errors import CsbenchError
from csbench.metrics import CONVENTIONS, align, evaluate, mse, psnr, ssim


def images(seed: int, shape=(4, 1, 28, 28)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def noisy(x: torch.Tensor, level: float, seed: int = 1) -> torch.Tensor:
    return x + level * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def ssim_reference(a: np.ndarray, b: np.ndarray, size=11, sigma=1.5, k1=0.01, k2=0.03) -> float:
    """Wang et al.'s SSIM of two 2-D images, window by window (valid positions only)."""
    offsets = np.arange(size) - (size - 1) / 2
    w1 = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    w = np.outer(w1, w1) / np.outer(w1, w1).sum()
    c1, c2 = k1 ** 2, k2 ** 2
    values = []
    for i in range(a.shape[0] - size + 1):
        for j in range(a.shape[1] - size + 1):
            pa, pb = a[i:i + size, j:j + size], b[i:i + size, j:j + size]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_mse_and_psnr_values():
    x = torch.zeros(2, 1, 4, 4)
    x_hat = x.clone()
    x_hat[0] += 0.1
    x_hat[1, 0, 0, 0] = 1.0
    torch.testing.assert_close(mse(x_hat, x), torch.tensor([0.01, 1 / 16], dtype=torch.float64))
    expected = torch.tensor([20.0, 10 * math.log10(16)], dtype=torch.float64)
    torch.testing.assert_close(psnr(x_hat, x), expected)
    torch.testing.assert_close(psnr(x_hat, x, data_range=2.0), psnr(x_hat, x) + 20 * math.log10(2))
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_matches_a_window_by_window_reference():
    x = images(2, (2, 3, 16, 14))
    x_hat = noisy(x, 0.2).clamp(0, 1)
    expected = [np.mean([ssim_reference(x_hat[b, c].double().numpy(), x[b, c].double().numpy())
                         for c in range(3)]) for b in range(2)]
    np.testing.assert_allclose(ssim(x_hat, x).numpy(), expected, rtol=1e-10)


def test_ssim_properties():
    x = images(3)
    torch.testing.assert_close(ssim(x, x), torch.ones(4, dtype=torch.float64))
    y = noisy(x, 0.1)
    torch.testing.assert_close(ssim(y, x), ssim(x, y))
    scores = [ssim(noisy(x, level), x) for level in (0.02, 0.05, 0.1, 0.2, 0.4)]
    for better, worse in zip(scores, scores[1:]):
        assert (better > worse).all()
    assert (scores[-1] < 0.6).all() and (scores[0] > 0.9).all()
    small = images(4, (2, 1, 6, 6))  # smaller than the 11-pixel window: a 5 x 5 window
    torch.testing.assert_close(ssim(small, small), torch.ones(2, dtype=torch.float64))
    assert (ssim(noisy(small, 0.3), small) < 1).all()


def test_align_phaseless_resolves_the_global_sign():
    x = images(5)
    x_hat = noisy(x, 0.05)
    x_hat[1:3] = -x_hat[1:3]
    aligned = align(x_hat, x, "abs")
    assert (aligned.flatten(1).sum(1) > 0).all()
    expected = torch.minimum((x_hat - x).pow(2).flatten(1).mean(1), (x_hat + x).pow(2).flatten(1).mean(1))
    torch.testing.assert_close(evaluate(x_hat, x, "abs")["mse"], expected.double())


def test_align_one_bit_rescales_least_squares():
    x = images(6)
    x_hat = 0.2 * noisy(x, 0.05)
    x_hat[3] = -x[3]  # anti-correlated: scale clipped to 0, the error of an all-zero image
    x_hat[2] = 0.0  # zero estimate: scale 0, no division by zero
    aligned = align(x_hat, x, "sign")
    flat_hat, flat = x_hat[0].flatten().double(), x[0].flatten().double()
    c = (flat_hat @ flat) / (flat_hat @ flat_hat)
    torch.testing.assert_close(aligned[0].double(), c * x_hat[0].double())
    assert (aligned[2:] == 0).all()
    zero_error = x.pow(2).flatten(1).mean(1).double()
    metrics = evaluate(x_hat, x, "sign")
    torch.testing.assert_close(metrics["mse"][2:], zero_error[2:])
    assert (metrics["mse"][:2] < mse(x_hat, x)[:2]).all()  # rescaling only helps
    torch.testing.assert_close(evaluate(3 * x, x, "sign")["mse"], torch.zeros(4, dtype=torch.float64))


def test_evaluate_keys_identity_and_bad_link():
    x = images(7)
    x_hat = noisy(x, 0.1)
    metrics = evaluate(x_hat, x)
    assert set(metrics) == {"mse", "psnr", "ssim"} and all(v.shape == (4,) for v in metrics.values())
    torch.testing.assert_close(metrics["mse"], mse(x_hat, x))
    assert set(CONVENTIONS) == {"identity", "sign", "abs"}
    with pytest.raises(CsbenchError):
        evaluate(x_hat, x, "square")


@pytest.mark.parametrize("link", sorted(CONVENTIONS))
def test_non_finite_estimates_do_not_crash(link):
    x = images(8)
    x_hat = noisy(x, 0.1)
    x_hat[0, 0, 3, 3] = float("nan")
    x_hat[1] = float("inf")
    metrics = evaluate(x_hat, x, link)
    for values in metrics.values():
        assert not torch.isfinite(values[:2]).any() and torch.isfinite(values[2:]).all()


def test_ssim_matches_scikit_image():
    from skimage import metrics

    x = images(9, (1, 1, 28, 28))
    x_hat = noisy(x, 0.1).clamp(0, 1)
    expected = metrics.structural_similarity(
        x_hat[0, 0].double().numpy(), x[0, 0].double().numpy(), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0)
    assert ssim(x_hat, x).item() == pytest.approx(expected, rel=1e-6)
