"""How close a preset's tasks run to what this machine allows: each task's floor, measured in
the same run as the tasks' real time.

    python benchmarks/bench_floor.py [--preset default|paper] [--priors vae,dcgan,...]
                                     [--images 64] [--m 10,25,...,750] [--steps 20] [--threads 1]

`--preset` sets the images, validation images, m grid and priors (default: vae, dcgan, lasso-pixel,
lasso-dct, lasso-wavelet, tv; paper: vae, dcgan, pgd-gan, sparsegen, whose steps are timed, and the
same four sparsity priors, whose tasks run in full at 300 + 32 images, about 16 CPU minutes:
`--priors` leaves them out).

Generative priors (vae, dcgan, pgd-gan, sparsegen). One Adam step of latent optimisation (latent.py) is two dependent
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
PGD-GAN and SparseGen run the DCGAN's decoder the same way: PGD-GAN's step is one Adam step of its
projection onto the range (R B rows, no A: outer x inner = 1000 per task; the 10 gradient steps on
||A x - y||^2 are counted as free); SparseGen's is one joint step on z and the sparse deviation (the
data gradient as above; the Haar transforms free), on the test images (R B rows) and, for its tuning
grid of P values of lam side by side, on the validation images (P R B_val rows): both programs are
timed and their floors added.

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
prior's task-seconds both ways, and the preset's floor: the priors' floor task-seconds over
the m grid, and that divided by the cores a preset run keeps busy (one single-threaded worker per
core, os.cpu_count()), against the preset's target (default 300 s, paper 30 minutes). The
preset's theory experiments and the priors the script does not model (the paper's deep-decoder,
omp, iht) are not counted: a lower bound of its time. Ends with `ratio: X` (floor / measured, all
tasks run). Run with `--threads 1`, as a preset's workers do, on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from typing import Callable

import torch
from torch import Tensor

from bench_recovery import data_flops, dcgan_flops, decoder_flops, matmul_rate
from csbench.baselines import common
from csbench.baselines.transforms import Basis
from csbench.config import make_config
from csbench.datasets import load_dataset
from csbench.generative.latent import initial_latents, optimise_latent
from csbench.generative.pgd import PGDGANPrior, pgd_range
from csbench.generative.priors import DCGANPrior, VAEPrior
from csbench.generative.sparsegen import SparseGenPrior, sparsegen
from csbench.generative.zoo import load_generator
from csbench.measurements.base import CACHE_BYTES, DenseOperator
from csbench.problem import Problem
from csbench.runner import Task, make_problem, run_task

GENERATIVE = {"vae": (VAEPrior, "vae", lambda generator: decoder_flops(generator.decoder)),
              "dcgan": (DCGANPrior, "dcgan", dcgan_flops),
              "pgd-gan": (PGDGANPrior, "dcgan", dcgan_flops),
              "sparsegen": (SparseGenPrior, "dcgan", dcgan_flops)}
SPARSITY = ("lasso-pixel", "lasso-dct", "lasso-wavelet", "tv")
PRESETS = {"default": (("vae", "dcgan", *SPARSITY), 300.0),            # priors, target wall seconds
           "paper": (("vae", "dcgan", "pgd-gan", "sparsegen", *SPARSITY), 1800.0)}


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


def step_seconds(run, steps: int) -> float:
    """CPU seconds per step of run(count), which runs `count` steps: (run(5 + steps) - run(5)) / steps,
    after a run of one step (what the operator computes once, such as ||A_b||^2, stays out)."""
    run(1)
    times = []
    for count in (5, 5 + steps):
        start = time.process_time()
        run(count)
        times.append(time.process_time() - start)
    return (times[1] - times[0]) / steps


def step_programs(name: str, generator, test: Problem, validation: Callable[[], Problem]) -> tuple[int, list]:
    """(steps per task, [(problem, rows, reads A, run(count))]): the per-step programs of a task of
    the generative prior `name`, each run on the real code path from its own starts; `validation`
    makes the validation problem (only SparseGen tunes)."""
    params = GENERATIVE[name][0].parameters
    restarts, decode = params["restarts"], generator.decode

    def starts(problem: Problem, slots: int) -> Tensor:   # as the priors draw them: shared by the instances
        return initial_latents(problem.batch, slots, generator.latent_dim, torch.Generator().manual_seed(0))

    if name in ("vae", "dcgan"):
        settings = dict(latent_dim=generator.latent_dim, lr=params["lr"], restarts=restarts,
                        penalty=params["penalty"])
        return params["steps"], [(test, restarts * test.batch, True, lambda count: optimise_latent(
            decode, test, steps=count, generator=torch.Generator().manual_seed(0), **settings))]
    if name == "pgd-gan":
        z0 = starts(test, restarts)
        return params["outer"] * params["inner"], [(test, restarts * test.batch, False, lambda count: pgd_range(
            decode, test.operator, test.y, z0, eta=params["eta"], outer=1, inner=count, lr=params["lr"]))]
    basis = Basis("wavelet", test.shape)
    lams = torch.tensor(SparseGenPrior.tuning["lam"]).repeat_interleave(restarts)

    def program(problem: Problem, lam: Tensor) -> tuple:
        z0 = starts(problem, len(lam))
        return (problem, len(lam) * problem.batch, True, lambda count: sparsegen(
            decode, problem.operator, problem.y, z0, basis, lam=lam, penalty=params["penalty"], steps=count,
            lr=params["lr"]))

    return params["steps"], [program(test, torch.full((restarts,), params["lam"])), program(validation(), lams)]


def generative_floors(names: list[str], ms: list[int], images: int, validation: int, steps: int, peak: float,
                      bandwidth: float) -> dict[str, tuple[float, float]]:
    """{prior: (measured, floor task-seconds over `ms`)} from the per-step floor, printing per m."""
    data = load_dataset("mnist")
    x, x_validation = data.split("test", images), data.split("validation", validation)
    print(f"{'prior':9s} {'m':>4s} {'measured ms':>12s} {'floor ms':>9s} {'ratio':>6s}   floor: decoder + data")
    out = {}
    for name in names:
        _, model, count_flops = GENERATIVE[name]
        generator = load_generator(model, data)
        task_measured = task_floor = 0.0
        for m in ms:
            task = Task("mnist", "gaussian", name, m, 0.1, 0)
            task_steps, programs = step_programs(name, generator, make_problem(x, task, "test", "cpu"),
                                                 lambda: make_problem(x_validation, task, "validation", "cpu"))
            measured = decoder = data_time = 0.0
            for problem, rows, reads_a, run in programs:
                measured += step_seconds(run, steps)
                decoder += rows * count_flops(generator) / peak
                if reads_a:
                    flops, matrix_bytes = data_phase(m, problem.n, problem.batch, rows)
                    data_time += max(flops / peak, matrix_bytes / bandwidth)
            floor = decoder + data_time
            print(f"{name:9s} {m:4d} {measured * 1e3:12.1f} {floor * 1e3:9.1f} {floor / measured:6.2f}"
                  f"   {decoder * 1e3:.1f} + {data_time * 1e3:.1f}")
            task_measured += task_steps * measured
            task_floor += task_steps * floor
        print(f"{name}: {task_measured:.0f} task-seconds measured, {task_floor:.0f} at the floor "
              f"({task_steps} steps per task)")
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


def sparsity_floors(names: list[str], ms: list[int], config, reads: Reads) -> dict[str, tuple[float, float]]:
    """{prior: (measured, floor task-seconds over `ms`)}: each task run by `run_task` with the preset's
    configuration `config`, its products counted as it runs; prints per m."""
    reads.install()
    print(f"{'prior':13s} {'m':>4s} {'measured s':>10s} {'floor s':>8s} {'ratio':>6s} {'GB read':>8s}"
          f"   floor: solver + operator ({config.n_validation} validation, {config.n_images} test images)")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--priors", help="default: the preset's (see above)")
    parser.add_argument("--images", type=int, help="test images (default: the preset's)")
    parser.add_argument("--m", help="default: the preset's m grid")
    parser.add_argument("--steps", type=int, default=20, help="steps timed per (prior, m)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    priors, target = PRESETS[args.preset]
    config = make_config(args.preset, **({} if args.images is None else {"n_images": args.images}))
    priors = priors if args.priors is None else tuple(args.priors.split(","))
    ms = list(config.m) if args.m is None else [int(m) for m in args.m.split(",")]
    unknown = set(priors) - {*GENERATIVE, *SPARSITY}
    if unknown:
        parser.error(f"--priors: unknown {', '.join(sorted(unknown))}; use {', '.join([*GENERATIVE, *SPARSITY])}")
    torch.set_num_threads(args.threads)
    peak, bandwidth, cache_rate = matmul_rate(), read_rate(), read_rate(CACHE_BYTES >> 20, 20)
    print(f"fp32 matmul rate {peak / 1e9:.1f} GFLOP/s, read rate {bandwidth / 1e9:.1f} GB/s "
          f"({cache_rate / 1e9:.1f} GB/s from cache, {CACHE_BYTES >> 20} MB) "
          f"(per CPU second, {args.threads} thread(s)); {config.n_images} test, {config.n_validation} validation images")
    tasks = {}
    generative = [p for p in priors if p in GENERATIVE]
    if generative:
        tasks.update(generative_floors(generative, ms, config.n_images, config.n_validation, args.steps, peak,
                                       bandwidth))
    sparsity = [p for p in priors if p in SPARSITY]
    if sparsity:
        tasks.update(sparsity_floors(sparsity, ms, config, Reads(peak, bandwidth, cache_rate)))
    measured, floor = (sum(values) for values in zip(*tasks.values()))
    cores = os.cpu_count() or 1
    preset = make_config(args.preset)
    left_out = sorted(set(preset.priors) - set(priors))
    part = "" if not left_out and ms == list(preset.m) and config.n_images == preset.n_images \
        else f" (only {', '.join(priors)}, m = {','.join(map(str, ms))}, {config.n_images} images)"
    print(f"{args.preset} preset floor: {floor:.0f} task-seconds, {floor / cores:.0f} s of wall time on {cores} cores "
          f"(target {target:.0f} s){part}" + (f"; not counted: {', '.join(left_out)}" if left_out else ""))
    print(f"ratio: {floor / measured:.2f}")


if __name__ == "__main__":
    main()
