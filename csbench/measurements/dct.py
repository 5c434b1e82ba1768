"""Orthonormal DCT-II (and its inverse, DCT-III) in torch via the FFT: O(n log n), no n x n matrix.

    X_k = w_k sum_{j<N} x_j cos(pi k (2j + 1) / (2N)),   w_0 = sqrt(1/N), w_k = sqrt(2/N),

matching scipy.fft.dct(x, type=2, norm="ortho"). Makhoul's algorithm: with the reordering
v = (x_0, x_2, x_4, ..., x_5, x_3, x_1),  sum_j x_j cos(...) = Re(exp(-i pi k / 2N) FFT(v)_k).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _weights(size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    w = torch.full((size,), math.sqrt(2.0 / size), dtype=dtype, device=device)
    w[0] = math.sqrt(1.0 / size)
    return w


def _twiddle(size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """exp(-i pi k / 2N), k = 0..N-1."""
    k = torch.arange(size, dtype=dtype, device=device)
    return torch.polar(torch.ones_like(k), -math.pi * k / (2 * size))


def dct(x: Tensor) -> Tensor:
    """Orthonormal DCT-II along the last dimension."""
    size = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    coefficients = (torch.fft.fft(v, dim=-1) * _twiddle(size, x.dtype, x.device)).real
    return coefficients * _weights(size, x.dtype, x.device)


def idct(X: Tensor) -> Tensor:
    """Inverse of `dct` (orthonormal DCT-III) along the last dimension.

    With c_k = X_k / w_k (the unweighted sums), FFT(v)_k = exp(i pi k / 2N) (c_k - i c_{N-k}), c_N = 0.
    """
    size = X.shape[-1]
    c = X / _weights(size, X.dtype, X.device)
    c_reflected = torch.cat([torch.zeros_like(c[..., :1]), c[..., 1:].flip(-1)], dim=-1)
    spectrum = torch.complex(c, -c_reflected) * _twiddle(size, X.dtype, X.device).conj()
    v = torch.fft.ifft(spectrum, dim=-1).real
    half = (size + 1) // 2
    x = torch.empty_like(v)
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x


def dct2(x: Tensor) -> Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions (H, W)."""
    return dct(dct(x).transpose(-1, -2)).transpose(-1, -2)


def idct2(X: Tensor) -> Tensor:
    """Inverse of `dct2`."""
    return idct(idct(X).transpose(-1, -2)).transpose(-1, -2)
