"""Tasks: build the shared measurement problem, tune the prior on validation, recover, score.

A task is (dataset, measurement, prior, m, noise, seed). Every prior of a task grid sees the
same test images, the same operators A and the same noise e: their generators are derived
from (seed, dataset, measurement, m, noise) only, never from the prior.
"""
from __future__ import annotations

import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from csbench.config import RunConfig
from csbench.datasets import Dataset, dataset_signature, load_dataset
from csbench.errors import CsbenchError
from csbench.fingerprint import array_hash, changed_sources, code_hash, combine
from csbench.generative.checkpoints import sha256_of
from csbench.measurements import MEASUREMENTS, get_measurement
from csbench.metrics import align, evaluate, mse
from csbench.priors import Prior, PriorContext, SealedDataset, load_plugin, make_prior, test_split_refused
from csbench.problem import Problem
from csbench.progress import progress, task_share
from csbench.rng import torch_generator
from csbench.store import TASK_KEY


@dataclass(frozen=True)
class Task:
    dataset: str
    measurement: str
    prior: str
    m: int
    noise: float
    seed: int

    @property
    def key(self) -> tuple:
        return (self.dataset, self.measurement, self.prior, self.m, self.noise, self.seed)

    def as_dict(self) -> dict:
        return dict(zip(TASK_KEY, self.key))

    @property
    def label(self) -> str:
        return f"{self.prior} m={self.m}"


@dataclass(frozen=True)
class ExperimentJob:
    """A theory experiment (csbench/experiments), run by the executors beside the tasks."""
    name: str
    scale: float
    seed: int

    @property
    def label(self) -> str:
        return f"experiment {self.name}"


@dataclass
class ExperimentResult:
    task: ExperimentJob
    status: str  # ok | failed
    seconds: float
    table: pd.DataFrame | None = None
    error: str = ""
    fingerprint: str = ""  # experiment_fingerprint as the process that ran it had it ("" if it failed)


@dataclass
class TaskResult:
    task: Task
    status: str
    seconds: float
    rows: list[dict]
    reconstructions: dict[int, np.ndarray] = field(default_factory=dict)
    tuning: list[dict] = field(default_factory=list)  # {params, score, chosen} per grid point
    images: str = ""       # images_hash of the images the task ran on ("" if it failed before loading them)
    fingerprint: str = ""  # task_fingerprint as the process that ran it had it ("" likewise)


def task_grid(config: RunConfig) -> list[Task]:
    """Every task of the configuration, seed by seed, noise by noise, m by m, prior by prior."""
    return [Task(config.dataset, config.measurement, prior, m, noise, seed)
            for seed in config.seeds for noise in config.noise for m in config.m
            for prior in config.priors]


def images_hash(data: Dataset, n_test: int, n_validation: int) -> str:
    """sha256 of the images a run uses, the first n of the test and of the validation split: part
    of every task's fingerprint, and sent back with each task's result, so that a worker that
    loaded other images (another environment, a data file rewritten under it) is caught."""
    return array_hash(data.split("test", n_test).numpy(), data.split("validation", n_validation).numpy())


# Progress lines only reach the caller: they are left out of every identity (a prior's, a measurement
# model's, an experiment's, the runner's), so that editing them recomputes nothing.
SILENT = frozenset({"csbench.progress"})
# Modules of the runner's closure that change no task's numbers except through what
# `task_fingerprint` hashes anyway, left out of its `scoring` part (with what only they import), so
# that editing them recomputes nothing: the progress lines, the run settings and presets (a task
# gets their values as its images, hashed, and its device), the checkpoint loader (the runner only
# hashes the files; a generative prior's own closure holds the loader and the models), and the
# modules of the measurement models (the task's own model is hashed as `measurement`; the registry
# that builds it stays in).
NOT_SCORING = SILENT | frozenset({"csbench.config", "csbench.generative.checkpoints",
                                  *(model.__module__ for model in MEASUREMENTS.values())})


