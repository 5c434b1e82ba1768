"""The recovery problem handed to a prior: measurements, operator, link, noise level, signal shape.

It carries no ground truth: a prior sees only what a real measurement device would give.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from csbench.measurements.base import LinearOperator


@dataclass
class Problem:
    """A batch of B recovery problems  y_b = f(A_b x_b + e_b),  x_b of shape `shape` = (C, H, W).

    y: (B, m) measurements; operator: the batched A; link: "identity" | "sign" | "abs";
    noise: sigma (E||e||^2 = sigma^2); generator: the prior's own randomness (restarts, inits),
    derived from the task so that results are reproducible.
    """

    y: Tensor
    operator: LinearOperator
    shape: tuple[int, int, int]
    noise: float
    link: str = "identity"
    measurement: str = "gaussian"
    dataset: str = ""
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def select(self, index: int | list[int] | Tensor) -> "Problem":
        """The sub-problem of the instances `index` (same order), e.g. one instance alone:
        y, operator and the rest sliced alike; the generator is a fresh copy of this one's state."""
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        generator = torch.Generator(self.generator.device)
        generator.set_state(self.generator.get_state())
        return replace(self, y=self.y[index.to(self.y.device)], operator=self.operator.select(index.to(self.operator.device)),
                       generator=generator)

    @property
    def batch(self) -> int:
        return self.y.shape[0]

    @property
    def m(self) -> int:
        return self.y.shape[1]

    @property
    def n(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def device(self) -> torch.device:
        return self.y.device
