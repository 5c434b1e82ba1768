"""Orthonormal synthesis bases Psi for images of shape (C, H, W):  x = Psi c,  c = Psi^T x.

Fast transforms on flattened batches (..., n), n = C H W, acting on each channel separately:
O(n) memory, no n x n matrix. Bases:

- "pixel":   Psi = I.
- "dct":     the 2-D orthonormal DCT-II, separable:  c = D_H X D_W^T  per channel, D_N the
             N x N orthonormal DCT-II matrix (scipy.fft.dctn(norm="ortho")); O(n (H + W)) flops.
- "wavelet": orthonormal Haar wavelets (PyWavelets "haar" = "db1", mode "periodization", and its
             `coeffs_to_array` layout) at the deepest level at which both H and W stay even, so
             the transform is orthogonal (28 x 28 -> level 2, 64 x 64 -> level 6). One level maps
             each 2 x 2 block [[a, b], [c, d]] of the current approximation (h x w) to
                 (a + b + c + d) / 2  in the top-left quadrant (the next approximation),
                 (a - b + c - d) / 2  top-right,  (a + b - c - d) / 2  bottom-left,
                 (a - b - c + d) / 2  bottom-right,
             as two small matrix products per level (`haar_analysis`).
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.measurements.dct import dct_matrix

BASES = ("pixel", "dct", "wavelet")


def haar_level(height: int, width: int) -> int:
    """The number of Haar levels for which every level sees an even height and width."""
    level = 0
    while height % 2 == 0 and width % 2 == 0 and height > 1 and width > 1:
        height, width, level = height // 2, width // 2, level + 1
    return level


@lru_cache(maxsize=32)
def _haar_matrix_float64(size: int) -> Tensor:
    """One orthonormal Haar level as a matrix W = [L; H] (size x size, size even):
    (L v)_i = (v_2i + v_2i+1) / sqrt 2,  (H v)_i = (v_2i - v_2i+1) / sqrt 2."""
    w = torch.zeros(size, size, dtype=torch.float64)
    half = torch.arange(size // 2)
    w[half, 2 * half] = w[half, 2 * half + 1] = w[size // 2 + half, 2 * half] = 2 ** -0.5
    w[size // 2 + half, 2 * half + 1] = -(2 ** -0.5)
    return w


def _haar(size: int, like: Tensor) -> Tensor:
    return _haar_matrix_float64(size).to(dtype=like.dtype, device=like.device)


def haar_analysis(x: Tensor, level: int) -> Tensor:
    """Haar coefficients of images (..., H, W), `level` levels, PyWavelets' layout: each level
    maps the current approximation block X (h x w) to W_h X W_w^T, whose quadrants are the next
    approximation and the horizontal, vertical and diagonal details."""
    out = x.clone()
    height, width = x.shape[-2:]
    for _ in range(level):
        out[..., :height, :width] = _haar(height, x) @ out[..., :height, :width] @ _haar(width, x).T
        height, width = height // 2, width // 2
    return out


def haar_synthesis(c: Tensor, level: int) -> Tensor:
    """Inverse of `haar_analysis` (its transpose, each level W_h^T Q W_w): images (..., H, W)."""
    out = c.clone()
    height, width = (size >> max(level - 1, 0) for size in c.shape[-2:])  # the coarsest split block
    for _ in range(level):
        out[..., :height, :width] = _haar(height, c).T @ out[..., :height, :width] @ _haar(width, c)
        height, width = height * 2, width * 2
    return out


class Basis:
    """A basis applied to flattened batches (..., n):  synthesize(c) = Psi c,  analyze(x) = Psi^T x."""

    def __init__(self, name: str, shape: tuple[int, int, int], *, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu"):
        if name not in BASES:
            raise CsbenchError(f"unknown basis {name!r}; known: {', '.join(BASES)}")
        self.name, self.shape = name, tuple(shape)
        channels, height, width = self.shape
        self.level = haar_level(height, width)
        if name == "dct":
            self.rows = dct_matrix(height, dtype, device)
            self.columns = dct_matrix(width, dtype, device)

    def _images(self, v: Tensor) -> Tensor:
        return v.reshape(*v.shape[:-1], *self.shape)

    def synthesize(self, c: Tensor) -> Tensor:
        if self.name == "pixel":
            return c
        images = self._images(c)
        if self.name == "dct":   # x = D_H^T C D_W
            x = self.rows.T.to(c.dtype) @ images @ self.columns.to(c.dtype)
        else:
            x = haar_synthesis(images, self.level)
        return x.flatten(-3)

    def analyze(self, x: Tensor) -> Tensor:
        if self.name == "pixel":
            return x
        images = self._images(x)
        if self.name == "dct":   # C = D_H X D_W^T
            c = self.rows.to(x.dtype) @ images @ self.columns.T.to(x.dtype)
        else:
            c = haar_analysis(images, self.level)
        return c.flatten(-3)


def synthesis_matrix(basis: str, shape: tuple[int, int, int], *, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> Tensor:
    """Psi as a dense (n, n) matrix (columns are the atoms), for tests and small problems."""
    channels, height, width = shape
    eye = torch.eye(channels * height * width, dtype=torch.float64)
    return Basis(basis, shape, dtype=torch.float64).synthesize(eye).T.to(dtype=dtype, device=device)
