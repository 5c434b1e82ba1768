"""Orthonormal synthesis bases Psi for images of shape (C, H, W):  x = Psi c,  c = Psi^T x.

Each basis is a dense n x n matrix (n = C H W, columns are the atoms), built once per
(basis, shape) and cached; applying it is one matmul for the whole batch. Transforms act
on each channel separately. Bases:

- "pixel":   Psi = I.
- "dct":     the 2-D orthonormal DCT-II; Psi = the inverse DCT (scipy.fft.idctn, norm="ortho").
- "wavelet": orthonormal Haar wavelets (PyWavelets "haar" = "db1", mode "periodization") at
             the deepest level at which both H and W stay even, so the transform is
             orthogonal (28 x 28 -> level 2, 64 x 64 -> level 6).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
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


def _haar_analysis(image: np.ndarray, level: int) -> np.ndarray:
    """Haar coefficients of one (H, W) image, flattened (PyWavelets' coefficient layout)."""
    if level == 0:
        return image.ravel()
    coeffs = pywt.wavedec2(image, "haar", mode="periodization", level=level)
    return pywt.coeffs_to_array(coeffs)[0].ravel()


def _channel_synthesis(basis: str, height: int, width: int) -> np.ndarray:
    """Psi for one channel, (H W) x (H W), float64."""
    size = height * width
    eye = np.eye(size)
    if basis == "pixel":
        return eye
    if basis == "dct":
        atoms = scipy.fft.idctn(eye.reshape(size, height, width), axes=(1, 2), norm="ortho")
        return atoms.reshape(size, size).T
    if basis == "wavelet":
        level = haar_level(height, width)
        analysis = np.stack([_haar_analysis(e.reshape(height, width), level) for e in eye], axis=1)
        return analysis.T
    raise CsbenchError(f"unknown basis {basis!r}; known: {', '.join(BASES)}")


@lru_cache(maxsize=16)
def _synthesis_float64(basis: str, shape: tuple[int, int, int]) -> Tensor:
    channels, height, width = shape
    block = torch.from_numpy(_channel_synthesis(basis, height, width))
    return torch.block_diag(*[block] * channels)


def synthesis_matrix(basis: str, shape: tuple[int, int, int], *, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> Tensor:
    """Psi of shape (n, n), orthonormal (Psi^T Psi = I), for images of `shape` = (C, H, W)."""
    return _synthesis_float64(basis, tuple(shape)).to(dtype=dtype, device=device)


class Basis:
    """A basis applied to flattened batches (B, n):  synthesize(c) = Psi c,  analyze(x) = Psi^T x."""

    def __init__(self, name: str, shape: tuple[int, int, int], *, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu"):
        self.name, self.shape = name, tuple(shape)
        self.matrix = None if name == "pixel" else synthesis_matrix(name, shape, dtype=dtype, device=device)

    def synthesize(self, c: Tensor) -> Tensor:
        return c if self.matrix is None else c @ self.matrix.T

    def analyze(self, x: Tensor) -> Tensor:
        return x if self.matrix is None else x @ self.matrix
