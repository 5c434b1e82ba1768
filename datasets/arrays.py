"""A dataset held in memory as uint8 images (N, C, H, W) per split, with optional class labels."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from csbench.datasets.base import Dataset
from csbench.datasets.splits import check_split, requested_count
from csbench.errors import CsbenchError


def to_float_images(images: np.ndarray) -> Tensor:
    """uint8 (N, C, H, W) -> float32 tensor in [0, 1]: x = k / 255."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)


class ArrayDataset(Dataset):
    """Splits stored as uint8 arrays. Subclasses call `set_splits` from `__init__`.

    A split may be unavailable (e.g. Fashion-MNIST "train" without the full files):
    asking for it raises CsbenchError with `missing_reason`.
    """

    _images: dict[str, np.ndarray]
    _labels: dict[str, np.ndarray]
    missing_reason: str = ""

    def set_splits(self, images: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> None:
        """images[split]: uint8 (N, H, W) or (N, C, H, W); labels[split]: (N,) class indices."""
        self._images = {which: (a[:, None] if a.ndim == 3 else a) for which, a in images.items()}
        self._labels = {which: np.asarray(a, dtype=np.int64) for which, a in labels.items()}

    def _available(self, which: str) -> np.ndarray:
        check_split(which)
        if which not in self._images:
            raise CsbenchError(f"dataset {self.name} has no {which!r} split here: {self.missing_reason}")
        return self._images[which]

    def size(self, which: str) -> int:
        return len(self._available(which))

    def split(self, which: str, n: int | None = None) -> Tensor:
        images = self._available(which)
        return to_float_images(images[: requested_count(self.name, which, n, len(images))])

    def labels(self, which: str, n: int | None = None) -> Tensor:
        """Class labels (int64) of the first n images of a split."""
        images = self._available(which)
        return torch.from_numpy(self._labels[which][: requested_count(self.name, which, n, len(images))])