def task_fingerprint(spec: str, data: Dataset, images: str, measurement: str, device: str) -> str:
    """sha256 of everything a task's numbers depend on besides its key (csbench/fingerprint.py), as
    this process has it: the prior's code, resolved parameters, tuning grid and checkpoints, the
    measurement model's code, the runner's and scoring code (less `NOT_SCORING`), the images
    (`images_hash`) and the device. The calling process takes it per prior before a run, each task's
    worker again: a result whose two differ (an edit during the run, a worker with other data) is
    not stored."""
    prior = make_prior(spec)
    return combine(images=images, measurement=code_hash(type(get_measurement(measurement)), exclude=SILENT),
                   scoring=code_hash(sys.modules[__name__], exclude=NOT_SCORING), device=device,
                   prior=code_hash(type(prior), exclude=SILENT),
                   params=prior.params, grid=prior.tuning_grid(), assets=[sha256_of(p) for p in prior.assets(data)])


def experiment_fingerprint(scale: float, seed: int) -> str:
    """What an experiment's table depends on: its code (csbench/experiments, not its figures),
    scale and seed. Taken, like `task_fingerprint`, by the calling process before a run and by the
    worker that runs the experiment; a table whose two differ is not stored."""
    from csbench.experiments import run

    return combine(code=code_hash(run, exclude=SILENT), scale=scale, seed=seed)


# A worker's cached datasets and set-up priors: the latest version of each, an older one dropped
# when it changes, so a long-lived worker holds one copy per dataset spec and per prior.
_DATASETS: dict[str, tuple[tuple, Dataset]] = {}                # spec -> (files' signature, dataset)
_PRIORS: dict[tuple, tuple[tuple, Prior]] = {}                  # (spec, device, seed) -> (identity, prior)


def _dataset(spec: str) -> Dataset:
    """The dataset of `spec`, loaded once per process while the files it reads stay the same (one
    added, removed or rewritten, or another directory named by the environment, loads it afresh)."""
    signature = dataset_signature(spec)
    cached = _DATASETS.get(spec)
    if cached is None or cached[0] != signature:
        _DATASETS[spec] = cached = (signature, load_dataset(spec))
    return cached[1]


def _prepared_prior(spec: str, data: Dataset, device: str, seed: int, plugins: tuple) -> Prior:
    """The set-up prior of a task; set up once per (class, spec, dataset as loaded, device, seed,
    checkpoints) per process, so checkpoints load once, and a retrained checkpoint (another sha256),
    a changed `folder:` dataset or a plug-in file edited since (a new class) is set up afresh."""
    for plugin in plugins:
        load_plugin(plugin)
    prior = make_prior(spec)
    key, identity = (spec, device, seed), (type(prior), data, tuple(sha256_of(path) for path in prior.assets(data)))
    cached = _PRIORS.get(key)
    if cached is None or cached[0] != identity:
        with test_split_refused():
            prior.setup(PriorContext(dataset=SealedDataset(data), shape=tuple(data.shape), device=device, seed=seed))
        _PRIORS[key] = cached = (identity, prior)
    return cached[1]


def make_problem(x: torch.Tensor, task: Task, split: str, device: str) -> Problem:
    """Measure the flattened signals x (B, C, H, W) with the task's operator and noise."""
    model = get_measurement(task.measurement)
    shape = tuple(x.shape[1:])
    m = model.effective_m(task.m, shape)
    parts = (task.seed, task.dataset, task.measurement, task.m, task.noise, split)
    operator = model.operator(m, shape, x.shape[0], torch_generator(*parts, "operator"))
    y = model.measure(x.reshape(x.shape[0], -1), operator, task.noise, torch_generator(*parts, "noise"))
    return Problem(y=y.to(device), operator=operator.to(device), shape=shape, noise=task.noise,
                   link=model.link, measurement=task.measurement, dataset=task.dataset,
                   generator=torch_generator(*parts, "prior"))


