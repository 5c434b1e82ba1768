"""Recipe: build datasets/fashion-mnist/fashion-mnist-subset.npz from the full IDX files.

    apt-get install dataset-fashion-mnist      # IDX files in /usr/share/datasets/fashion-mnist/
    python datasets/fashion-mnist/build.py [--source DIR]

The subset is the first 1,000 images of the full validation split (training images
55,000 ... 55,999) and of the full test split (test images 0 ... 999), uint8 with labels,
so that `fashion-mnist` validation/test work without the Debian package. Writes the
.npz and provenance.json next to this file.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
from pathlib import Path

import numpy as np

from csbench.datasets.fashion_mnist import DEBIAN_DIR, DEBIAN_PACKAGE, SUBSET_FILE, SUBSET_SIZE
from csbench.datasets.idx import IDX_FILES, find_idx, read_standard_splits
from csbench.generative.checkpoints import sha256_of

HERE = Path(__file__).resolve().parent


def debian_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown (not installed via dpkg)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(DEBIAN_DIR), help="directory of the four IDX files")
    args = parser.parse_args()
    images, labels = read_standard_splits(args.source)
    subset = {}
    for which in ("validation", "test"):
        subset[f"{which}_images"] = images[which][:SUBSET_SIZE]
        subset[f"{which}_labels"] = labels[which][:SUBSET_SIZE].astype(np.uint8)
    output = HERE / SUBSET_FILE
    np.savez_compressed(output, **subset)
    files = [find_idx(args.source, stem) for stem in IDX_FILES.values()]
    sources = {path.name: sha256_of(path) for path in files}
    provenance = {
        "dataset": "fashion-mnist",
        "source": f"Debian package {DEBIAN_PACKAGE} {debian_version(DEBIAN_PACKAGE)}, files in {args.source}",
        "source_sha256": sources,
        "license": "MIT (Fashion-MNIST, Copyright (c) 2017 Zalando SE)",
        "data_credit": "Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf, Zalando Research (arXiv 1708.07747)",
        "content": f"first {SUBSET_SIZE} images of the validation split (training images 55000-{55000 + SUBSET_SIZE - 1}) and of the test split (test images 0-{SUBSET_SIZE - 1}), uint8 (N, 28, 28) with labels",
        "output": output.name,
        "output_sha256": sha256_of(output),
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": "datasets/fashion-mnist/build.py",
    }
    (HERE / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {output} ({output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
