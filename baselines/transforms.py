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
             by reshapes and strided sums: O(n) flops per level.
"""
from __future__ import annotations

from functools import lru_cache

import scipy.fft
import torch
from torch import Tensor

from csbench.errors import CsbenchError

BASES = ("pixel", "dct", "wavelet")


def haar_level(height: int, width: int) -> int:
    """The number of Haar levels for which every level sees an even height and width."""
    level = 0
    while height % 2 == 0 and width % 2 == 0 and height > 1 and width > 1:
        height, width, level = height // 2, width // 2, level + 1
    return level


def _haar_split(x: Tensor) -> Tensor:
    """One Haar analysis level of (..., 2h, 2w) -> quadrants (..., 2h, 2w), layout above."""
    *lead, height, width = x.shape
    blocks = x.reshape(*lead, height // 2, 2, width // 2, 2)
    top, bottom = blocks[..., 0, :, :], blocks[..., 1, :, :]           # (..., h, w, 2)
    row_sum, row_diff = top + bottom, top - bottom                     # a+c, b+d | a-c, b-d
    approx = (row_sum[..., 0] + row_sum[..., 1]) / 2
    horizontal = (row_sum[..., 0] - row_sum[..., 1]) / 2
    vertical = (row_diff[..., 0] + row_diff[..., 1]) / 2
    diagonal = (row_diff[..., 0] - row_diff[..., 1]) / 2
    upper = torch.stack([approx, horizontal], dim=-2)                  # (..., h, 2, w)
    lower = torch.stack([vertical, diagonal], dim=-2)
    return torch.stack([upper, lower], dim=-4).reshape(x.shape)


def _haar_merge(q: Tensor) -> Tensor:
    """Inverse of `_haar_split` (its transpose: the level is orthogonal)."""
    *lead, height, width = q.shape
    quadrants = q.reshape(*lead, 2, height // 2, 2, width // 2)
    approx, horizontal = quadrants[..., 0, :, 0, :], quadrants[..., 0, :, 1, :]
    vertical, diagonal = quadrants[..., 1, :, 0, :], quadrants[..., 1, :, 1, :]
    left_sum, right_sum = approx + horizontal, approx - horizontal     # a+c, b+d
    left_diff, right_diff = vertical + diagonal, vertical - diagonal   # a-c, b-d
    top = torch.stack([left_sum + left_diff, right_sum + right_diff], dim=-1) / 2
    bottom = torch.stack([left_sum - left_diff, right_sum - right_diff], dim=-1) / 2
    return torch.stack([top, bottom], dim=-3).reshape(q.shape)


def haar_analysis(x: Tensor, level: int) -> Tensor:
    """Haar coefficients of images (..., H, W), `level` levels, PyWavelets' layout."""
    out = x.clone()
    height, width = x.shape[-2:]
    for _ in range(level):
        out[..., :height, :width] = _haar_split(out[..., :height, :width])
        height, width = height // 2, width // 2
    return out


def haar_synthesis(c: Tensor, level: int) -> Tensor:
    """Inverse of `haar_analysis`: images (..., H, W) from their coefficients."""
    out = c.clone()
    height, width = (size >> max(level - 1, 0) for size in c.shape[-2:])  # the coarsest split block
    for _ in range(level):
        out[..., :height, :width] = _haar_merge(out[..., :height, :width])
        height, width = height * 2, width * 2
    return out


@lru_cache(maxsize=32)
def _dct_matrix_float64(size: int) -> Tensor:
    """The orthonormal DCT-II matrix D (size x size):  D x = scipy.fft.dct(x, norm="ortho")."""
    return torch.from_numpy(scipy.fft.dct(torch.eye(size, dtype=torch.float64).numpy(), axis=0,
                                          norm="ortho"))


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
            self.rows = _dct_matrix_float64(height).to(dtype=dtype, device=device)
            self.columns = _dct_matrix_float64(width).to(dtype=dtype, device=device)

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
