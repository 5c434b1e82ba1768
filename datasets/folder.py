"""Images from a user folder: `folder:PATH` or `folder[size=32,channels=1]:PATH`.

Splits: PATH with a `test/` subfolder is split by its subfolders `train/` (optional),
`validation/` and `test/`; any other PATH is cut 80% / 10% / 10% by a fixed seeded permutation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from csbench.datasets.arrays import to_float_images
from csbench.datasets.base import Dataset
from csbench.datasets.splits import check_split, permutation_split, requested_count
from csbench.errors import CsbenchError
from csbench.rng import numpy_generator

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
SPLIT_FRACTIONS = (0.1, 0.1)  # validation, test; train gets the rest (80%)
SPLIT_FOLDERS = ("train", "validation", "test")


def find_images(root: Path) -> list[Path]:
    """All PNG/JPEG files under root, recursively, sorted by their path relative to root."""
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def image_mode(path: Path) -> str:
    try:
        with Image.open(path) as image:
            return image.mode
    except OSError as error:
        raise CsbenchError(f"cannot read image {path}: {error}") from None


def load_square(path: Path, size: int, channels: int) -> np.ndarray:
    """uint8 (C, size, size): EXIF-upright, centre-cropped to a square, Lanczos-resized."""
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
    except OSError as error:
        raise CsbenchError(f"cannot read image {path}: {error}") from None
    square = ImageOps.fit(upright, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    pixels = np.asarray(square, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def split_by_folder(root: Path) -> tuple[list[Path], dict[str, np.ndarray]]:
    """The files of root/train, root/validation, root/test (in that order) and each split's indices."""
    files: list[Path] = []
    indices: dict[str, np.ndarray] = {}
    for split in SPLIT_FOLDERS:
        found = find_images(root / split) if (root / split).is_dir() else []
        if not found and split != "train":
            raise CsbenchError(f"image folder {root} has a test/ subfolder, so its splits are its subfolders, "
                               f"but {root / split} holds no PNG/JPEG images")
        indices[split] = np.arange(len(files), len(files) + len(found))
        files += found
    if stray := len(find_images(root)) - len(files):
        raise CsbenchError(f"{stray} image(s) under {root} lie outside its train/, validation/ and test/ "
                           "subfolders; move them into one (or remove test/ for an automatic 80/10/10 split)")
    return files, indices


class FolderDataset(Dataset):
    """Every PNG/JPEG under a folder (recursively, sorted), as square images in [0, 1].

    Name: `folder:PATH`, or with options `folder[size=32,channels=1]:PATH`.
    size: side in pixels after centre-cropping to a square and Lanczos resizing (default 64).
    channels: 1 (grey) or 3 (RGB); default 1 if every image is greyscale, else 3.
    Splits, one of two layouts:
    - your own: PATH holds `test/`, `validation/` and optionally `train/`; each split is the
      images under its subfolder (validation and test need one image at least), and no image
      may lie elsewhere under PATH;
    - automatic: a fixed seeded permutation of all files, 80% train / 10% validation / 10% test
      (round(10%), at least one image each; needs 3 images), so 8 validation images (the quick
      preset's tuning set) take about 80 images in all.
    Images are decoded when first asked for and kept in memory.
    """

    name = "folder"
    description = ("your own PNG/JPEG images: folder:PATH or folder[size=64,channels=3]:PATH; split by its "
                   "train/ validation/ test/ subfolders when it has test/, else 80/10/10")

    @classmethod
    def sources(cls, path: str, size: int = 64, channels: int | None = None) -> list[Path]:
        root = Path(path).expanduser()
        return find_images(root) if root.is_dir() else []

    def __init__(self, path: str, size: int = 64, channels: int | None = None) -> None:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise CsbenchError(f"image folder not found: {root}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise CsbenchError(f"folder size must be a positive integer, got {size!r}")
        if channels not in (None, 1, 3):
            raise CsbenchError(f"folder channels must be 1 or 3, got {channels!r}")
        own = (root / "test").is_dir()
        self.files, indices = split_by_folder(root) if own else (find_images(root), None)
        if not self.files:
            raise CsbenchError(f"no PNG/JPEG images found under {root}")
        if channels is None:
            channels = 1 if all(image_mode(p) in GRAY_MODES for p in self.files) else 3
        self.shape = (channels, size, size)
        self.indices = indices or permutation_split(len(self.files), SPLIT_FRACTIONS,
                                                    numpy_generator("folder", "split", 0))
        layout = ", ".join(f"{len(self.indices[s])} {s}" for s in SPLIT_FOLDERS) if own else "split 80/10/10"
        self.provenance = f"user folder {root} ({len(self.files)} images, {layout})"
        self._decoded: dict[int, np.ndarray] = {}

    def size(self, which: str) -> int:
        check_split(which)
        return len(self.indices[which])

    def _image(self, index: int) -> np.ndarray:
        if index not in self._decoded:
            self._decoded[index] = load_square(self.files[index], self.shape[1], self.shape[0])
        return self._decoded[index]

    def split(self, which: str, n: int | None = None) -> Tensor:
        count = requested_count(self.name, which, n, self.size(which))
        if count == 0:
            return torch.zeros(0, *self.shape)
        return to_float_images(np.stack([self._image(int(i)) for i in self.indices[which][:count]]))