def checked(prior: Prior, problem: Problem, x_hat: object) -> torch.Tensor:
    """What a prior returned, checked: a real (B, C, H, W) tensor, moved to the CPU as float32."""
    expected = (problem.batch, *problem.shape)
    if not isinstance(x_hat, torch.Tensor) or tuple(x_hat.shape) != expected:
        got = tuple(x_hat.shape) if isinstance(x_hat, torch.Tensor) else type(x_hat).__name__
        raise CsbenchError(f"{prior.name}.recover returned {got}, expected a tensor of shape {expected}")
    if x_hat.is_complex() or x_hat.dtype == torch.bool:
        raise CsbenchError(f"{prior.name}.recover returned a {x_hat.dtype} tensor, expected real values")
    return x_hat.detach().to("cpu", torch.float32)


def recover(prior: Prior, problem: Problem) -> torch.Tensor:
    """Run a prior and check what it returns: (B, C, H, W), on the CPU, as float32."""
    return checked(prior, problem, prior.recover(problem))


def tune(prior: Prior, task: Task, config: RunConfig, data: Dataset) -> tuple[Prior, dict, list[dict]]:
    """Pick the tuning-grid point with the lowest mean MSE on validation images of `data` (never
    test). Returns the tuned prior, the chosen point, and every point's {params, score, chosen}.
    A prior without a grid recovers no validation images at all."""
    grid = prior.tuning_grid()
    if not grid:
        return prior, {}, []
    x = data.split("validation", config.n_validation)
    problem = make_problem(x, task, "validation", config.device)
    progress(f"tuning {len(grid)} grid points on {x.shape[0]} validation images", done=0.0)
    scores = []
    for x_hat in prior.recover_grid(problem, grid):
        try:
            x_hat = checked(prior, problem, x_hat) if not isinstance(x_hat, Exception) else None
        except CsbenchError:
            x_hat = None
        score = math.inf if x_hat is None else float(mse(align(x_hat, x, problem.link), x).nanmean())
        scores.append(score if math.isfinite(score) else math.inf)  # a failed point is not chosen
    chosen = int(np.argmin(scores))
    points = [{"params": combo, "score": score, "chosen": i == chosen}
              for i, (combo, score) in enumerate(zip(grid, scores))]
    return prior.with_params(**grid[chosen]), grid[chosen], points


def tuning_share(grid_points: int, config: RunConfig) -> float:
    """The part of a task that tuning takes, for progress only: its recoveries (validation images x
    grid points) against the test recovery's (test images)."""
    tuning = config.n_validation * grid_points
    return tuning / (tuning + config.n_images)


def run_experiment(job: ExperimentJob) -> ExperimentResult:
    """One theory experiment's table; an exception fails the experiment, not the run."""
    from csbench.experiments import run

    start = time.perf_counter()
    identity = experiment_fingerprint(job.scale, job.seed)  # the sources as loaded, read now
    try:
        table = run.EXPERIMENTS[job.name](scale=job.scale, seed=job.seed)
    except Exception as exc:  # recorded, the run goes on
        return ExperimentResult(job, "failed", time.perf_counter() - start, error=_message(exc))
    if changed := changed_sources(run, exclude=SILENT):
        return ExperimentResult(job, "failed", time.perf_counter() - start, error=_stale(changed))
    return ExperimentResult(job, "ok", time.perf_counter() - start, table, fingerprint=identity)


