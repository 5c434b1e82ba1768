"""Tasks: shared measurements across priors, tuning on validation only, failures recorded."""
import math

import pytest
import torch

from csbench.config import make_config
from csbench.datasets import load_dataset
from csbench.priors import Prior, load_plugin
from csbench.runner import ExperimentJob, Task, failed_result, make_problem, run_task, task_grid, tune

PLUGINS = ("tests/plugins/odd_priors.py", "examples/min_norm_prior.py")


@pytest.fixture(autouse=True)
def plugins():
    for plugin in PLUGINS:
        load_plugin(plugin)


def config(**kw):
    return make_config("quick", plugins=",".join(PLUGINS), n_images=3, n_validation=3, **kw)


def test_every_prior_sees_the_same_operator_and_noise():
    x = load_dataset("mnist").split("test", 4)
    a = make_problem(x, Task("mnist", "gaussian", "vae", 50, 0.1, 0), "test", "cpu")
    b = make_problem(x, Task("mnist", "gaussian", "lasso-dct", 50, 0.1, 0), "test", "cpu")
    c = make_problem(x, Task("mnist", "gaussian", "vae", 50, 0.1, 1), "test", "cpu")
    assert torch.equal(a.y, b.y) and torch.equal(a.operator.dense(), b.operator.dense())
    assert not torch.equal(a.y, c.y)
    noise = a.y - a.operator.forward(x.reshape(4, -1))
    assert noise.pow(2).sum(1).mean().item() == pytest.approx(0.01, rel=0.6)  # E||e||^2 = sigma^2


def test_task_grid_covers_the_product():
    grid = task_grid(config(priors="min-norm,crashing", m="10,20", noise="0.1,1", seed="0,1"))
    assert len(grid) == 2 * 2 * 2 * 2 and len(set(grid)) == len(grid)


def test_an_experiment_runs_as_a_job_and_fails_alone(monkeypatch):
    from csbench.experiments import run

    job = ExperimentJob("landscape", 0.1, 0)
    result = run_task(job, config())
    assert result.status == "ok" and set(result.table.depth) == {2, 3, 4, 5}
    monkeypatch.setitem(run.EXPERIMENTS, "landscape", lambda **kw: 1 / 0)
    failed = run_task(job, config())
    assert failed.status == "failed" and failed.table is None and "ZeroDivisionError" in failed.error
    assert failed_result(job, config(), "worker died: exit code 1", 0.0).error == "worker died: exit code 1"


def test_a_crashing_prior_is_recorded_as_failed_with_its_message():
    result = run_task(Task("mnist", "gaussian", "crashing", 20, 0.1, 0), config())
    assert result.status == "failed" and len(result.rows) == 3
    assert all(r["status"] == "failed" and "solver diverged" in r["error"] for r in result.rows)


def test_a_prior_that_reads_the_test_split_fails_its_task():
    result = run_task(Task("mnist", "gaussian", "peeking", 20, 0.1, 0), config())
    assert result.status == "failed" and all("read the test split" in r["error"] for r in result.rows)


def test_an_unsupported_measurement_is_skipped_with_the_reason():
    result = run_task(Task("mnist", "gaussian", "only-one-bit", 20, 0.1, 0), config())
    assert result.status == "skipped" and "identity" in result.rows[0]["error"]


def test_a_real_prior_scores_every_instance():
    result = run_task(Task("mnist", "gaussian", "min-norm", 300, 0.1, 0), config())
    assert result.status == "ok" and [r["instance"] for r in result.rows] == [0, 1, 2]
    assert all(0 < r["mse"] < 0.2 and math.isfinite(r["psnr"]) for r in result.rows)
    assert len(result.reconstructions) == 3


class _Ridge(Prior):
    """x = argmin ||A x - y||^2 + lam ||x||^2; records which images tuning showed it."""
    name = "ridge-probe"
    kind = "other"
    description = "ridge regression"
    parameters = {"lam": 1.0}
    tuning = {"lam": [1e-3, 1e-1, 1e1, 1e3]}

    def recover(self, problem):
        A = problem.operator.dense()
        gram = A.transpose(1, 2) @ A + self.params["lam"] * torch.eye(problem.n)
        x = torch.linalg.solve(gram, A.transpose(1, 2) @ problem.y.unsqueeze(-1))
        return x.reshape(problem.batch, *problem.shape)


def test_tuning_picks_the_best_grid_point_on_validation_images():
    cfg = config()
    task = Task("mnist", "gaussian", "ridge-probe", 100, 0.1, 0)
    data = load_dataset("mnist")
    tuned, chosen, points = tune(_Ridge(), task, cfg, data)
    x = data.split("validation", cfg.n_validation)
    problem = make_problem(x, task, "validation", "cpu")
    errors = {lam: (_Ridge(lam=lam).recover(problem) - x).pow(2).mean().item() for lam in _Ridge.tuning["lam"]}
    assert chosen == {"lam": min(errors, key=errors.get)} and tuned.params["lam"] == chosen["lam"]
    assert [p["params"] for p in points] == [{"lam": lam} for lam in _Ridge.tuning["lam"]]
    assert [p["score"] for p in points] == pytest.approx(list(errors.values()), rel=1e-4)
    assert [p["chosen"] for p in points] == [lam == chosen["lam"] for lam in _Ridge.tuning["lam"]]
