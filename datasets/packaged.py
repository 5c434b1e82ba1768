"""Data files shipped inside the package (`datasets/<name>/...`, installed as csbench.datasets)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from csbench.errors import CsbenchError

PACKAGED_ROOT = Path(__file__).resolve().parent  # datasets/, installed as csbench.datasets


def packaged_path(dataset: str, filename: str) -> Path:
    return PACKAGED_ROOT / dataset / filename


def packaged_files(dataset: str, filename: str) -> list[Path]:
    """The shipped files a loader of `filename` reads: the file and the dataset's provenance.json."""
    return [path for path in (packaged_path(dataset, filename), packaged_path(dataset, "provenance.json"))
            if path.is_file()]


def load_packaged_npz(dataset: str, filename: str) -> dict[str, np.ndarray]:
    """All arrays of a shipped .npz (read with allow_pickle=False)."""
    path = packaged_path(dataset, filename)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise CsbenchError(f"cannot read packaged data file {path}: {error}") from None


def packaged_provenance(dataset: str) -> dict:
    """The provenance.json written by the dataset's recipe (empty if absent)."""
    path = packaged_path(dataset, "provenance.json")
    return json.loads(path.read_text()) if path.is_file() else {}
