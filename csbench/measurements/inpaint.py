"""Inpainting: observe some pixels (all channels of each kept pixel), y = x[kept] + e.

`inpaint` keeps a random set of pixels per instance; `inpaint-block` removes a central square
(Bora et al.'s inpainting), the same for every instance. Both snap m to a multiple of C.
"""
from __future__ import annotations

import torch

from csbench.measurements.base import MeasurementModel
from csbench.measurements.selection import SelectionOperator, check_m, random_subsets


def _all_channels(pixels: torch.Tensor, channels: int, plane: int) -> torch.Tensor:
    """Flattened (C, H, W) indices of every channel of the pixel positions `pixels` (B, k)."""
    offsets = torch.arange(channels, device=pixels.device) * plane
    return (offsets[None, :, None] + pixels[:, None, :]).flatten(1)


class Inpaint(MeasurementModel):
    name = "inpaint"
    description = "keep m random pixels per instance (random-mask inpainting), y = x[mask] + e"

    def effective_m(self, m, shape):
        c, h, w = shape
        return c * min(max(round(m / c), 1), h * w)

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> SelectionOperator:
        check_m(m, self.name)
        c, h, w = shape
        kept = self.effective_m(m, shape) // c
        pixels = random_subsets(batch, h * w, kept, generator)
        return SelectionOperator(_all_channels(pixels, c, h * w), c * h * w)


class InpaintBlock(MeasurementModel):
    name = "inpaint-block"
    description = "remove a central s x s square (s chosen so about m pixels stay), y = x[outside] + e"

    @staticmethod
    def block_side(m: int, shape: tuple[int, int, int]) -> int:
        """Side s of the removed square whose C (H W - s^2) kept values are nearest m (ties: smaller s)."""
        c, h, w = shape
        return min(range(min(h, w) + 1), key=lambda s: (abs(c * (h * w - s * s) - m), s))

    def effective_m(self, m, shape):
        c, h, w = shape
        s = self.block_side(m, shape)
        return c * (h * w - s * s)

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> SelectionOperator:
        check_m(m, self.name)
        c, h, w = shape
        s = self.block_side(m, shape)
        top, left = (h - s) // 2, (w - s) // 2
        keep = torch.ones(h, w, dtype=torch.bool)
        keep[top:top + s, left:left + s] = False
        pixels = keep.flatten().nonzero().squeeze(1)
        indices = _all_channels(pixels[None], c, h * w).expand(batch, -1)
        return SelectionOperator(indices.to(generator.device), c * h * w)
