"""Seconds per image and MSE of the generative and untrained priors, one task at a time.

    python benchmarks/bench_generative_priors.py [--priors vae,dcgan,...] [--m 25,100,400]
        [--images 16] [--split validation] [--fraction 1.0] [--threads 1] [--tune]

Each prior recovers `--images` MNIST digits of `--split` at each m (gaussian A, sigma 0.1, the
task's own seeds, as in a `compare` run) with its default parameters, no tuning. Seconds are
process CPU time per image (with one thread, what the recovery costs on a quiet core even when
other processes share the machine), after a one-step warm-up. `--fraction F` runs F of the steps
(pgd-gan: outer iterations) and scales the time back up (per-step cost is constant); the MSE is
printed only for full runs (with `--tune`, the mean over the grid). `--tune` times the tuning
grid instead (`recover_grid` over the prior's whole grid, per image; priors without a grid are
skipped). Run it on two checkouts (PYTHONPATH=...) to compare before and after.
Ends with `seconds: X`, the total scaled seconds per image over all rows.
"""
from __future__ import annotations

import argparse
import time

import torch

from csbench.datasets import load_dataset
from csbench.priors import PriorContext, make_prior
from csbench.runner import Task, make_problem

STEP_PARAMETER = {"pgd-gan": "outer"}   # every other prior here counts `steps`


def prepared(spec: str, data) -> object:
    prior = make_prior(spec)
    prior.setup(PriorContext(dataset=data, shape=tuple(data.shape)))
    return prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", default="vae,dcgan,sparsegen,pgd-gan,deep-decoder")
    parser.add_argument("--m", default="25,100,400")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tune", action="store_true", help="time the whole tuning grid instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    x = data.split(args.split, args.images)
    total = 0.0
    for name in args.priors.split(","):
        key = STEP_PARAMETER.get(name, "steps")
        full = int(make_prior(name).params[key])
        steps = max(1, round(full * args.fraction))
        prior, warm = prepared(f"{name}[{key}={steps}]", data), prepared(f"{name}[{key}=1]", data)
        grid = prior.tuning_grid() if args.tune else [{}]
        if not grid:
            continue
        for m in (int(v) for v in args.m.split(",")):
            task = Task("mnist", "gaussian", name, m, 0.1, 0)
            warm.recover(make_problem(x, task, args.split, "cpu"))
            problem = make_problem(x, task, args.split, "cpu")
            start = time.process_time()
            x_hats = prior.recover_grid(problem, grid) if args.tune else [prior.recover(problem)]
            per_image = (time.process_time() - start) * full / steps / args.images
            total += per_image
            error = sum(float((x_hat - x).pow(2).mean()) for x_hat in x_hats) / len(x_hats)
            what = f"grid of {len(grid)}" if args.tune else "recover"
            print(f"{name:13s} m={m:4d}  {per_image:8.4f} s/image, {what} ({key} {steps}/{full})"
                  + (f"  mse {error:.5f}" if steps == full else ""), flush=True)
    print(f"seconds: {total:.3f}")


if __name__ == "__main__":
    main()
