"""`folder:PATH` splits: the automatic 80/10/10 cut, or the user's own train/ validation/ test/."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csbench.datasets import load_dataset
from csbench.errors import CsbenchError


def write(folder: Path, count: int, start: int = 0) -> None:
    """`count` 8x8 grey PNGs whose pixels all equal their number (start, start + 1, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(folder / f"{i:03d}.png")


def numbers(images: torch.Tensor) -> set[int]:
    return {round(float(v) * 255) for v in images[:, 0, 0, 0]}


def test_automatic_split_is_80_10_10_and_fixed(tmp_path):
    write(tmp_path / "all", 80)
    data = load_dataset(f"folder[size=8]:{tmp_path / 'all'}")
    assert [data.size(s) for s in ("train", "validation", "test")] == [64, 8, 8]
    parts = [numbers(data.split(s)) for s in ("train", "validation", "test")]
    assert set.union(*parts) == set(range(80)) and sum(map(len, parts)) == 80
    assert numbers(load_dataset(f"folder[size=8]:{tmp_path / 'all'}").split("test")) == parts[2]
    assert "split 80/10/10" in data.provenance


def test_own_validation_and_test_folders_are_used_as_given(tmp_path):
    root = tmp_path / "mine"
    write(root / "train", 5)
    write(root / "validation", 3, start=100)
    write(root / "test", 4, start=200)
    data = load_dataset(f"folder[size=8]:{root}")
    assert [data.size(s) for s in ("train", "validation", "test")] == [5, 3, 4]
    assert numbers(data.split("validation")) == {100, 101, 102}
    assert numbers(data.split("test", 2)) == {200, 201}  # sorted by file name
    assert "5 train, 3 validation, 4 test" in data.provenance


def test_train_folder_is_optional(tmp_path):
    root = tmp_path / "mine"
    write(root / "validation", 1)
    write(root / "test", 2, start=10)
    data = load_dataset(f"folder[size=8]:{root}")
    assert (data.size("train"), data.split("train").shape) == (0, (0, 1, 8, 8))


@pytest.mark.parametrize("layout, message", [
    ({"test": 2}, "validation holds no PNG/JPEG images"),
    ({"validation": 2, "test": 0}, "test holds no PNG/JPEG images"),
    ({"validation": 2, "test": 2, ".": 1}, "1 image(s) under"),
])
def test_incomplete_split_folders_are_one_error(tmp_path, layout, message):
    root = tmp_path / "mine"
    (root / "test").mkdir(parents=True)
    for sub, count in layout.items():
        write(root / sub, count, start=50 if sub == "." else 0)
    with pytest.raises(CsbenchError, match=re.escape(message)):
        load_dataset(f"folder:{root}")
