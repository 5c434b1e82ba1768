"""Datasets, in one folder: the loaders (this package, installed as csbench.datasets), and per
dataset a folder with its shipped data, the recipe that built it and its provenance
(`mnist/`, `fashion-mnist/`).

Registry of datasets: `load_dataset("mnist")`, `load_dataset("random-net[k=20]")`,
`load_dataset("folder:PATH")`, `load_dataset("folder[size=32,channels=1]:PATH")`."""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from csbench.datasets.base import SPLITS, Dataset
from csbench.datasets.fashion_mnist import FashionMNIST
from csbench.datasets.folder import FolderDataset, folder_signature
from csbench.datasets.mnist_digits import MNIST
from csbench.datasets.random_net import RandomNet
from csbench.errors import CsbenchError
from csbench.naming import parse_name

DATASETS: dict[str, type[Dataset]] = {cls.name: cls for cls in (MNIST, FashionMNIST, RandomNet, FolderDataset)}
FOLDER_SPEC = re.compile(r"^folder(\[[^\]]*\])?:(.+)$", re.DOTALL)


def _construct(cls: type[Dataset], spec: str, **params: Any) -> Dataset:
    """cls(**params), with unknown or missing parameters reported as a one-line CsbenchError."""
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as error:
        raise CsbenchError(f"bad parameters for dataset {spec!r}: {error}") from None
    return cls(**params)


def load_dataset(spec: str) -> Dataset:
    folder = FOLDER_SPEC.match(spec.strip())
    if folder:
        _, params = parse_name("folder" + (folder.group(1) or ""), "dataset")
        return _construct(FolderDataset, spec, path=folder.group(2), **params)
    name, params = parse_name(spec, "dataset")
    if name == FolderDataset.name:
        raise CsbenchError(f"dataset {spec!r} needs a folder: folder:PATH or folder[size=64,channels=3]:PATH")
    if name not in DATASETS:
        known = ", ".join(sorted(set(DATASETS) - {FolderDataset.name}))
        raise CsbenchError(f"unknown dataset {spec!r}; known: {known}, folder:PATH")
    return _construct(DATASETS[name], spec, **params)


def dataset_signature(spec: str) -> tuple:
    """What a loaded dataset depends on besides its spec, cheap to read: a `folder:` dataset's image
    files (path, size, mtime). () for the others: a process keeps their images as it first loaded
    them (the shipped files, or IDX files named by the environment)."""
    folder = FOLDER_SPEC.match(spec.strip())
    root = Path(folder.group(2)).expanduser() if folder else None
    return folder_signature(root) if root is not None and root.is_dir() else ()


__all__ = ["DATASETS", "SPLITS", "Dataset", "dataset_signature", "load_dataset"]
