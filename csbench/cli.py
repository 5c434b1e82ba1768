"""Command line: compare, list, train, report, check. Bad input -> one line `error: ...`, exit 2."""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
from pathlib import Path

from csbench.config import DEVICES, EXECUTOR_NAMES
from csbench.errors import CsbenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise CsbenchError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="csbench", description="Compressed-sensing benchmark: generative priors "
                     "vs sparsity baselines on shared measurement models.")
    parser.add_argument("--traceback", action="store_true",
                        help="print the traceback behind an `error:` line (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("compare", help="run a comparison and write its report")
    c.add_argument("--preset", help="quick | default | paper (default: default)")
    c.add_argument("--dataset", help="mnist, fashion-mnist, random-net[k=..], folder:PATH")
    c.add_argument("--priors", help="comma-separated prior names, e.g. vae,lasso-dct[lam=0.1]")
    c.add_argument("--measurement", help="measurement model (see `csbench list`)")
    c.add_argument("--m", help="comma-separated numbers of measurements, e.g. 25,50,100")
    c.add_argument("--noise", help="comma-separated noise levels sigma (E||e||^2 = sigma^2)")
    c.add_argument("--n-images", type=int, help="test images per task")
    c.add_argument("--seed", help="comma-separated seeds")
    c.add_argument("--out", help="output directory (default reports/latest)")
    c.add_argument("--config", help="TOML file with the same keys as these options")
    c.add_argument("--executor", help=" | ".join(EXECUTOR_NAMES))
    c.add_argument("--scheduler", help="address of a running Dask scheduler")
    c.add_argument("--workers", type=int, help="worker processes (processes / local dask)")
    c.add_argument("--device", help=" | ".join(DEVICES))
    c.add_argument("--plugin", action="append", help="module:Class or path/to/file.py (repeatable)")
    c.add_argument("--reuse", action="append", metavar="DIR",
                   help="copy tasks from another run's directory (e.g. a reference) wherever this checkout "
                        "would compute them the same: same code, parameters, checkpoints, images, device (repeatable)")
    c.add_argument("--task-timeout", type=float, help="seconds a task may run before it is marked failed")
    c.add_argument("--experiments", help="theory experiments: phase,landscape or none (default: the "
                   "preset's, none when --priors/--m/... choose the grid without --preset)")
    c.add_argument("--dry-run", action="store_true",
                   help="print what would be reused, rerun or computed anew per prior, and run nothing")
    c.add_argument("--fresh", action="store_true", help="discard the results stored in --out first")
    c.add_argument("--allow-failures", action="store_true", help="exit 0 even when some tasks failed")
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list", help="priors, datasets, measurement models, with origin")

    t = sub.add_parser("train", help="train a generative model and save its checkpoint")
    t.add_argument("model", help="vae | dcgan | score")
    t.add_argument("--dataset", required=True)
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="checkpoint path (default: the package's checkpoint folder)")
    t.add_argument("--n-train", type=int, help="train on the first N training images only")
    t.add_argument("--quiet", action="store_true")

    r = sub.add_parser("report", help="rebuild the report from a stored run")
    r.add_argument("dir")
    r.add_argument("--against", help="a reference run directory to compare with")
    r.add_argument("--fail-on-regression", action="store_true",
                   help="with --against: exit 1 when a (prior, m, noise) error is worse beyond both CIs")
    r.add_argument("--plugin", action="append",
                   help="module:Class or path/to/file.py of a plug-in prior in the run, so that its stored "
                        "results are checked against its current code (repeatable)")

    k = sub.add_parser("check", help="contract tests for a prior plug-in")
    k.add_argument("plugin", help="module:Class, path/to/file.py, or a registered prior name[key=value,...]")
    k.add_argument("--dataset", default="mnist", help="dataset to check on (default mnist)")
    k.add_argument("--timeout", type=float, default=300.0,
                   help="seconds each call of the prior may take before its check fails (default 300)")
    k.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                   help="print the full traceback of every failed check")
    return parser


GRID_OPTIONS = ("dataset", "priors", "measurement", "m", "noise", "n_images", "seed")


