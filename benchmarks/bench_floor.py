"""How close the generative tasks of a preset run to what this machine allows: each task's floor,
measured in the same run as the tasks' real step time.

    python benchmarks/bench_floor.py [--images 64] [--m 10,25,...,750] [--steps 20] [--threads 1]

One Adam step of latent optimisation (latent.py) is two dependent phases per restart r and image b:
the decoder, G(z) and J_G(z)^T v, and the data gradient 2 A_b^T (A_b g - y_b). Neither phase can
run faster than its flops at this machine's fp32 matmul rate or than the bytes it must read at its
memory bandwidth, so

    floor per step = rows F_G / P  +  max(rows F_A / P,  bytes_A / W),    rows = R B,

with F_G the decoder's flops per row (bench_recovery.py counts them), F_A = 4 m n (2 n^2 through the
Gram matrix A^T A, which latent.py uses for m > n / 2), bytes_A the per-instance matrices read per
step (A_b twice, or A_b^T A_b once: B n^2 floats), P the best 2048^3 product rate and W the best
read rate of a 400 MB matrix-vector product, both measured here. Elementwise work (softplus, Adam,
the DCGAN's fold) is counted as free, so the floor is a lower bound. The measured step is the CPU
time of `optimise_latent` on the preset's test images, from the difference of two runs (so set-up
and the final decode cancel). A task is `steps` such steps (vae 1000, dcgan 500).

Prints per prior and m the measured and floor milliseconds per step, their ratio, and the preset's
generative task-seconds both ways (the default preset's 300 s on 2 cores leave 600 task-seconds
for all its priors and experiments). Ends with `ratio: X` (floor / measured, all tasks summed).
Run with `--threads 1`, as a preset's workers do, on a quiet machine.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench_recovery import data_flops, dcgan_flops, decoder_flops, matmul_rate
from csbench.config import PAPER_M
from csbench.datasets import load_dataset
from csbench.generative.latent import optimise_latent
from csbench.generative.priors import DCGANPrior, VAEPrior
from csbench.generative.zoo import load_generator
from csbench.runner import Task, make_problem


def read_rate(megabytes: int = 400, repeats: int = 5) -> float:
    """Best bytes per CPU second of a float32 matrix-vector product over a `megabytes` matrix."""
    matrix = torch.randn(megabytes * 2 ** 20 // (4 * 1024), 1024)
    vector = torch.randn(1024)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        matrix @ vector
        best = min(best, time.process_time() - start)
    return matrix.numel() * 4 / best


def data_phase(m: int, n: int, images: int, rows: int) -> tuple[float, float]:
    """(flops, bytes) of one step's data gradient (`data_flops` per row): the Gram matrices read once
    for m > n / 2, as latent.py, else A_b twice."""
    matrix_bytes = images * n * n * 4 if 2 * m > n else 2 * images * m * n * 4
    return rows * data_flops(m, n), matrix_bytes


def step_seconds(decode, problem, settings: dict, steps: int) -> float:
    """CPU seconds per Adam step: (run of 5 + steps) - (run of 5), divided by steps."""
    times = []
    for count in (5, 5 + steps):
        start = time.process_time()
        optimise_latent(decode, problem, steps=count, generator=torch.Generator().manual_seed(0), **settings)
        times.append(time.process_time() - start)
    return (times[1] - times[0]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--m", default=",".join(map(str, PAPER_M)))
    parser.add_argument("--steps", type=int, default=20, help="Adam steps timed per (prior, m)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    x = data.split("test", args.images)
    peak, bandwidth = matmul_rate(), read_rate()
    priors = [(VAEPrior, decoder_flops(load_generator("vae", data).decoder)),
              (DCGANPrior, dcgan_flops(load_generator("dcgan", data)))]
    print(f"fp32 matmul rate {peak / 1e9:.1f} GFLOP/s, read rate {bandwidth / 1e9:.1f} GB/s "
          f"(per CPU second, {args.threads} thread(s)); {args.images} images")
    print(f"{'prior':6s} {'m':>4s} {'measured ms':>12s} {'floor ms':>9s} {'ratio':>6s}   floor: decoder + data")
    totals = {"measured": 0.0, "floor": 0.0}
    for cls, flops_per_row in priors:
        generator = load_generator(cls.model, data)
        params = cls.parameters
        rows = params["restarts"] * args.images
        settings = dict(latent_dim=generator.latent_dim, lr=params["lr"], restarts=params["restarts"],
                        penalty=params["penalty"])
        task_measured = task_floor = 0.0
        for m in map(int, args.m.split(",")):
            problem = make_problem(x, Task("mnist", "gaussian", cls.name, m, 0.1, 0), "test", "cpu")
            measured = step_seconds(generator.decode, problem, settings, args.steps)
            data_flops, data_bytes = data_phase(m, problem.n, args.images, rows)
            decoder = rows * flops_per_row / peak
            data_time = max(data_flops / peak, data_bytes / bandwidth)
            floor = decoder + data_time
            print(f"{cls.name:6s} {m:4d} {measured * 1e3:12.1f} {floor * 1e3:9.1f} {floor / measured:6.2f}"
                  f"   {decoder * 1e3:.1f} + {data_time * 1e3:.1f}")
            task_measured += params["steps"] * measured
            task_floor += params["steps"] * floor
        print(f"{cls.name}: {task_measured:.0f} task-seconds measured, {task_floor:.0f} at the floor "
              f"({params['steps']} steps per task)")
        totals["measured"] += task_measured
        totals["floor"] += task_floor
    print(f"vae + dcgan: {totals['measured']:.0f} task-seconds measured, {totals['floor']:.0f} at the floor; "
          f"2 cores: {totals['floor'] / 2:.0f} s wall at the floor for these two priors alone")
    print(f"ratio: {totals['floor'] / totals['measured']:.2f}")


if __name__ == "__main__":
    main()
