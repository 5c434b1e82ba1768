"""Reader for IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.

Layout: bytes 0-1 zero, byte 2 the element type, byte 3 the number of dimensions d,
then d big-endian uint32 sizes, then the elements in C order, big-endian.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from csbench.errors import CsbenchError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
VALIDATION_SIZE = 5000  # the last 5,000 training images form the validation split
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzip detected from the content, not the name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise CsbenchError(f"cannot read IDX file {path}: {error}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise CsbenchError(f"{path} is not an IDX file (bad header)")
    dtype, ndim = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CsbenchError(f"{path} is truncated (header)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != header + count * dtype.itemsize:
        raise CsbenchError(f"{path} has {len(raw) - header} data bytes, expected {count * dtype.itemsize} for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(directory: Path, stem: str) -> Path:
    """`directory/stem` or `directory/stem.gz`, whichever exists."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise CsbenchError(f"IDX file not found: {directory / stem}[.gz]")


def standard_files(directory: str | Path) -> list[Path]:
    """The standard IDX files that exist in `directory` (plain or .gz)."""
    directory = Path(directory).expanduser()
    candidates = (directory / f"{stem}{suffix}" for stem in IDX_FILES.values() for suffix in ("", ".gz"))
    return [path for path in candidates if path.is_file()]


def read_image_labels(directory: Path, images_stem: str, labels_stem: str, image_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) and labels (N,) from a pair of IDX files, checked to match."""
    images_path, labels_path = find_idx(directory, images_stem), find_idx(directory, labels_stem)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != image_shape:
        raise CsbenchError(f"{images_path} holds {images.dtype} images of shape {images.shape[1:]}, expected uint8 {image_shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise CsbenchError(f"{labels_path} holds {labels.shape} labels for {len(images)} images in {images_path.name}")
    return images, labels


def read_standard_splits(directory: str | Path, image_shape: tuple[int, int] = (28, 28)) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The four standard IDX files of `directory` as (images, labels) per split:
    train = all but the last 5,000 training images, validation = those last 5,000,
    test = the test file."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise CsbenchError(f"IDX directory not found: {directory}")
    train_images, train_labels = read_image_labels(directory, IDX_FILES["train_images"], IDX_FILES["train_labels"], image_shape)
    test_images, test_labels = read_image_labels(directory, IDX_FILES["test_images"], IDX_FILES["test_labels"], image_shape)
    if len(train_images) <= VALIDATION_SIZE:
        raise CsbenchError(f"{directory}: training file has {len(train_images)} images, need more than {VALIDATION_SIZE}")
    cut = len(train_images) - VALIDATION_SIZE
    images = {"train": train_images[:cut], "validation": train_images[cut:], "test": test_images}
    labels = {"train": train_labels[:cut], "validation": train_labels[cut:], "test": test_labels}
    return images, labels
