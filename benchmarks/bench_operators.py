"""Time and memory of the fast `subsampled-dct` operator against the dense `gaussian` reference.

For each signal size (MNIST n = 784, CelebA-like n = 64*64*3) and the same batch and m, prints
the seconds to draw the operator, the seconds of one forward + adjoint pass over the batch
(median of repeats), and the bytes the operator stores, with ratios gaussian / subsampled-dct
measured in the same run.

    python benchmarks/bench_operators.py [--batch 4] [--m-fraction 0.125] [--repeats 5] [--threads T]

On a loaded machine, multi-threaded small FFTs can wait for threads; --threads 1 compares
both operators on one core.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from csbench.measurements import get_measurement
from csbench.measurements.base import LinearOperator

SHAPES = {"mnist 1x28x28": (1, 28, 28), "rgb 3x64x64": (3, 64, 64)}
REFERENCE, CANDIDATE = "gaussian", "subsampled-dct"


def stored_bytes(operator: LinearOperator) -> int:
    return sum(v.numel() * v.element_size() for v in vars(operator).values() if isinstance(v, torch.Tensor))


def measure(name: str, shape: tuple[int, int, int], m: int, batch: int, repeats: int) -> dict[str, float]:
    model = get_measurement(name)
    start = time.perf_counter()
    operator = model.operator(m, shape, batch, torch.Generator().manual_seed(0))
    build_s = time.perf_counter() - start
    x = torch.rand(batch, operator.n, generator=torch.Generator().manual_seed(1))
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        operator.adjoint(operator.forward(x))
        passes.append(time.perf_counter() - start)
    return {"build_s": build_s, "apply_s": statistics.median(passes), "bytes": stored_bytes(operator)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--m-fraction", type=float, default=0.125)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"reference: {REFERENCE} (dense B x m x n); batch {args.batch}, m = {args.m_fraction:g} n, "
          f"{torch.get_num_threads()} threads")
    header = f"{'signal':>14} {'n':>6} {'m':>5} {'operator':>15} {'build s':>9} {'A, A^T s':>9} {'MiB':>9}"
    print(header)
    for label, shape in SHAPES.items():
        n = shape[0] * shape[1] * shape[2]
        m = max(1, round(args.m_fraction * n))
        rows = {name: measure(name, shape, m, args.batch, args.repeats) for name in (REFERENCE, CANDIDATE)}
        for name, row in rows.items():
            print(f"{label:>14} {n:>6} {m:>5} {name:>15} {row['build_s']:>9.4f} {row['apply_s']:>9.5f} "
                  f"{row['bytes'] / 2 ** 20:>9.3f}")
        ref, fast = rows[REFERENCE], rows[CANDIDATE]
        print(f"{'':>14} ratio {REFERENCE}/{CANDIDATE}: build x{ref['build_s'] / fast['build_s']:.1f}, "
              f"apply x{ref['apply_s'] / fast['apply_s']:.1f}, memory x{ref['bytes'] / fast['bytes']:.0f}")


if __name__ == "__main__":
    main()
