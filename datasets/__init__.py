"""Datasets, in one folder: the loaders (this package, installed as csbench.datasets), and per
dataset a folder with its shipped data, the recipe that built it and its provenance
(`mnist/`, `fashion-mnist/`).

Registry of datasets: `load_dataset("mnist")`, `load_dataset("random-net[k=20]")`,
`load_dataset("folder:PATH")`, `load_dataset("folder[size=32,channels=1]:PATH")`."""
from __future__ import annotations

import inspect
import re
from typing import Any

from csbench.datasets.base import SPLITS, Dataset
from csbench.datasets.fashion_mnist import FashionMNIST
from csbench.datasets.folder import FolderDataset
from csbench.datasets.mnist_digits import MNIST
from csbench.datasets.random_net import RandomNet
from csbench.errors import CsbenchError
from csbench.naming import parse_name

DATASETS: dict[str, type[Dataset]] = {cls.name: cls for cls in (MNIST, FashionMNIST, RandomNet, FolderDataset)}
FOLDER_SPEC = re.compile(r"^folder(\[[^\]]*\])?:(.+)$", re.DOTALL)


def _resolve(spec: str) -> tuple[type[Dataset], dict[str, Any]]:
    """The dataset class and the parameters that `spec` names, checked to fit its constructor
    (unknown or missing ones are a one-line CsbenchError)."""
    folder = FOLDER_SPEC.match(spec.strip())
    if folder:
        _, params = parse_name("folder" + (folder.group(1) or ""), "dataset")
        cls, params = FolderDataset, {"path": folder.group(2), **params}
    else:
        name, params = parse_name(spec, "dataset")
        if name == FolderDataset.name:
            raise CsbenchError(f"dataset {spec!r} needs a folder: folder:PATH or folder[size=64,channels=3]:PATH")
        if name not in DATASETS:
            known = ", ".join(sorted(set(DATASETS) - {FolderDataset.name}))
            raise CsbenchError(f"unknown dataset {spec!r}; known: {known}, folder:PATH")
        cls = DATASETS[name]
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as error:
        raise CsbenchError(f"bad parameters for dataset {spec!r}: {error}") from None
    return cls, params


def load_dataset(spec: str) -> Dataset:
    cls, params = _resolve(spec)
    return cls(**params)


def dataset_signature(spec: str) -> tuple:
    """What a loaded dataset depends on besides its spec, cheap to read: (path, size, modification
    time in ns) of each file it reads (`Dataset.sources`: shipped .npz, IDX files found through
    `path=` or the environment, a folder's images). () for a spec that does not resolve: loading
    it raises the error."""
    try:
        cls, params = _resolve(spec)
    except CsbenchError:
        return ()
    stats = ((path, path.stat()) for path in cls.sources(**params))
    return tuple((str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats)


__all__ = ["DATASETS", "SPLITS", "Dataset", "dataset_signature", "load_dataset"]
