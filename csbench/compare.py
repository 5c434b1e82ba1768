"""`csbench compare`: validate the configuration, run the missing tasks into the store, report.

A stored task is reused only while its fingerprint (csbench/fingerprint.py) matches: change a
prior's code, parameters or checkpoint, or the images, and it is recomputed. A task the store
lacks is copied from another run's directory (`--reuse`) that holds it with the same fingerprint.
Failed tasks are retried on every run. Stored results outside the run's grid (another prior, m or
noise level of an earlier run into the same directory) are reported as stored, and named when
this checkout would not reproduce them (`stale_results`). The output directory is locked while a
run writes into it.
"""
from __future__ import annotations

import fcntl
import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from csbench import __version__
from csbench.config import DEVICES, RunConfig
from csbench.datasets import Dataset, load_dataset
from csbench.errors import CsbenchError
from csbench.executors import EXECUTORS
from csbench.measurements import get_measurement
from csbench.naming import parse_name
from csbench.priors import load_plugin, make_prior, registry
from csbench.report import write_outputs
from csbench.runner import (ExperimentJob, ExperimentResult, Task, TaskResult, experiment_fingerprint, failed_result,
                            images_hash, task_fingerprint, task_grid)
from csbench.store import TASK_KEY, ResultStore

# Settings a stored run must share with a rerun that resumes it (priors, m and noise may grow).
RESUME_KEYS = ("dataset", "measurement", "seeds", "n_images", "n_validation", "reconstructions")
OVERSAMPLING = 16  # nonlinear links (one-bit, phaseless) may take up to 16 n measurements


# A task's expected seconds relative to a sparsity task's, by the prior's kind (the default preset on
# 2 CPU cores: a VAE or DCGAN task takes 5-7x a Lasso or TV task; the paper preset's deep-decoder
# tasks about as long as the generative ones). A theory experiment counts as a generative task.
# Scheduling only, so not part of any task's fingerprint: editing it recomputes nothing.
KIND_COST = {"generative": 6.0, "untrained": 5.0, "other": 2.0, "sparsity": 1.0}


def expected_cost(job: Task | ExperimentJob, kinds: dict[str, str]) -> float:
    """`KIND_COST` of the job's prior (`kinds`: {prior spec: kind}; a plug-in's unknown kind counts as
    "other"), of "generative" for an experiment."""
    if isinstance(job, ExperimentJob):
        return KIND_COST["generative"]
    return KIND_COST.get(kinds.get(job.prior, ""), KIND_COST["other"])


def longest_first(tasks: list[Task], kinds: dict[str, str]) -> list[Task]:
    """Tasks in the order workers should take them: the costliest first (`expected_cost`, then larger
    m), so that the last tasks are short and the workers finish together (greedy list scheduling's
    tail is at most the last task)."""
    return sorted(tasks, key=lambda t: (-expected_cost(t, kinds), -t.m))


