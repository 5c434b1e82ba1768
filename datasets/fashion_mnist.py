"""Fashion-MNIST (Zalando Research), 28x28 grey clothing images, values k/255 in [0, 1].

Full data from the standard IDX files, looked up in `fashion-mnist[path=DIR]`, then
CSBENCH_FASHION_MNIST_DIR, then the Debian package's /usr/share/datasets/fashion-mnist/:
train = first 55,000 training images, validation = last 5,000, test = the 10,000 test
images. Without them, the shipped subset (datasets/fashion-mnist/) gives the first 1,000
images of validation and of test, identical to the full splits; "train" is then unavailable.
"""
from __future__ import annotations

import os
from pathlib import Path

from csbench.datasets.arrays import ArrayDataset
from csbench.datasets.idx import read_standard_splits, standard_files
from csbench.datasets.packaged import load_packaged_npz, packaged_files, packaged_provenance

ENV_DIR = "CSBENCH_FASHION_MNIST_DIR"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
SUBSET_FILE = "fashion-mnist-subset.npz"
SUBSET_SIZE = 1000


def full_data_directory(path: str | None) -> str | None:
    """Where the full IDX files are: the explicit path, the environment variable, or the Debian directory."""
    if path or os.environ.get(ENV_DIR):
        return path or os.environ[ENV_DIR]
    return DEBIAN_DIR if Path(DEBIAN_DIR).is_dir() else None


class FashionMNIST(ArrayDataset):
    """Fashion-MNIST, (1, 28, 28) in [0, 1]; `labels(which, n)` gives the 10 clothing classes."""

    name = "fashion-mnist"
    description = "Fashion-MNIST 28x28 (full from Debian dataset-fashion-mnist / IDX files; 1,000+1,000 shipped)"
    shape = (1, 28, 28)
    missing_reason = f"install the Debian package {DEBIAN_PACKAGE} or set {ENV_DIR} to the directory of the IDX files"

    @classmethod
    def sources(cls, path: str | None = None) -> list[Path]:
        directory = full_data_directory(path)
        return standard_files(directory) if directory else packaged_files("fashion-mnist", SUBSET_FILE)

    def __init__(self, path: str | None = None) -> None:
        directory = full_data_directory(path)
        if directory:
            self.set_splits(*read_standard_splits(directory))
            self.provenance = f"Fashion-MNIST IDX files in {directory} (Zalando Research, MIT)"
            return
        arrays = load_packaged_npz("fashion-mnist", SUBSET_FILE)
        splits = ("validation", "test")
        self.set_splits({w: arrays[f"{w}_images"] for w in splits}, {w: arrays[f"{w}_labels"] for w in splits})
        source = packaged_provenance("fashion-mnist")
        self.provenance = f"shipped subset of {source.get('source', DEBIAN_PACKAGE)}; {source.get('license', 'MIT, Zalando SE')}"
