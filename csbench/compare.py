"""`csbench compare`: validate the configuration, run the missing tasks into the store, report."""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from csbench import __version__
from csbench.config import RunConfig
from csbench.data import load_dataset
from csbench.errors import CsbenchError
from csbench.executors import EXECUTORS
from csbench.measurements import get_measurement
from csbench.priors import load_plugin, make_prior
from csbench.report import write_outputs
from csbench.runner import task_grid
from csbench.store import ResultStore

# Settings a stored run must share with a rerun that resumes it.
RESUME_KEYS = ("n_images", "n_validation", "reconstructions")


def validate(config: RunConfig) -> None:
    """Fail fast, before any work, on a name that does not resolve."""
    for plugin in config.plugins:
        load_plugin(plugin)
    data = load_dataset(config.dataset)
    if data.size("test") < 1:
        raise CsbenchError(f"dataset {config.dataset!r} has no test images")
    get_measurement(config.measurement)
    for spec in config.priors:
        make_prior(spec)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise CsbenchError("--device cuda asked for, but torch sees no CUDA device")


def environment(device: str = "cpu") -> dict:
    env = {"csbench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
           "platform": platform.platform(), "processor": platform.machine(),
           "threads": torch.get_num_threads()}
    if device == "cuda":
        env["accelerator"] = torch.cuda.get_device_name()
    return env


def compare(config: RunConfig) -> Path:
    """Run (or resume) the comparison of `config` and write every output into `config.out`."""
    validate(config)
    out = Path(config.out)
    store = ResultStore(out / "results.sqlite")
    stored = store.meta().get("config")
    if stored:
        clash = [k for k in RESUME_KEYS if stored.get(k) != getattr(config, k)]
        if clash:
            raise CsbenchError(f"{out} holds a run with different {', '.join(clash)}; "
                               "use another --out or the same settings to resume")
    data = load_dataset(config.dataset)
    store.write_truth(config.dataset, data.split("test", min(config.reconstructions, config.n_images)).numpy())
    grid = task_grid(config)
    done = store.finished()
    todo = [task for task in grid if task.key not in done]
    pending = [name for name in config.experiments if name not in store.experiments()]
    sessions = store.sessions()
    session = {**environment(config.device), "device": config.device, "executor": config.executor,
               "workers": config.workers}
    if todo or pending:  # a rerun that only rebuilds the report is not a session
        store.set_meta(sessions=sessions + [session])
    store.set_meta(config=config.to_dict())
    with tqdm(total=len(grid), initial=len(grid) - len(todo), unit="task", disable=config.quiet,
              desc="compare") as bar:
        for result in EXECUTORS[config.executor](todo, config):
            store.write_task(result.task.as_dict(), result.status, result.seconds, result.rows,
                             result.reconstructions)
            bar.set_postfix_str(f"{result.task.prior} m={result.task.m}")
            bar.update()
    run_experiments(config, store)
    if todo or pending:
        store.set_meta(sessions=sessions + [{**session, "tasks": len(todo), "experiments": pending}])
    store.close()
    write_outputs(out)
    return out


def run_experiments(config: RunConfig, store: ResultStore) -> None:
    """Theory experiments (phase transitions, landscape) named by the preset, once per store."""
    from csbench.experiments import EXPERIMENTS

    done = store.experiments()
    for name in config.experiments:
        if name not in EXPERIMENTS:
            raise CsbenchError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
        if name not in done:
            if not config.quiet:
                print(f"experiment {name} ...", file=sys.stderr)
            store.write_experiment(name, EXPERIMENTS[name](scale=config.experiment_scale, seed=config.seeds[0]))
