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
             as one matrix product (the columns) and a butterfly of row pairs per level
             (`haar_analysis`).
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
def _haar_columns_float64(size: int) -> Tensor:
    """M = W^T / sqrt 2 (size x size, size even), W = [L; H] one orthonormal Haar level,
    (L v)_i = (v_2i + v_2i+1) / sqrt 2, (H v)_i = (v_2i - v_2i+1) / sqrt 2: entries 0 and +-1/2."""
    m = torch.zeros(size, size, dtype=torch.float64)
    half = torch.arange(size // 2)
    m[2 * half, half] = m[2 * half + 1, half] = m[2 * half, size // 2 + half] = 0.5
    m[2 * half + 1, size // 2 + half] = -0.5
    return m


def _haar_columns(size: int, like: Tensor) -> Tensor:
    return _haar_columns_float64(size).to(dtype=like.dtype, device=like.device)


def haar_analysis(x: Tensor, level: int) -> Tensor:
    """Haar coefficients of images (..., H, W), `level` levels, PyWavelets' layout: each level
    maps the current approximation block X (h x w) to W_h X W_w^T, whose quadrants are the next
    approximation and the horizontal, vertical and diagonal details. Computed as R T, T = X M:
    one product with M = W_w^T / sqrt 2 (the columns), then the row butterfly R = sqrt 2 W_h,
    (R T)_top,i = T_2i + T_2i+1, (R T)_bottom,i = T_2i - T_2i+1, written straight into the
    quadrants (the approximation into its own tensor, the next level's input). No clone or copy
    of blocks, and half the flops of W_h X W_w^T as two products."""
    height, width = x.shape[-2:]
    if level == 0:
        return x.clone()
    images = x.reshape(-1, height, width)
    out = images.new_empty(images.shape)
    block = images
    for k in range(level):
        mixed = block @ _haar_columns(width, x)
        even, odd = mixed[:, 0::2], mixed[:, 1::2]
        height, width = height // 2, width // 2
        block = torch.add(even[..., :width], odd[..., :width],
                          out=out[:, :height, :width] if k == level - 1 else None)
        torch.add(even[..., width:], odd[..., width:], out=out[:, :height, width:2 * width])
        torch.sub(even, odd, out=out[:, height:2 * height, :2 * width])
    return out.reshape(x.shape)


def haar_synthesis(c: Tensor, level: int) -> Tensor:
    """Inverse of `haar_analysis` (its transpose), images (..., H, W): from the coarsest level,
    each level maps the block Q = [[A, B], [C, D]] (h x w; A the approximation the coarser levels
    gave, B, C, D the details) to W_h^T Q W_w = (R^T Q) M^T, the row butterfly
    R^T Q = rows 2i: [A + C, B + D]_i, rows 2i+1: [A - C, B - D]_i, then one product."""
    height, width = c.shape[-2:]
    if level == 0:
        return c.clone()
    coefficients = c.reshape(-1, height, width)
    height, width = height >> level, width >> level        # the coarsest approximation block
    block = coefficients[:, :height, :width]
    for _ in range(level):
        rows = coefficients.new_empty(coefficients.shape[0], 2 * height, 2 * width)
        even, odd = rows[:, 0::2], rows[:, 1::2]
        top_right = coefficients[:, :height, width:2 * width]
        bottom_left = coefficients[:, height:2 * height, :width]
        bottom_right = coefficients[:, height:2 * height, width:2 * width]
        torch.add(block, bottom_left, out=even[..., :width])
        torch.sub(block, bottom_left, out=odd[..., :width])
        torch.add(top_right, bottom_right, out=even[..., width:])
        torch.sub(top_right, bottom_right, out=odd[..., width:])
        height, width = 2 * height, 2 * width
        block = rows @ _haar_columns(width, c).T
    return block.reshape(c.shape)


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
