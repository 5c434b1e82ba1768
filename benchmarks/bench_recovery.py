"""Batched latent optimisation vs a plain loop over images (the reference), same run, same numbers.

    python benchmarks/bench_recovery.py [--images 16] [--steps 200] [--restarts 10] [--m 100]

Prints seconds for both, their ratio, and the largest difference between the two answers
(an instance's result does not depend on the batch, so they agree to float precision).
"""
from __future__ import annotations

import argparse
import time

import torch

from csbench.data import load_dataset
from csbench.generative.latent import optimise_latent
from csbench.generative.zoo import load_generator
from csbench.measurements import DenseOperator
from csbench.problem import Problem
from csbench.runner import Task, make_problem


def one_instance(problem: Problem, i: int) -> Problem:
    return Problem(y=problem.y[i:i + 1], operator=DenseOperator(problem.operator.dense()[i:i + 1]),
                   shape=problem.shape, noise=problem.noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--m", type=int, default=100)
    args = parser.parse_args()
    data = load_dataset("mnist")
    vae = load_generator("vae", data)
    x = data.split("test", args.images)
    problem = make_problem(x, Task("mnist", "gaussian", "vae", args.m, 0.1, 0), "test", "cpu")
    settings = dict(latent_dim=vae.latent_dim, steps=args.steps, lr=0.01, restarts=args.restarts, penalty=0.1)

    start = time.perf_counter()
    batched, _, _ = optimise_latent(vae.decode, problem, generator=torch.Generator().manual_seed(0), **settings)
    t_batched = time.perf_counter() - start

    start = time.perf_counter()
    looped = torch.cat([optimise_latent(vae.decode, one_instance(problem, i),
                                        generator=torch.Generator().manual_seed(0), **settings)[0]
                        for i in range(args.images)])
    t_loop = time.perf_counter() - start

    print(f"vae recovery, {args.images} images x {args.restarts} restarts x {args.steps} Adam steps, "
          f"m={args.m}, {torch.get_num_threads()} threads")
    print(f"  plain loop over images (reference): {t_loop:8.2f} s")
    print(f"  batched (csbench):                  {t_batched:8.2f} s")
    print(f"  speed-up: {t_loop / t_batched:.1f}x;  max |difference| = {(batched - looped).abs().max():.2e}")


if __name__ == "__main__":
    main()
