"""Executors: a task past the timeout or whose worker dies fails alone and the sweep goes on;
Ctrl-C stops a hung run at once and keeps what finished; a bad Dask scheduler is one error line."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from csbench.cli import main
from csbench.config import make_config
from csbench.executors import EXECUTORS
from csbench.compare import ProgressBar, expected_cost, longest_first
from csbench.runner import ExperimentJob, task_grid

PLUGIN = "tests/plugins/dying_priors.py"


@pytest.fixture(autouse=True)
def bounded_hang(monkeypatch):
    """A `hanging` task that the executor fails to stop returns (ok) after a minute: the test fails
    instead of hanging."""
    monkeypatch.setenv("CSBENCH_TEST_HANG_SECONDS", "60")


def run(executor, priors, m="10", workers=2, **kw):
    config = make_config("quick", dataset="mnist", priors=priors, m=m, n_images=2, n_validation=2,
                         executor=executor, workers=workers, plugins=PLUGIN, quiet=True, **kw)
    results = list(EXECUTORS[executor](task_grid(config), config))
    assert sorted(r.task.key for r in results) == sorted(t.key for t in task_grid(config))  # none lost
    return {(r.task.prior, r.task.m): r for r in results}


def errors(result):
    assert result.status == "failed" and len(result.rows) == 2
    assert all(row["status"] == "failed" for row in result.rows)
    return {row["error"] for row in result.rows}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_a_task_past_the_timeout_fails_and_the_sweep_goes_on(executor):
    results = run(executor, "hanging,adjoint", m="10,25", task_timeout=5)
    for m in (10, 25):
        assert errors(results["hanging", m]) == {"timed out after 5 s"}
        assert results["adjoint", m].status == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_a_worker_that_dies_fails_its_task_only(executor, monkeypatch):
    monkeypatch.setenv("CSBENCH_TEST_MISBEHAVE_AT", "25")
    timeout = {"serial": 60, "processes": None}[executor]  # serial isolates tasks only with a timeout
    results = run(executor, "exiting,killed,adjoint", m="10,25", task_timeout=timeout)
    assert errors(results["exiting", 25]) == {"worker died: exit code 3"}
    assert errors(results["killed", 25]) == {"worker died: killed by SIGKILL"}
    assert all(results[prior, m].status == "ok" for prior, m in results if m == 10 or prior == "adjoint")


def test_without_a_timeout_serial_runs_in_this_process():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = run("serial", "adjoint")
    assert results["adjoint", 10].status == "ok"
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "processes", "dask"])
def test_ctrl_c_stops_a_hung_run_and_keeps_the_finished_tasks(executor, tmp_path):
    proc, hung = _hung_run(executor, tmp_path)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole process group
    stderr = _end(proc)
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1].startswith("error: interrupted"), stderr
    assert _stored(tmp_path / "out") == ["adjoint"]
    _wait_for(lambda: not psutil.pid_exists(hung), limit=60)  # the hung worker is gone


@pytest.mark.slow
def test_a_killed_run_leaves_no_hung_worker(tmp_path):
    proc, hung = _hung_run("processes", tmp_path)
    proc.kill()
    _end(proc)
    assert _stored(tmp_path / "out") == ["adjoint"]
    _wait_for(lambda: not psutil.pid_exists(hung), limit=60)


def _hung_run(executor, tmp_path):
    """A compare run whose `adjoint` task is stored and whose `hanging` task hangs: (process, hung pid)."""
    pid_file = tmp_path / "hanging.pid"
    env = {**os.environ, "CSBENCH_TEST_PID_FILE": str(pid_file), "CSBENCH_TEST_HANG_SECONDS": "600"}
    timeout = ["--task-timeout", "600"] if executor == "serial" else []  # serial: in a child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "csbench", "compare", "--preset", "quick", "--quiet", "--plugin", PLUGIN,
         "--priors", "adjoint,hanging", "--m", "10", "--n-images", "2", "--executor", executor,
         "--workers", "2", "--out", str(tmp_path / "out"), *timeout],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        preexec_fn=_ctrl_c_default)
    try:
        _wait_for(lambda: pid_file.exists() and _stored(tmp_path / "out") == ["adjoint"], proc)
    except AssertionError:
        _end(proc)
        raise
    return proc, int(pid_file.read_text())


def _ctrl_c_default():
    """SIGINT's default action in the run, as a terminal gives it: a test suite started in the
    background of a non-interactive shell (CI, `... &`) has SIGINT ignored, which a child inherits."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _end(proc):
    """Wait for `proc` (killed after a minute); its stderr."""
    try:
        return proc.communicate(timeout=60)[1]
    finally:
        proc.kill()