def run_task(task: Task | ExperimentJob, config: RunConfig) -> TaskResult | ExperimentResult:
    """Everything for one task; failures become rows with status `failed` and the message.
    An ExperimentJob runs its experiment (executors treat both alike)."""
    if isinstance(task, ExperimentJob):
        return run_experiment(task)
    start = time.perf_counter()
    base = {**task.as_dict(), "m_requested": task.m, "kind": "", "params": "{}"}
    n = config.n_images
    if config.device == "cuda":  # full float32, as on the CPU: no TF32 in matmuls or convolutions
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        data = _dataset(task.dataset)
        images = images_hash(data, n, config.n_validation)
        prior = _prepared_prior(task.prior, data, config.device, task.seed, config.plugins)
        base["kind"] = prior.kind
        model = get_measurement(task.measurement)
        identity = task_fingerprint(task.prior, data, images, task.measurement, config.device)  # sources read now
        base["m"] = model.effective_m(task.m, tuple(data.shape))
        with test_split_refused():  # every call into the prior: the test split is out of reach
            reason = prior.supports(model, SealedDataset(data))
            if reason:
                return _uniform(task, base, n, "skipped", reason, start, images, identity)
            share = tuning_share(len(prior.tuning_grid()), config)
            with task_share(0.0, share):
                tuned, chosen, points = tune(prior, task, config, data)
        base["params"] = json.dumps({**prior.params, **chosen}, sort_keys=True, default=str)
        x = data.split("test", n)
        problem = make_problem(x, task, "test", config.device)
        with task_share(share, 1.0):
            progress(f"recovering {x.shape[0]} test images", done=0.0)
            t0 = time.perf_counter()
            with test_split_refused():
                x_hat = recover(tuned, problem)
        seconds = (time.perf_counter() - t0) / x.shape[0]
        scores = {k: v.double().numpy() for k, v in evaluate(x_hat, x, problem.link).items()}
    except Exception as exc:  # recorded, the run goes on
        return _uniform(task, base, n, "failed", _message(exc), start)
    rows = [{**base, "instance": i, "mse": _finite(scores["mse"][i]), "psnr": _finite(scores["psnr"][i]),
             "ssim": _finite(scores["ssim"][i]), "seconds": seconds,
             "status": "ok" if math.isfinite(scores["mse"][i]) else "failed",
             "error": "" if math.isfinite(scores["mse"][i]) else "non-finite reconstruction"}
            for i in range(x.shape[0])]
    if changed := (changed_sources(type(prior), type(model), exclude=SILENT)
                   + changed_sources(sys.modules[__name__], exclude=NOT_SCORING)):
        return _uniform(task, base, n, "failed", _stale(changed), start)
    shown = x_hat[: config.reconstructions].clamp(0, 1).numpy()
    return TaskResult(task, "ok", time.perf_counter() - start, rows, dict(enumerate(shown)), points, images, identity)


def _message(exc: Exception) -> str:
    """One line: the exception, and where it was raised unless it is csbench's own error."""
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if not isinstance(exc, CsbenchError):
        message += f" (at {traceback.extract_tb(exc.__traceback__)[-1].name})"
    return message


def _stale(changed: list[str]) -> str:
    """Why a result is not kept: this process runs other code than its files now hold, and the
    result would be stored under their identity."""
    return (f"{', '.join(changed[:3])} changed on disk since this process loaded it; a rerun recomputes "
            "it (restart long-lived workers, e.g. a Dask cluster, first)")


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _uniform(task: Task, base: dict, n: int, status: str, message: str, start: float,
             images: str = "", identity: str = "") -> TaskResult:
    rows = [{**base, "instance": i, "mse": None, "psnr": None, "ssim": None, "seconds": None,
             "status": status, "error": message} for i in range(n)]
    return TaskResult(task, status, time.perf_counter() - start, rows, images=images, fingerprint=identity)


def failed_result(task: Task | ExperimentJob, config: RunConfig, message: str, start: float
                  ) -> TaskResult | ExperimentResult:
    """A task that returned nothing (it timed out, its worker died): one failed row per instance.
    `start` is the `time.perf_counter()` at which the caller started the task."""
    if isinstance(task, ExperimentJob):
        return ExperimentResult(task, "failed", time.perf_counter() - start, error=message)
    try:
        kind = make_prior(task.prior).kind  # the caller has the task's plug-ins loaded
    except CsbenchError:
        kind = ""
    base = {**task.as_dict(), "m_requested": task.m, "kind": kind, "params": "{}"}
    return _uniform(task, base, config.n_images, "failed", message, start)
