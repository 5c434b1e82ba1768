"""Datasets: signals in [0, 1], float32, shape (N, C, H, W), fixed deterministic splits."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from torch import Tensor

SPLITS = ("train", "validation", "test")


class Dataset:
    """A source of signals. `split(name, n)` returns the first n images of a fixed split.

    Priors may use "train" and "validation"; only the runner touches "test".
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    bounded: ClassVar[bool] = True  # every signal value lies in [0, 1] (priors may clip to it)
    shape: tuple[int, int, int]
    provenance: str = ""

    @classmethod
    def sources(cls, **params) -> list[Path]:
        """The files a dataset made with `params` would read (none by default): a process that
        has it loaded loads it afresh when one of them is added, removed or rewritten."""
        return []

    def split(self, which: str, n: int | None = None) -> Tensor:
        raise NotImplementedError

    def size(self, which: str) -> int:
        raise NotImplementedError