def _stored(out):
    try:
        with sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True) as db:
            return sorted(p for (p,) in db.execute("SELECT prior FROM tasks"))
    except sqlite3.Error:  # not created yet
        return []


def _wait_for(condition, proc=None, limit=120):
    """Poll until `condition()` holds; fail if `proc` ends first or after `limit` seconds."""
    end = time.monotonic() + limit
    while not condition():
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.2)


@pytest.mark.slow
def test_dask_fails_a_timed_out_task_and_one_that_kills_its_worker():
    """A real local cluster on loopback, with one worker: the tasks waiting there while another
    one kills it are resubmitted, not failed."""
    results = run("dask", "hanging,exiting,adjoint", workers=1, task_timeout=5)
    assert errors(results["hanging", 10]) == {"timed out after 5 s"}
    assert errors(results["exiting", 10]) == {"worker died: 1 Dask worker(s) died running it"}
    assert results["adjoint", 10].status == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("address", ["not-an-address", "tcp://127.0.0.1:1"])
def test_an_unusable_dask_scheduler_is_one_error_line(address, tmp_path, capsys):
    code = main(["compare", "--preset", "quick", "--quiet", "--priors", "lasso-pixel", "--m", "10",
                 "--n-images", "2", "--executor", "dask", "--scheduler", address, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: cannot reach the Dask scheduler at {address}: ")
    assert len(err.strip().splitlines()) == 1



def test_workers_take_the_costliest_tasks_first():
    """Generative before other before sparsity priors, larger m first: the short tasks come last."""
    tasks = task_grid(make_config("quick", priors="lasso-dct,vae,lasso-pixel", m="10,100"))
    order = [(t.prior, t.m) for t in longest_first(tasks, {"lasso-dct": "sparsity", "vae": "generative",
                                                             "lasso-pixel": "other"})]
    assert order == [("vae", 100), ("vae", 10), ("lasso-pixel", 100), ("lasso-pixel", 10),
                     ("lasso-dct", 100), ("lasso-dct", 10)]


@pytest.mark.slow
def test_the_progress_bar_counts_expected_seconds(capsys, tmp_path):
    """The bar advances by each job's expected cost (a generative task 6 sparsity tasks, an
    experiment as a generative task), stored tasks start as done, and a run ends at 100% with
    every task counted."""
    kinds = {"vae": "generative", "lasso-dct": "sparsity"}
    grid = task_grid(make_config("quick", priors="vae,lasso-dct", m="10,100"))
    stored = grid[0]
    jobs = [ExperimentJob("phase", 1.0, 0)] + longest_first(grid[1:], kinds)
    bar = ProgressBar(grid, jobs, kinds, quiet=True)
    assert (bar.total, bar.done) == (2 * 6 + 2 * 1 + 6, expected_cost(stored, kinds))
    assert [expected_cost(job, kinds) for job in jobs] == [6, 6, 1, 1]

    code = main(["compare", "--priors", "lasso-pixel,min-norm", "--plugin", "examples/min_norm_prior.py",
                 "--m", "10", "--n-images", "2", "--out", str(tmp_path / "out")])   # costs 1 and 2
    last = capsys.readouterr().err.split("\r")[-1]
    assert code == 0 and "100%" in last and "2/2 tasks" in last, last


def test_a_running_task_moves_the_bar_by_the_fraction_of_it_done():
    """A task's reported fraction counts that much of its cost, never less than already counted,
    and its end the rest: a run ends at its total whatever was reported on the way."""
    kinds = {"vae": "generative", "lasso-dct": "sparsity"}
    grid = task_grid(make_config("quick", priors="vae,lasso-dct", m="10"))
    vae, lasso = grid
    bar = ProgressBar(grid, grid, kinds, quiet=True)
    bar.advance(vae, 0.25)
    assert bar.done == pytest.approx(0.25 * 6)
    bar.advance(vae, 0.1)                       # an earlier message arriving late: no step back
    bar.advance(lasso, 0.5)
    assert bar.done == pytest.approx(0.25 * 6 + 0.5)
    bar.advance(vae, 1.0)
    bar.advance(lasso, 1.0)
    assert bar.done == pytest.approx(bar.total) and bar.counted == {}


def test_progress_counts_a_share_of_the_task():
    """`done` inside `task_share(a, b)` reaches the route as a + done (b - a), nested shares compose,
    and `step_progress` reports every tenth of a loop."""
    from csbench.progress import progress, route_progress, step_progress, task_share

    seen = []
    route_progress(lambda text, done: seen.append((text, done)))
    try:
        progress("start", done=0.0)
        with task_share(0.5, 1.0):
            progress("half-way through the second half", done=0.5)
            with task_share(0.0, 0.5):
                progress("the end of its first half", done=1.0)
            progress("no fraction")
        for step in range(20):
            step_progress("loop", step, 20)
    finally:
        route_progress(None)
    assert seen[:4] == [("start", 0.0), ("half-way through the second half", 0.75),
                        ("the end of its first half", 0.75), ("no fraction", None)]
    assert seen[4:] == [(f"loop, step {step}/20", step / 20) for step in range(0, 20, 2)]


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_progress_inside_a_task_reaches_the_caller(executor):
    """Each task reports its stages (tuning, recovery) while it runs, from a worker process too,
    with the fraction of the task done: tuning from 0, the test recovery from tuning's share
    (validation recoveries against test recoveries); a VAE without a grid, its Adam steps."""
    from csbench.config import make_config
    from csbench.executors import EXECUTORS
    from csbench.priors import make_prior
    from csbench.runner import Task, tuning_share

    points = len(make_prior("lasso-pixel").tuning_grid())
    config = make_config("quick", priors="lasso-pixel", n_images=2, n_validation=3, workers=1,
                         executor=executor)
    tasks = [Task("mnist", "gaussian", "lasso-pixel", m, 0.1, 0) for m in (10, 20)]
    seen = []
    results = list(EXECUTORS[executor](tasks, config, lambda task, text, done: seen.append((task.m, text, done))))
    assert [r.status for r in results] == ["ok", "ok"]
    assert tuning_share(points, config) == pytest.approx(3 * points / (3 * points + 2))
    for m in (10, 20):
        stages = [(text, done) for task_m, text, done in seen if task_m == m]
        assert stages[0] == (f"tuning {points} grid points on 3 validation images", 0.0)
        assert ("recovering 2 test images", tuning_share(points, config)) in stages

    vae = Task("mnist", "gaussian", "vae", 10, 0.1, 0)
    seen.clear()
    config = make_config("quick", priors="vae", n_images=1, n_validation=1, workers=1, executor=executor)
    assert [r.status for r in EXECUTORS[executor]([vae], config, lambda task, text, done: seen.append((text, done)))] == ["ok"]
    assert seen[0] == ("recovering 1 test images", 0.0)
    assert seen[1:] == [(f"latent optimisation (10 restarts), step {step}/1000", step / 1000)
                        for step in range(0, 1000, 100)]


def _sigint_ignored(queue) -> None:
    queue.put(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


@pytest.mark.slow
def test_a_worker_ignores_ctrl_c_from_its_first_instruction():
    """A worker started by the pool inherits an ignored SIGINT, so a Ctrl-C while it still imports
    torch ends the run cleanly (not with the worker's KeyboardInterrupt traceback); the parent's own
    handler is back once the worker started."""
    from multiprocessing import get_context

    from csbench.executors import _ctrl_c_ignored

    before = signal.getsignal(signal.SIGINT)
    queue = get_context("spawn").Queue()
    with _ctrl_c_ignored():
        worker = get_context("spawn").Process(target=_sigint_ignored, args=(queue,))
        worker.start()
    assert queue.get(timeout=60) is True
    worker.join()
    assert signal.getsignal(signal.SIGINT) is before