def _compare(args: argparse.Namespace) -> int:
    from csbench.config import file_keys, make_config

    experiments = args.experiments
    hand_picked = args.preset is None and args.config is None and any(getattr(args, k) is not None for k in GRID_OPTIONS)
    if experiments is None and hand_picked:
        experiments = "none"  # a grid picked on the command line runs what it asks for, no theory experiments
    config = make_config(
        args.preset, args.config, dataset=args.dataset, priors=args.priors,
        measurement=args.measurement, m=args.m, noise=args.noise, n_images=args.n_images,
        seed=args.seed, out=args.out, executor=args.executor, scheduler=args.scheduler,
        workers=args.workers, device=args.device, plugins=args.plugin, reuse=args.reuse,
        task_timeout=args.task_timeout, quiet=args.quiet or None,
        experiments=None if experiments is None else ("" if experiments == "none" else experiments))
    from csbench.compare import compare, dry_run, with_plugin_priors  # after the options are checked
    from csbench.console import console_summary
    from csbench.report import claim_line

    config = with_plugin_priors(config, listed=args.priors is not None or "priors" in file_keys(args.config))

    if args.dry_run:
        if args.fresh:
            raise CsbenchError("--dry-run and --fresh: a dry run discards nothing; drop one")
        table = dry_run(config).table()
        print(f"dry run into {config.out} (nothing is computed or written):\n{table}")
        return 0

    try:
        outcome = compare(config, fresh=args.fresh)
    except KeyboardInterrupt:
        raise CsbenchError(f"interrupted; finished tasks are saved in {config.out}, "
                           "rerun the same command to resume") from None
    print(console_summary(outcome.out))
    for _, note in outcome.stale.notes():
        print(f"note: {note}", file=sys.stderr)
    print(claim_line(outcome.out))
    print(f"report: {outcome.out / 'report.html'}")
    for prior, errors in outcome.failures.items():
        print(f"failed: {prior}: {len(errors)} task(s), first error: {errors[0]}", file=sys.stderr)
    if outcome.failures and not args.allow_failures:
        print(f"error: {sum(map(len, outcome.failures.values()))} task(s) failed; their rows are in the "
              "report, a rerun retries them (--allow-failures exits 0)", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    from csbench.catalogue import catalogue_text

    print(catalogue_text())
    return 0


def _train(args: argparse.Namespace) -> int:
    from csbench.generative.train import train

    path = train(args.model, args.dataset, epochs=args.epochs, seed=args.seed,
                 out=Path(args.out) if args.out else None, n_train=args.n_train, quiet=args.quiet)
    print(f"checkpoint: {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from csbench.analysis.compare_runs import comparison_summary, comparison_table
    from csbench.report import claim_line, write_outputs

    out = Path(args.dir)
    if not (out / "results.sqlite").is_file():
        raise CsbenchError(f"{out} holds no results.sqlite; run `csbench compare --out {out}` first")
    if args.against and not (Path(args.against) / "summary.csv").is_file():
        raise CsbenchError(f"{args.against} holds no summary.csv to compare against")
    if args.fail_on_regression and not args.against:
        raise CsbenchError("--fail-on-regression needs --against REFERENCE_DIR")
    from csbench.compare import stored_staleness

    notes = stored_staleness(out, tuple(args.plugin or ())).notes()
    if args.against and (Path(args.against) / "results.sqlite").is_file():
        notes += stored_staleness(Path(args.against), tuple(args.plugin or ())).reference_notes(args.against)
    for _, note in notes:
        print(f"note: {note}", file=sys.stderr)
    comparison = write_outputs(out, against=Path(args.against) if args.against else None, notes=notes)
    print(claim_line(out))
    if comparison is not None:
        table = comparison_table(comparison)
        print(f"changes against {args.against}: {comparison_summary(comparison)}")
        if not table.empty:
            print(table.to_string(index=False))
    print(f"report: {out / 'report.html'}")
    return 1 if args.fail_on_regression and comparison["worse"].any() else 0


def _check(args: argparse.Namespace) -> int:
    from csbench.check import check_plugin

    failures = check_plugin(args.plugin, args.dataset, args.timeout, args.traceback)
    return 1 if failures else 0


COMMANDS = {"compare": _compare, "list": _list, "train": _train, "report": _report, "check": _check}


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = _parser().parse_args(argv)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except CsbenchError as exc:
        if getattr(args, "traceback", False):
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # the store could not be written (read-only, locked, disk full)
        print(f"error: the result store could not be written: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `csbench list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
