"""How close the default preset's tasks run to what this machine allows: each task's floor,
measured in the same run as the tasks' real time.

    python benchmarks/bench_floor.py [--priors vae,dcgan,lasso-pixel,lasso-dct,lasso-wavelet,tv]
                                     [--images 64] [--m 10,25,...,750] [--steps 20] [--threads 1]

Generative priors (vae, dcgan). One Adam step of latent optimisation (latent.py) is two dependent
phases per restart r and image b: the decoder, G(z) and J_G(z)^T v, and the data gradient
2 A_b^T (A_b g - y_b). Neither phase can run faster than its flops at this machine's fp32 matmul rate
or than the bytes it must read at its memory bandwidth, so

    floor per step = rows F_G / P  +  max(rows F_A / P,  bytes_A / W),    rows = R B,

with F_G the decoder's flops per row (bench_recovery.py counts them), F_A = 4 m n (2 n^2 through the
Gram matrix A^T A, which latent.py uses for m > n / 2), bytes_A the per-instance matrices read per
step (A_b twice, or A_b^T A_b once: B n^2 floats), P the best 2048^3 product rate and W the best
read rate of a 400 MB matrix-vector product, both measured here. Elementwise work (softplus, Adam,
the DCGAN's fold) is counted as free. The measured step is the CPU time of `optimise_latent` on the
preset's test images, from the difference of two runs (so set-up and the final decode cancel). A
task is `steps` such steps (vae 1000, dcgan 500; no tuning grid): task-seconds = steps x per step.

Sparsity priors (lasso-pixel, lasso-dct, lasso-wavelet, tv). The task runs for real, as a preset's
worker runs it (`runner.run_task`: the tuning grid's G values of lam in one batched solve on the
preset's validation images, then the test images at the chosen lam, then scoring), timed in CPU
seconds. Its products with the per-instance matrices are counted as they run: the solvers' (FISTA
with continuation, Chambolle-Pock) through `common.dense_maps`, with M_b = A_b Psi (A_b for tv), and
the operator's own (`DenseOperator`: ||A_b||^2 by 50 power iterations per problem, y = A x). A call
on r vectors per instance (the lam values still iterating: up to G while tuning) reads every M_b of
its chunk once and does 2 r m n flops per instance, so

    floor of a task = sum over calls of max(2 r m n B_chunk / P,  4 m n B_chunk / W')     (float32),

W' = W_cache, the best read rate of a CACHE_BYTES matrix, for the cache-sized chunks the solvers and
power iterations loop over (read from cache; at W, from memory, the floor exceeded the measured time
at m = 500), W for larger ones. Not counted, as free: forming M_b (a fast transform of A_b's rows),
soft-thresholding, TV's differences and projections, duality gaps, scoring.

Prints per prior and m the measured and floor time (ms per step, or task-seconds), their ratio, each
prior's task-seconds both ways, and the default preset's floor: the priors' floor task-seconds over
the m grid, and that divided by the cores a preset run keeps busy (one single-threaded worker per
core, os.cpu_count()). The preset's theory experiments are not counted: a lower bound of its
time. Ends with `ratio: X` (floor / measured, all tasks run). Run with `--threads 1`, as a
preset's workers do, on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import torch
from torch import Tensor

from bench_recovery import data_flops, dcgan_flops, decoder_flops, matmul_rate
from csbench.baselines import common
from csbench.config import make_config
from csbench.datasets import load_dataset
from csbench.generative.latent import optimise_latent
from csbench.generative.priors import DCGANPrior, VAEPrior
from csbench.generative.zoo import load_generator
from csbench.measurements.base import CACHE_BYTES, DenseOperator
from csbench.runner import Task, make_problem, run_task

GENERATIVE = {"vae": (VAEPrior, lambda generator: decoder_flops(generator.decoder)),
              "dcgan": (DCGANPrior, dcgan_flops)}
SPARSITY = ("lasso-pixel", "lasso-dct", "lasso-wavelet", "tv")


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


def generative_floors(names: list[str], ms: list[int], images: int, steps: int, peak: float,
                      bandwidth: float) -> dict[str, tuple[float, float]]:
    """{prior: (measured, floor task-seconds over `ms`)} from the per-step floor, printing per m."""
    data = load_dataset("mnist")
    x = data.split("test", images)
    print(f"{'prior':6s} {'m':>4s} {'measured ms':>12s} {'floor ms':>9s} {'ratio':>6s}   floor: decoder + data")
    out = {}
    for name in names:
        cls, count_flops = GENERATIVE[name]
        generator = load_generator(cls.model, data)
        params = cls.parameters
        rows = params["restarts"] * images
        settings = dict(latent_dim=generator.latent_dim, lr=params["lr"], restarts=params["restarts"],
                        penalty=params["penalty"])
        task_measured = task_floor = 0.0
        for m in ms:
            problem = make_problem(x, Task("mnist", "gaussian", name, m, 0.1, 0), "test", "cpu")
            measured = step_seconds(generator.decode, problem, settings, steps)
            flops, matrix_bytes = data_phase(m, problem.n, images, rows)
            decoder = rows * count_flops(generator) / peak
            data_time = max(flops / peak, matrix_bytes / bandwidth)
            floor = decoder + data_time
            print(f"{name:6s} {m:4d} {measured * 1e3:12.1f} {floor * 1e3:9.1f} {floor / measured:6.2f}"
                  f"   {decoder * 1e3:.1f} + {data_time * 1e3:.1f}")
            task_measured += params["steps"] * measured
            task_floor += params["steps"] * floor
        print(f"{name}: {task_measured:.0f} task-seconds measured, {task_floor:.0f} at the floor "
              f"({params['steps']} steps per task)")
        out[name] = task_measured, task_floor
    return out


class Reads:
    """Floor seconds and bytes of the products with per-instance matrices, by kind ("solver": through
    `common.dense_maps`, "operator": `DenseOperator`'s), once `install`ed; matrices of at most
    CACHE_BYTES are read at `cache_rate`, larger ones at `bandwidth`."""

    def __init__(self, peak: float, bandwidth: float, cache_rate: float):
        self.peak, self.bandwidth, self.cache_rate = peak, bandwidth, cache_rate
        self.seconds, self.bytes = Counter(), Counter()

    def add(self, kind: str, matrices: Tensor, v: Tensor, out: Tensor) -> Tensor:
        """Count one product of the matrices (B, m, n) with v: 2 m n flops per vector, every M_b read."""
        size = matrices.numel() * matrices.element_size()
        rate = self.cache_rate if size <= CACHE_BYTES else self.bandwidth
        self.seconds[kind] += max(2 * v.numel() * out.shape[-1] / self.peak, size / rate)
        self.bytes[kind] += size
        return out

    def install(self) -> None:
        dense_maps = common.dense_maps
        common.dense_maps = lambda matrices: tuple(
            (lambda v, product=product: self.add("solver", matrices, v, product(v)))
            for product in dense_maps(matrices))
        for name in ("forward", "adjoint"):
            product = getattr(DenseOperator, name)
            setattr(DenseOperator, name, lambda operator, v, product=product:
                    self.add("operator", operator.matrices, v, product(operator, v)))


def sparsity_floors(names: list[str], ms: list[int], images: int, reads: Reads) -> dict[str, tuple[float, float]]:
    """{prior: (measured, floor task-seconds over `ms`)}: each task run by `run_task` on the default
    preset's configuration, its products counted as it runs; prints per m."""
    config = make_config("default", n_images=images)
    reads.install()
    print(f"{'prior':13s} {'m':>4s} {'measured s':>10s} {'floor s':>8s} {'ratio':>6s} {'GB read':>8s}"
          f"   floor: solver + operator ({config.n_validation} validation, {images} test images)")
    out = {}
    for name in names:
        task_measured = task_floor = 0.0
        for m in ms:
            reads.seconds.clear()
            reads.bytes.clear()
            start = time.process_time()
            result = run_task(Task(config.dataset, config.measurement, name, m, config.noise[0], config.seeds[0]),
                              config)
            measured = time.process_time() - start
            if result.status != "ok":
                raise SystemExit(f"{name} m={m}: {result.status}: {result.rows[0]['error']}")
            floor = sum(reads.seconds.values())
            print(f"{name:13s} {m:4d} {measured:10.2f} {floor:8.2f} {floor / measured:6.2f}"
                  f" {sum(reads.bytes.values()) / 1e9:8.2f}   {reads.seconds['solver']:.2f} + "
                  f"{reads.seconds['operator']:.2f}")
            task_measured += measured
            task_floor += floor
        print(f"{name}: {task_measured:.0f} task-seconds measured, {task_floor:.0f} at the floor")
        out[name] = task_measured, task_floor
    return out


def main() -> None:
    preset = make_config("default")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", default=",".join([*GENERATIVE, *SPARSITY]))
    parser.add_argument("--images", type=int, default=preset.n_images)
    parser.add_argument("--m", default=",".join(map(str, preset.m)))
    parser.add_argument("--steps", type=int, default=20, help="Adam steps timed per (prior, m)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    priors, ms = args.priors.split(","), [int(m) for m in args.m.split(",")]
    unknown = set(priors) - {*GENERATIVE, *SPARSITY}
    if unknown:
        parser.error(f"--priors: unknown {', '.join(sorted(unknown))}; use {', '.join([*GENERATIVE, *SPARSITY])}")
    torch.set_num_threads(args.threads)
    peak, bandwidth, cache_rate = matmul_rate(), read_rate(), read_rate(CACHE_BYTES >> 20, 20)
    print(f"fp32 matmul rate {peak / 1e9:.1f} GFLOP/s, read rate {bandwidth / 1e9:.1f} GB/s "
          f"({cache_rate / 1e9:.1f} GB/s from cache, {CACHE_BYTES >> 20} MB) "
          f"(per CPU second, {args.threads} thread(s)); {args.images} images")
    tasks = {}
    generative = [p for p in priors if p in GENERATIVE]
    if generative:
        tasks.update(generative_floors(generative, ms, args.images, args.steps, peak, bandwidth))
    sparsity = [p for p in priors if p in SPARSITY]
    if sparsity:
        tasks.update(sparsity_floors(sparsity, ms, args.images, Reads(peak, bandwidth, cache_rate)))
    measured, floor = (sum(values) for values in zip(*tasks.values()))
    cores = os.cpu_count() or 1
    part = "" if set(priors) == set(preset.priors) and tuple(ms) == preset.m and args.images == preset.n_images \
        else f" (only {', '.join(priors)}, m = {args.m}, {args.images} images)"
    print(f"default preset floor: {floor:.0f} task-seconds, {floor / cores:.0f} s of wall time on {cores} cores "
          f"(target 300 s){part}")
    print(f"ratio: {floor / measured:.2f}")


if __name__ == "__main__":
    main()
