"""Registry of datasets: `load_dataset("mnist")`, `load_dataset("random-net[k=20]")`, `load_dataset("folder:PATH")`."""
from __future__ import annotations

from csbench.data.base import SPLITS, Dataset
from csbench.errors import CsbenchError
from csbench.naming import parse_name

DATASETS: dict[str, type[Dataset]] = {}


def load_dataset(spec: str) -> Dataset:
    name, params = parse_name(spec, "dataset")
    if name not in DATASETS:
        raise CsbenchError(f"unknown dataset {spec!r}; known: {', '.join(sorted(DATASETS))}, folder:PATH")
    return DATASETS[name](**params)


__all__ = ["DATASETS", "SPLITS", "Dataset", "load_dataset"]
