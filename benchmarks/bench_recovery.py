"""Latent optimisation at the paper preset's batch: useful flops per second as a fraction of this
machine's fp32 matmul rate, both measured in the same run.

    python benchmarks/bench_recovery.py [--images 300] [--restarts 10] [--steps 20] [--m 100] [--threads T]

The VAE recovery (Bora et al.: Adam on z, R restarts of B images in one tensor program) costs per
restart, image and Adam step 4 sum_l (d_in d_out) flops in the decoder's linear layers (forward
and the gradient in its input; the weights are frozen) plus the data gradient: 4 m n for A G(z)
and A^T r, or 2 n^2 through the Gram matrix A^T A where latent.py uses it (identity link,
m > n / 2). The DCGAN line (5 restarts, its own Adam settings) counts its convolutions the same
way (forward and input gradient, 4 x the multiply-adds of each layer). The rate is compared with
the best of a few 2048^3 float32 matrix products, taken before and after the recoveries (the
better of the two). Both are flops per second of this process's CPU time (summed over its
threads), so other processes sharing the cores slow neither figure; the wall-clock seconds are
printed too. Each recovery then reruns its first images one by one: an instance's result does not
depend on its batch, so the two agree to float rounding. Ends with `ratio: X` (the VAE
recovery's rate as a fraction of the matmul rate).
"""
from __future__ import annotations

import argparse
import time

import torch

from csbench.datasets import load_dataset
from csbench.generative.latent import optimise_latent
from csbench.generative.models import FrozenDCGAN
from csbench.generative.zoo import load_generator
from csbench.measurements import DenseOperator
from csbench.problem import Problem
from csbench.runner import Task, make_problem


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GEMM rate (flop per CPU second) over `repeats` products of two size x size matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * size ** 3 / best


def decoder_flops(decoder: torch.nn.Module) -> int:
    """Flops of one decoder forward plus its input gradient: 4 sum_l d_in d_out over Linear layers."""
    return sum(4 * layer.in_features * layer.out_features for layer in decoder.modules()
               if isinstance(layer, torch.nn.Linear))


def dcgan_flops(frozen: FrozenDCGAN) -> int:
    """Flops of one FrozenDCGAN forward plus its input gradient: 4 x the multiply-adds of the
    projection (k -> 7 * 7 * 2w) and of the two transposed convolutions (each input pixel times
    its 4 x 4 kernel: 7 * 7 * 2w * 16 w and 14 * 14 * w * 16 C)."""
    w, channels = frozen.width, frozen.shape[0]
    return 4 * (frozen.latent_dim * 49 * 2 * w + 49 * 2 * w * 16 * w + 196 * w * 16 * channels)


def data_flops(m: int, n: int) -> int:
    """Flops of grad_g ||A g - y||^2 per vector: 2 n^2 by the Gram matrix where latent.py uses it, else 4 m n."""
    return 2 * n * n if 2 * m > n else 4 * m * n


def one_instance(problem: Problem, i: int) -> Problem:
    return Problem(y=problem.y[i:i + 1], operator=DenseOperator(problem.operator.dense()[i:i + 1]),
                   shape=problem.shape, noise=problem.noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--check", type=int, default=2, help="images rerun one by one to compare")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    x = data.split("test", args.images)
    models = [("vae", args.restarts, 0.01), ("dcgan", 5, 0.1)]
    generators = {name: load_generator(name, data) for name, _, _ in models}
    flops = {"vae": decoder_flops(generators["vae"].decoder), "dcgan": dcgan_flops(generators["dcgan"])}
    peak = matmul_rate()
    rates = {}
    for name, restarts, lr in models:
        generator = generators[name]
        problem = make_problem(x, Task("mnist", "gaussian", name, args.m, 0.1, 0), "test", "cpu")
        settings = dict(latent_dim=generator.latent_dim, lr=lr, restarts=restarts, penalty=0.1)
        optimise_latent(generator.decode, one_instance(problem, 0), steps=2, **settings)     # warm-up
        start, wall = time.process_time(), time.perf_counter()
        batched, _, _ = optimise_latent(generator.decode, problem, steps=args.steps,
                                        generator=torch.Generator().manual_seed(0), **settings)
        seconds, wall = time.process_time() - start, time.perf_counter() - wall
        work = args.images * restarts * args.steps * (flops[name] + data_flops(args.m, problem.n))
        rates[name] = work / seconds
        alone = torch.cat([optimise_latent(generator.decode, one_instance(problem, i), steps=args.steps,
                                           generator=torch.Generator().manual_seed(0), **settings)[0]
                           for i in range(min(args.check, args.images))])
        print(f"{name} recovery, {args.images} images x {restarts} restarts x {args.steps} Adam steps, "
              f"m={args.m}, {torch.get_num_threads()} threads")
        print(f"  latent optimisation:           {rates[name] / 1e9:8.1f} GFLOP per CPU second  ({work / 1e9:.1f} "
              f"GFLOP in {seconds:.2f} CPU s, {wall:.2f} s wall; {seconds / args.steps * 1e3:.1f} CPU ms per step, "
              f"{seconds / args.images / args.steps * 1e3:.3f} per image and step)")
        difference = (batched[:alone.shape[0]] - alone).abs().max()
        print(f"  max |batched - one by one| over {alone.shape[0]} images: {difference:.2e}")
    peak = max(peak, matmul_rate())
    print(f"fp32 matmul rate (reference):    {peak / 1e9:8.1f} GFLOP per CPU second")
    print(f"dcgan ratio: {rates['dcgan'] / peak:.2f}")
    print(f"ratio: {rates['vae'] / peak:.2f}")


if __name__ == "__main__":
    main()