class ProgressBar:
    """The run's progress bar, advanced by `expected_cost` per job, part by part as a running task
    reports the fraction of it done (csbench/progress.py), the rest when it finishes, so that its time
    left is not skewed by the costliest tasks running first (counted in finished tasks, it read 2-3x
    too long early in a default run), at the run's average rate (smoothing 0: tasks of different
    kinds alternate). Stored and copied tasks start as done; the postfix counts tasks."""

    def __init__(self, grid: list[Task], jobs: list[Task | ExperimentJob], kinds: dict[str, str], quiet: bool):
        todo = sum(expected_cost(job, kinds) for job in jobs)
        total = todo + sum(expected_cost(task, kinds) for task in grid if task not in jobs)
        self.kinds, self.total, self.done = kinds, total, total - todo   # in expected cost
        self.counted: dict[Task | ExperimentJob, float] = {}  # running job -> the fraction of it counted
        self.bar = tqdm(total=total, initial=self.done, disable=quiet, desc="compare", smoothing=0,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")

    def advance(self, job: Task | ExperimentJob, done: float) -> None:
        """Count the fraction `done` of `job` (1 when it finished); a smaller one than counted is ignored."""
        counted = self.counted.get(job, 0.0)
        if done <= counted:
            return
        step = expected_cost(job, self.kinds) * (done - counted)
        self.done += step
        self.bar.update(step)
        if done < 1.0:
            self.counted[job] = done
        else:
            self.counted.pop(job, None)

    def say(self, text: str) -> None:
        """Show `text` after the bar (the tasks finished, what runs now)."""
        self.bar.set_postfix_str(text)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def per_prior(counts: dict[str, int]) -> str:
    """'lasso-dct: 9, vae: 2': counts per prior, sorted by prior."""
    return ", ".join(f"{prior}: {n}" for prior, n in sorted(counts.items()))


@dataclass
class Staleness:
    """Stored results that this checkout would not reproduce as stored: the report shows them as
    they were computed, and says so (`notes`)."""

    tasks: dict[str, int] = field(default_factory=dict)       # prior -> its stored tasks of other code
    experiments: list[str] = field(default_factory=list)      # stored experiments of other code
    unchecked: dict[str, str] = field(default_factory=dict)   # prior -> why it could not be checked

    def notes(self) -> list[tuple[str, str]]:
        """(label, sentence) per finding, for the console and the report; none when all is current."""
        notes = []
        if self.tasks:
            notes.append(("Not current", f"{sum(self.tasks.values())} stored task(s) were computed by other code, "
                          f"parameters, checkpoints or images than this checkout's ({per_prior(self.tasks)}); they "
                          "are reported as stored, and `csbench compare` with those priors into this directory "
                          "recomputes them"))
        if self.experiments:
            notes.append(("Not current", f"Stored experiment(s) {', '.join(self.experiments)} were computed by "
                          "other code, scale or seed than this run's; a `compare` that runs them recomputes them"))
        notes += [("Not checked", f"{prior}: its stored tasks were not checked against this checkout ({why})")
                  for prior, why in sorted(self.unchecked.items())]
        return notes

    def reference_notes(self, reference: str) -> list[tuple[str, str]]:
        """The same findings about a run compared against (`report --against`): its rows of other
        code make the changes against it include what changed since, not only this run's noise."""
        if not self.tasks:
            return []
        return [("Reference not current", f"{sum(self.tasks.values())} task(s) of the reference {reference} were "
                 "computed by other code, parameters, checkpoints or images than this checkout's "
                 f"({per_prior(self.tasks)}); the changes against them include what changed since")]


@dataclass
class RunOutcome:
    out: Path
    failures: dict[str, list[str]] = field(default_factory=dict)  # prior -> error of each failed task
    recomputed: int = 0  # stored tasks rerun because what produced them changed
    stale: Staleness = field(default_factory=Staleness)  # stored results it did not redo


def validate(config: RunConfig) -> None:
    """Fail fast, before any work, on anything that does not resolve or cannot run."""
    for plugin in config.plugins:
        load_plugin(plugin)
    data = load_dataset(config.dataset)
    for split, wanted in (("test", config.n_images), ("validation", config.n_validation)):
        available = data.size(split)
        if available < wanted:
            raise CsbenchError(f"dataset {config.dataset!r} has {available} {split} images; "
                               f"asked for {wanted} (--n-images / n_validation)")
    model = get_measurement(config.measurement)
    shape = tuple(data.shape)
    n = shape[0] * shape[1] * shape[2]
    limit = n if model.link == "identity" else OVERSAMPLING * n
    for m in config.m:
        if model.effective_m(m, shape) > limit:
            raise CsbenchError(f"m = {m} is more than the {config.measurement} model can take for "
                               f"signals of dimension n = {n} (at most {limit})")
    for spec in config.priors:
        make_prior(spec)
    from csbench.experiments.run import EXPERIMENTS

    if unknown := [name for name in config.experiments if name not in EXPERIMENTS]:
        raise CsbenchError(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise CsbenchError("--device cuda asked for, but torch sees no CUDA device")
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise CsbenchError(f"--out {out} is a file, not a directory")
    for source in map(Path, config.reuse):
        if not (source / "results.sqlite").is_file():
            raise CsbenchError(f"--reuse {source} holds no results.sqlite")
        if source.resolve() == out.resolve():
            raise CsbenchError(f"--reuse {source} is --out itself: its tasks are reused anyway")


def with_plugin_priors(config: RunConfig, listed: bool) -> RunConfig:
    """A plug-in is given to be compared: the priors of each `--plugin` join the grid unless the
    priors were `listed` (`--priors` or the file's `priors`), which run as listed; a listed grid
    without any of a plug-in's priors gets a note on the console."""
    for plugin in config.plugins:
        names = [cls.name for cls in load_plugin(plugin)]
        if not listed:
            config = replace(config, priors=(*config.priors, *(name for name in names if name not in config.priors)))
        elif not set(names) & {parse_name(spec, "prior")[0] for spec in config.priors}:
            print(f"note: the prior(s) of --plugin {plugin} ({', '.join(names)}) are not in --priors; add them "
                  "to compare them", file=sys.stderr)
    return config


def environment(device: str = "cpu") -> dict:
    env = {"csbench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
           "platform": platform.platform(), "processor": platform.machine(),
           "threads": torch.get_num_threads()}
    if device == "cuda":
        env["accelerator"] = torch.cuda.get_device_name()
    return env


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out` (a second run into it is refused, not interleaved)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / ".csbench.lock", "w")
    except OSError as exc:
        raise CsbenchError(f"cannot write into --out {out}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CsbenchError(f"another csbench run is writing into {out}; wait for it or use another --out") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


_WHY_OTHER_CODE = ("a file changed during the run (a rerun recomputes it), or the worker has another "
                   "installation or was started before an edit (restart it)")


def _not_as_fingerprinted(result: TaskResult, images: str, config: RunConfig) -> TaskResult:
    """A task its worker ran with another identity than this run's fingerprint of it: failed
    (retried by the next run), never stored under that fingerprint."""
    if result.images != images:
        why = (f"its worker ran it on other images (sha256 {result.images[:12]}) than this run's "
               f"({images[:12]}): the worker reads other data files or has another environment "
               "(e.g. CSBENCH_MNIST_DIR); start the workers with this process's data and environment")
    else:
        why = f"its worker ran other code, parameters or checkpoints than this run fingerprinted: {_WHY_OTHER_CODE}"
    return failed_result(result.task, config, why, time.perf_counter() - result.seconds)


def _open_store(out: Path, config: RunConfig, fresh: bool) -> ResultStore:
    path = out / "results.sqlite"
    if fresh and path.exists():
        path.unlink()
    store = ResultStore(path)
    try:
        _check_resumable(store, config, out)
    except CsbenchError:
        store.close()
        raise
    return store


def _check_resumable(store: ResultStore, config: RunConfig, out: Path) -> None:
    """A CsbenchError when `store` holds a run that `config` cannot resume (RESUME_KEYS differ)."""
    stored = store.meta().get("config")
    if stored:
        now = json.loads(json.dumps(config.to_dict()))
        clash = [k for k in RESUME_KEYS if stored.get(k) != now.get(k)]
        if clash:
            raise CsbenchError(f"{out} holds a run with different {', '.join(clash)}; rerun with the same "
                               "settings to resume, add --fresh to discard it, or use another --out")


def compare(config: RunConfig, fresh: bool = False) -> RunOutcome:
    """Run (or resume) the comparison of `config` and write every output into `config.out`."""
    validate(config)
    out = Path(config.out)
    with locked(out):
        store = _open_store(out, config, fresh)
        try:
            outcome = _run(config, store, out)
            outcome.stale = stale_results(store, json.loads(json.dumps(config.to_dict())))
        finally:
            store.close()
        write_outputs(out, notes=outcome.stale.notes())
    return outcome


def stored_staleness(out: Path, plugins: tuple[str, ...] = ()) -> Staleness:
    """`stale_results` of the run stored in `out`, with its own configuration and `plugins` loaded
    (`csbench report --plugin`): a report never imports the code a run directory names by itself."""
    for plugin in plugins:
        load_plugin(plugin)
    store = ResultStore(out / "results.sqlite", read_only=True)
    try:
        return stale_results(store, store.meta().get("config", {}))
    finally:
        store.close()


def stale_results(store: ResultStore, config: dict) -> Staleness:
    """The results in `store` that `compare` with `config` (a stored run's, as JSON) would not
    reuse on any device: finished tasks whose fingerprint is none of those this process gives
    their prior on cpu or cuda, and experiments whose fingerprint is not this code's at the
    config's scale and seed. A prior that cannot be built here (a plug-in not loaded) or a
    dataset that no longer loads leaves its tasks `unchecked`, with why."""
    staleness, finished = Staleness(), store.finished()
    priors = sorted({key[2] for key in finished})
    try:
        data = load_dataset(config["dataset"])
        images = images_hash(data, config["n_images"], config["n_validation"])
    except (CsbenchError, KeyError) as exc:
        why = str(exc) if isinstance(exc, CsbenchError) else "the store holds no run configuration"
        staleness.unchecked = dict.fromkeys(priors, why)
        return staleness
    known, current = registry(), {}  # current: (prior, measurement) -> this checkout's fingerprints
    counts = Counter()
    for (_, measurement, prior, *_), fingerprint in finished.items():
        if prior in staleness.unchecked:
            continue
        if parse_name(prior, "prior")[0] not in known:
            staleness.unchecked[prior] = "not a prior known here: a plug-in not loaded (`--plugin`)"
            continue
        if (prior, measurement) not in current:
            try:
                current[prior, measurement] = {task_fingerprint(prior, data, images, measurement, device)
                                               for device in DEVICES}
            except Exception as exc:  # a plug-in of an earlier run that no longer builds: say so, report on
                staleness.unchecked[prior] = str(exc) if isinstance(exc, CsbenchError) else f"{type(exc).__name__}: {exc}"
                continue
        counts[prior] += fingerprint not in current[prior, measurement]
    staleness.tasks = {prior: n for prior, n in counts.items() if n}
    seeds = config.get("seeds") or [0]
    experiment_print = experiment_fingerprint(config.get("experiment_scale", 1.0), seeds[0])
    staleness.experiments = sorted(name for name, fingerprint in store.experiment_fingerprints().items()
                                   if fingerprint != experiment_print)
    return staleness


@dataclass
class Plan:
    """What `compare` does with a store: each task of the grid is `stored` (its fingerprint
    matches: kept), `reused` (copied from a `--reuse` directory where its fingerprint matches),
    `rerun` (stored by other code, parameters, checkpoints or images), `retry` (failed before) or
    `new`; experiments missing or of other code are run."""

    images: str                          # `images_hash` of the run's test and validation images
    prints: dict[str, str]               # prior -> this checkout's task fingerprint
    experiment_print: str
    todo: list[Task] = field(default_factory=list)
    fates: dict[str, Counter] = field(default_factory=dict)   # prior -> Counter over the fates
    experiments: list[str] = field(default_factory=list)      # to run
    stored_seconds: float = 0.0          # what the tasks to rerun or retry took when stored
    reused: dict[str, list[Task]] = field(default_factory=dict)   # --reuse directory -> tasks copied from it
    reused_experiments: dict[str, list[str]] = field(default_factory=dict)   # --reuse directory -> experiments

    def table(self) -> str:
        """Tasks per prior and fate, then one line on what is computed."""
        fates = ("stored", *(("reused",) if self.reused else ()), "rerun", "retry", "new")
        width = max([5, *map(len, self.fates)])
        lines = [f"{'prior':<{width}}  " + "  ".join(f"{fate:>6}" for fate in fates)]
        lines += [f"{prior:<{width}}  " + "  ".join(f"{counts[fate]:>6}" for fate in fates)
                  for prior, counts in self.fates.items()]
        total = sum(sum(counts.values()) for counts in self.fates.values())
        took = f"; the stored ones took {self.stored_seconds:.0f} task-seconds then" if self.stored_seconds else ""
        copied = [name for names in self.reused_experiments.values() for name in names]
        lines.append(f"{len(self.todo)} of {total} task(s) to compute{took}; "
                     f"experiments to run: {', '.join(self.experiments) or 'none'}"
                     + (f"; experiments reused: {', '.join(copied)}" if copied else ""))
        return "\n".join(lines)


def plan(config: RunConfig, store: ResultStore, data: Dataset) -> Plan:
    """The `Plan` of running `config` into `store` with this checkout. A task that `store` does not
    hold as this checkout would compute it is copied from the first `--reuse` directory that does."""
    images = images_hash(data, config.n_images, config.n_validation)
    prints = {spec: task_fingerprint(spec, data, images, config.measurement, config.device) for spec in config.priors}
    experiment_print = experiment_fingerprint(config.experiment_scale, config.seeds[0]) if config.experiments else ""
    result = Plan(images, prints, experiment_print, fates={spec: Counter() for spec in config.priors})
    done, seconds = store.finished(), store.task_seconds()
    sources, source_experiments = {}, {}
    for source in config.reuse:
        reading = ResultStore(Path(source) / "results.sqlite", read_only=True)
        sources[source], source_experiments[source] = reading.finished(), reading.experiment_fingerprints()
        reading.close()
    for task in task_grid(config):
        if done.get(task.key) == prints[task.prior]:
            fate = "stored"
        elif origin := _holder(sources, task.key, prints[task.prior]):
            fate = "reused"
            result.reused.setdefault(origin, []).append(task)
        else:
            fate = "rerun" if task.key in done else "retry" if task.key in seconds else "new"
            result.todo.append(task)
            result.stored_seconds += seconds.get(task.key) or 0.0
        result.fates[task.prior][fate] += 1
    stored = store.experiment_fingerprints()
    for name in config.experiments:
        if stored.get(name) == experiment_print:
            continue
        origin = _holder(source_experiments, name, experiment_print)
        if origin is None:
            result.experiments.append(name)
        else:
            result.reused_experiments.setdefault(origin, []).append(name)
    return result


def _holder(held: dict[str, dict], key: object, fingerprint: str) -> str | None:
    """The first `--reuse` directory whose store holds `key` (a task key or experiment name) with
    `fingerprint`; `held`: directory -> that store's {key: fingerprint}."""
    return next((source for source, prints in held.items() if prints.get(key) == fingerprint), None)


def dry_run(config: RunConfig) -> Plan:
    """The `Plan` of `compare(config)`, computing and writing nothing (not even `--out`); a run it
    could not resume is refused as `compare` refuses it."""
    validate(config)
    path = Path(config.out) / "results.sqlite"
    store = ResultStore(path, read_only=True) if path.is_file() else ResultStore(":memory:")
    try:
        _check_resumable(store, config, Path(config.out))
        return plan(config, store, load_dataset(config.dataset))
    finally:
        store.close()


def _run(config: RunConfig, store: ResultStore, out: Path) -> RunOutcome:
    data = load_dataset(config.dataset)
    store.write_truth(config.dataset, data.split("test", min(config.reconstructions, config.n_images)).numpy())
    grid, work = task_grid(config), plan(config, store, data)
    todo, pending, images, prints = work.todo, work.experiments, work.images, work.prints
    rerun = {prior: counts["rerun"] for prior, counts in work.fates.items() if counts["rerun"]}
    outcome = RunOutcome(out, recomputed=sum(rerun.values()))
    for source in {**work.reused, **work.reused_experiments}:
        tasks, experiments = work.reused.get(source, []), work.reused_experiments.get(source, [])
        reading = ResultStore(Path(source) / "results.sqlite", read_only=True)
        try:
            store.copy_from(reading, [task.key for task in tasks], experiments, config.reconstructions)
        finally:
            reading.close()
        counts = per_prior(Counter(task.prior for task in tasks))
        also = f" and experiment(s) {', '.join(experiments)}" if experiments else ""
        print(f"{len(tasks)} task(s){also} reused from {source}{f' ({counts})' if counts else ''}: computed there "
              "with this checkout's code, parameters, checkpoints, images and device", file=sys.stderr)
    if outcome.recomputed:
        print(f"{outcome.recomputed} stored task(s) are rerun ({per_prior(rerun)}): the prior, its parameters, code or "
              "checkpoint, or the images changed since they were computed", file=sys.stderr)
    sessions = store.sessions()
    session = {**environment(config.device), "device": config.device, "executor": config.executor,
               "workers": config.workers}
    if todo or pending:  # a rerun that only rebuilds the report is not a session
        store.set_meta(sessions=sessions + [session])
    store.set_meta(config=config.to_dict())
    # The experiments first (each is as long as the longest tasks), then the costliest tasks.
    kinds = {spec: make_prior(spec).kind for spec in config.priors}
    jobs = [ExperimentJob(name, config.experiment_scale, config.seeds[0]) for name in pending]
    jobs += longest_first(todo, kinds)
    count, finished = len(grid) + len(pending), len(grid) - len(todo)
    with ProgressBar(grid, jobs, kinds, config.quiet) as bar:
        def show(task: Task | ExperimentJob, text: str, done: float | None) -> None:
            if done is not None:
                bar.advance(task, done)
            bar.say(f"{finished}/{count} tasks, {task.label}: {text}")

        for result in EXECUTORS[config.executor](jobs, config, show):
            if isinstance(result, ExperimentResult):
                if result.status == "ok" and result.fingerprint != work.experiment_print:
                    why = f"its worker ran other code than this run fingerprinted: {_WHY_OTHER_CODE}"
                    result = ExperimentResult(result.task, "failed", result.seconds, error=why)
                if result.status == "ok":
                    store.write_experiment(result.task.name, result.table, work.experiment_print)
                else:
                    outcome.failures[result.task.label] = [result.error]
            else:
                if result.fingerprint and result.fingerprint != prints[result.task.prior]:
                    result = _not_as_fingerprinted(result, images, config)
                store.write_task(result.task.as_dict(), result.status, result.seconds, result.rows,
                                 result.reconstructions, prints[result.task.prior], result.tuning)
            finished += 1
            bar.say(f"{finished}/{count} tasks, {result.task.label}")
            bar.advance(result.task, 1.0)
    if todo or pending:
        store.set_meta(sessions=sessions + [{**session, "tasks": len(todo), "experiments": pending}])
    results = store.results()
    failed = results[results.status == "failed"].drop_duplicates(TASK_KEY)
    for prior, rows in failed.groupby("prior", sort=True):
        outcome.failures[prior] = rows.error.tolist()
    return outcome
