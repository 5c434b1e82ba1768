"""Wall-clock time of a whole `compare` preset, run fresh into a temporary directory, with the
task seconds per prior (summed over m) read back from its store.

    python benchmarks/bench_presets.py [--preset default] [--dataset mnist] [--workers N] [--keep DIR]
        [--priors a,b --m 100,500] [--plugin FILE --reuse DIR]

The named reference is the issue's target for the preset on 2 CPU cores (quick 60 s, default
300 s, paper 1800 s): the script prints the measured seconds, their ratio to that target, and
ends with `seconds: X`. `--priors` / `--m` time a slice of the preset (its images, grids and
parameters; no theory experiments) and print its task seconds per prior, without a target: e.g.
`--preset paper --priors deep-decoder --m 100` against a task's seconds in a reference store.
`--reuse DIR` (with `--plugin FILE`, whose priors join the preset's) times a plug-in author's run:
the tasks and experiments DIR holds with this checkout's fingerprint are copied, not computed; the
script prints which tasks were, and what computing them took there.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from csbench.store import ResultStore

TARGETS = {"quick": 60.0, "default": 300.0, "paper": 1800.0}  # seconds on 2 CPU cores (issue 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(TARGETS))
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", help="write the run here (kept) instead of a temporary directory")
    parser.add_argument("--priors", help="only these priors (a slice of the preset, no experiments)")
    parser.add_argument("--m", help="only these m values (a slice of the preset, no experiments)")
    parser.add_argument("--plugin", help="a plug-in file whose priors join the preset's")
    parser.add_argument("--reuse", help="a run directory to copy tasks from (`compare --reuse`)")
    args = parser.parse_args()
    slice_options = [option for flag in ("priors", "m") if getattr(args, flag)
                     for option in (f"--{flag}", getattr(args, flag))]
    extra = [option for flag in ("plugin", "reuse") if getattr(args, flag)
             for option in (f"--{flag}", getattr(args, flag))]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.keep or scratch)
        command = [sys.executable, "-m", "csbench", "compare", "--preset", args.preset, "--dataset", args.dataset,
                   "--workers", str(args.workers), "--out", str(out), "--fresh", "--quiet", "--allow-failures", *extra]
        if slice_options:
            command += [*slice_options, "--experiments", "none"]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        store = ResultStore(out / "results.sqlite", read_only=True)
        seconds_of = store.task_seconds()
        copied = {key for entry in store.reused() for key in entry["tasks"]}
        store.close()
    per_prior, reused = {}, {}   # prior -> [task seconds, tasks], computed here / copied
    for key, task_seconds in seconds_of.items():
        counts = (reused if key in copied else per_prior).setdefault(key[2], [0.0, 0])
        counts[0] += task_seconds or 0.0
        counts[1] += 1
    per_prior = sorted(((prior, *counts) for prior, counts in per_prior.items()), key=lambda row: -row[1])
    print(f"compare --preset {args.preset} --dataset {args.dataset}: {args.workers} workers, {os.cpu_count()} cores")
    print(f"{'prior':<16}{'tasks':>6}{'task seconds':>14}")
    for prior, total, count in per_prior:
        print(f"{prior:<16}{count:>6}{total:>14.1f}")
    if args.reuse:
        print(f"copied from {args.reuse} instead of computed: " + ", ".join(
            f"{prior} {count} tasks ({there:.0f} task-seconds there)"
            for prior, (there, count) in sorted(reused.items())))
    total = sum(row[1] for row in per_prior)
    print(f"task seconds {total:.0f} over {args.workers} workers = {total / args.workers:.0f} s; "
          f"wall {seconds:.0f} s (the rest: experiments, start-up, report)")
    if not slice_options:
        print(f"target {TARGETS[args.preset]:.0f} s on 2 cores: measured / target = {seconds / TARGETS[args.preset]:.2f}")
    print(f"seconds: {seconds:.1f}")


if __name__ == "__main__":
    main()
