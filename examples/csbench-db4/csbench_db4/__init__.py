"""Lasso in the orthonormal Daubechies-4 wavelet basis, as a csbench prior:

    c_hat = argmin_c 1/2 ||y - A W^T c||^2 + lam ||c||_1,     x_hat = clip(W^T c_hat, 0, 1),

W the 2-D db4 transform of PyWavelets in periodization mode, which is orthonormal when every
level halves an even side (W^T = W^-1), solved by FISTA for all B instances at once.
"""
from __future__ import annotations

import numpy as np
import pywt
import torch
from torch import Tensor

from csbench import Prior, Problem


class Wavelet:
    """The orthonormal 2-D db4 transform of flattened (B, n) images of shape (C, H, W); the
    coefficients of each level fill the image's layout (PyWavelets' coeffs_to_array)."""

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape
        self.level = 0
        while (self.level < pywt.dwt_max_level(min(shape[1:]), "db4")
               and all(s % 2 ** (self.level + 1) == 0 for s in shape[1:])):
            self.level += 1
        if self.level == 0:
            raise ValueError(f"images of shape {shape} are too small or odd-sized for a db4 transform")
        zeros = pywt.wavedec2(np.zeros(shape[1:]), "db4", mode="periodization", level=self.level)
        approximation, *details = pywt.coeffs_to_array(zeros)[1]
        self.blocks = [approximation] + [level[key] for level in details for key in ("da", "ad", "dd")]

    def analysis(self, x: Tensor) -> Tensor:
        """Coefficients c = W x, (B, n) -> (B, n)."""
        images = x.detach().cpu().numpy().reshape(-1, *self.shape)
        approximation, *details = pywt.wavedec2(images, "db4", mode="periodization", level=self.level,
                                                axes=(-2, -1))
        array = np.empty_like(images)
        for block, part in zip(self.blocks, [approximation, *(d for level in details for d in level)]):
            array[(..., *block)] = part
        return torch.from_numpy(array.reshape(x.shape[0], -1)).to(x.device, x.dtype)

    def synthesis(self, c: Tensor) -> Tensor:
        """Images x = W^T c, (B, n) -> (B, n)."""
        array = c.detach().cpu().numpy().reshape(-1, *self.shape)
        parts = [array[(..., *block)] for block in self.blocks]
        coefficients = [parts[0]] + [tuple(parts[i:i + 3]) for i in range(1, len(parts), 3)]
        images = pywt.waverec2(coefficients, "db4", mode="periodization", axes=(-2, -1))
        return torch.from_numpy(np.ascontiguousarray(images).reshape(c.shape[0], -1)).to(c.device, c.dtype)


class LassoDB4(Prior):
    name = "lasso-db4"
    kind = "sparsity"
    description = "Lasso in the orthonormal Daubechies-4 wavelet basis (PyWavelets), FISTA"
    parameters = {"lam": 0.1, "steps": 300}
    tuning = {"lam": [1e-4, 1e-3, 0.01, 0.1, 1.0]}  # csbench picks one per (m, sigma) on validation images

    def recover(self, problem: Problem) -> Tensor:
        A, y = problem.operator, problem.y  # forward/adjoint act on flattened (B, n) signals
        if y.shape != (problem.batch, A.m):
            raise ValueError(f"y has shape {tuple(y.shape)}, the operator expects ({problem.batch}, {A.m})")
        wavelet = Wavelet(problem.shape)
        step = (1.0 / A.norm_squared())[:, None]  # 1 / ||A W^T||^2 = 1 / ||A||^2: W is orthonormal
        threshold = step * float(self.params["lam"])
        c = z = torch.zeros(problem.batch, problem.n, dtype=y.dtype, device=y.device)
        t = 1.0
        for _ in range(int(self.params["steps"])):
            gradient = wavelet.analysis(A.adjoint(A.forward(wavelet.synthesis(z)) - y))
            update = z - step * gradient
            c_next = update.sign() * (update.abs() - threshold).clamp_min(0)
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            z = c_next + ((t - 1) / t_next) * (c_next - c)
            c, t = c_next, t_next
        return wavelet.synthesis(c).reshape(problem.batch, *problem.shape).clamp(0, 1)
