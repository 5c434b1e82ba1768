"""One lasso-wavelet and one lasso-dct task on 64 x 64 RGB images (n = 12,288) with
`subsampled-dct` measurements, m = 2000, 8 test images (tuning on the default validation images
included), as `compare --dataset folder[size=64,channels=3]:DIR --measurement subsampled-dct`
runs it. The images are smooth random colour fields written to a temporary folder.

Reference, measured in the same run: one synthesis product Psi c on the 8 images with the
dense n x n basis the baselines used to build (its memory is printed too) against the fast
transform. Each task's process CPU time is printed next to its wall time (on a shared machine
the wall time depends on the load). Ends with `seconds: X`, the slower of the two tasks.
    python benchmarks/bench_large_images.py [--images 200] [--m 2000] [--threads T]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from csbench.baselines.transforms import Basis
from csbench.config import RunConfig
from csbench.runner import Task, run_task

SHAPE = (3, 64, 64)


def write_images(folder: Path, count: int, seed: int = 0) -> None:
    """Smooth colour fields: a few random low-frequency cosines per channel, in [0, 255]."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, np.pi, SHAPE[1])
    for i in range(count):
        image = np.zeros((SHAPE[1], SHAPE[2], 3))
        for channel in range(3):
            for _ in range(4):
                fy, fx = rng.integers(0, 6, size=2)
                image[..., channel] += rng.normal() * np.outer(np.cos(fy * grid), np.cos(fx * grid))
        image = (image - image.min()) / (np.ptp(image) + 1e-9)
        Image.fromarray((255 * image).astype(np.uint8)).save(folder / f"{i:03d}.png")


def dense_vs_fast(basis: str, batch: int) -> tuple[float, float]:
    """Seconds of Psi c with a dense n x n Psi and with the fast transform."""
    fast = Basis(basis, SHAPE)
    n = SHAPE[0] * SHAPE[1] * SHAPE[2]
    c = torch.randn(batch, n, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    dense = fast.synthesize(torch.eye(n)).T.contiguous()  # what the baselines built before
    build = time.perf_counter() - start
    start = time.perf_counter()
    product = c @ dense.T
    dense_seconds = time.perf_counter() - start
    start = time.perf_counter()
    expected = fast.synthesize(c)
    fast_seconds = time.perf_counter() - start
    assert torch.allclose(product, expected, atol=1e-4)
    print(f"  {basis}: dense basis {dense.numel() * 4 / 2 ** 20:.0f} MiB, built in {build:.1f} s")
    return dense_seconds, fast_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--m", type=int, default=2000)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = RunConfig(n_images=8, executor="serial", workers=1, quiet=True)
    slowest = 0.0
    with tempfile.TemporaryDirectory() as root:
        write_images(Path(root), args.images)
        dataset = f"folder[size=64,channels=3]:{root}"
        print(f"{dataset}, subsampled-dct, m = {args.m}, {config.n_images} test + "
              f"{config.n_validation} validation images, {torch.get_num_threads()} threads")
        for prior in ("lasso-wavelet", "lasso-dct"):
            start = os.times()
            result = run_task(Task(dataset, "subsampled-dct", prior, args.m, 0.1, 0), config)
            cpu = sum(os.times()[:2]) - sum(start[:2])
            if result.status != "ok":
                raise SystemExit(f"{prior}: {result.rows[0]['error']}")
            mse = np.mean([row["mse"] for row in result.rows])
            print(f"{prior}: {result.status}, {result.seconds:.1f} s for the task (tuning included, "
                  f"{cpu:.1f} s CPU), "
                  f"mean MSE {mse:.4g}, params {result.rows[0]['params']}")
            dense, fast = dense_vs_fast(prior.split("-")[1], config.n_images)
            print(f"  one product Psi c on {config.n_images} images: dense {dense * 1e3:.1f} ms, "
                  f"fast {fast * 1e3:.2f} ms, ratio {dense / fast:.0f}x")
            slowest = max(slowest, result.seconds)
    print(f"seconds: {slowest:.1f}")


if __name__ == "__main__":
    main()
