"""`csbench compare` end to end on real MNIST: the output contract, resume, executors, report."""
import json
import math
import os
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from csbench.cli import main

RESULT_COLUMNS = {"dataset", "measurement", "prior", "m", "noise", "seed", "instance", "mse", "psnr",
                  "ssim", "seconds", "status", "error"}
SUMMARY_COLUMNS = {"dataset", "measurement", "prior", "m", "noise", "n", "mse_mean", "mse_ci_low",
                   "mse_ci_high", "psnr_mean", "seconds_mean"}
TASK = ["dataset", "measurement", "prior", "m", "noise", "seed", "instance"]
pytestmark = pytest.mark.slow  # every test here runs `compare` (or reads the shared quick run)


def test_quick_compare_writes_the_output_contract(quick_run):
    out, proc = quick_run
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("mean MSE per pixel: mnist, gaussian, sigma = 0.1")  # the console table
    assert any(line.startswith("claim: ") for line in lines) and lines[-1].startswith("report: ")
    for name in ["results.sqlite", "results.csv", "summary.csv", "claim.json", "report.md", "report.html"]:
        assert (out / name).stat().st_size > 0, name
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"error_vs_m", "reconstructions", "savings", "seconds_vs_error"} <= figures
    results = pd.read_csv(out / "results.csv")
    assert RESULT_COLUMNS <= set(results.columns) and not results.duplicated(TASK).any()
    assert (results.status == "ok").all() and results.mse.map(math.isfinite).all()
    priors = {"lasso-pixel", "lasso-dct", "lasso-wavelet", "vae"}
    assert {(p, m) for p, m in zip(results.prior, results.m)} == {(p, m) for p in priors for m in (10, 25, 100, 400)}
    summary = pd.read_csv(out / "summary.csv")
    assert SUMMARY_COLUMNS <= set(summary.columns)
    assert ((summary.mse_ci_low <= summary.mse_mean) & (summary.mse_mean <= summary.mse_ci_high)).all()
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 4 and "data:image/png;base64," in html


def test_quick_compare_vae_beats_every_lasso_at_the_smallest_m(quick_run):
    summary = pd.read_csv(quick_run[0] / "summary.csv")
    smallest = summary[summary.m == summary.m.min()].set_index("prior").mse_mean
    lassos = [p for p in smallest.index if p.startswith("lasso")]
    assert smallest["vae"] < smallest[lassos].min()
    # Lasso's tuned lambda is recorded for every row
    results = pd.read_csv(quick_run[0] / "results.csv")
    assert all("lam" in json.loads(p) for p in results[results.prior.str.startswith("lasso")].params)


def test_report_rebuilds_from_the_store_and_flags_a_regression(quick_run, tmp_path, capsys):
    """Against an unchanged copy nothing is worse; against a reference whose vae was better than
    this run's CI allows, exactly that row is worse and --fail-on-regression exits 1."""
    import shutil

    out, same, better = tmp_path / "run", tmp_path / "same", tmp_path / "better"
    shutil.copytree(quick_run[0], out)
    shutil.copytree(quick_run[0], same)
    before = pd.read_csv(out / "summary.csv")
    assert main(["report", str(out), "--against", str(same), "--fail-on-regression"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), before)
    assert not pd.read_csv(out / "comparison.csv").worse.any()
    better.mkdir()
    reference = before.copy()
    row = (reference.prior == "vae") & (reference.m == 100)
    reference.loc[row, ["mse_mean", "mse_ci_low", "mse_ci_high"]] = before.loc[row, "mse_ci_low"].to_numpy()[0] / 4
    reference.to_csv(better / "summary.csv", index=False)
    capsys.readouterr()
    assert main(["report", str(out), "--against", str(better)]) == 0
    assert main(["report", str(out), "--against", str(better), "--fail-on-regression"]) == 1
    worse = pd.read_csv(out / "comparison.csv").query("worse")
    assert list(zip(worse.prior, worse.m)) == [("vae", 100)]


def _compare(out, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "csbench", "compare", "--preset", "quick", "--quiet",
                           "--plugin", "tests/plugins/odd_priors.py", "--priors", "lasso-pixel,interrupting",
                           "--m", "10,25,50", "--n-images", "3", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, env=env)


def test_an_interrupted_run_resumes_without_duplicates_or_recomputation(tmp_path):
    env = {**os.environ, "CSBENCH_TEST_INTERRUPT_AT": "10"}
    first = _compare(tmp_path, env=env)
    assert first.returncode == 2, first.stderr
    assert first.stderr.startswith("error: interrupted") and "Traceback" not in first.stderr
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        done_before = dict(db.execute("SELECT prior || m, finished FROM tasks").fetchall())
    assert 0 < len(done_before) < 6
    second = _compare(tmp_path)
    assert second.returncode == 0, second.stderr
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 2 * 3 * 3 and not results.duplicated(TASK).any()
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        done_after = dict(db.execute("SELECT prior || m, finished FROM tasks").fetchall())
    assert all(done_after[k] == v for k, v in done_before.items())  # finished tasks were not rerun
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        sessions = json.loads(db.execute("SELECT value FROM meta WHERE key = 'sessions'").fetchone()[0])
    assert [s.get("tasks") for s in sessions] == [None, 6 - len(done_before)]  # the first was interrupted
    report = (tmp_path / "report.md").read_text()
    assert "ran on (1)" in report and "interrupted" in report and f"{6 - len(done_before)} tasks" in report


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_parallel_executors_give_the_serial_numbers(tmp_path, executor):
    common = ["--priors", "lasso-pixel", "--m", "25,100", "--n-images", "2"]
    serial = _compare(tmp_path / "serial", *common)
    parallel = _compare(tmp_path / executor, *common, "--executor", executor, "--workers", "2")
    assert serial.returncode == 0 and parallel.returncode == 0, parallel.stderr
    a = pd.read_csv(tmp_path / "serial" / "results.csv").sort_values(TASK).reset_index(drop=True)
    b = pd.read_csv(tmp_path / executor / "results.csv").sort_values(TASK).reset_index(drop=True)
    pd.testing.assert_series_equal(a.mse, b.mse, rtol=1e-6)


def test_quick_compare_on_fashion_mnist_with_both_generators(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "csbench", "compare", "--preset", "quick", "--dataset",
                           "fashion-mnist", "--priors", "vae,dcgan,lasso-wavelet", "--out", str(tmp_path),
                           "--quiet"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary.dataset) == {"fashion-mnist"} and set(summary.prior) == {"vae", "dcgan", "lasso-wavelet"}
    at = summary.set_index(["prior", "m"]).mse_mean
    assert at["dcgan", 25] < at["lasso-wavelet", 25] and at["vae", 25] < at["lasso-wavelet", 25]


@pytest.mark.parametrize("measurement", ["inpaint", "inpaint-block", "superres", "subsampled-dct",
                                         "rademacher", "one-bit", "phaseless"])
def test_every_measurement_runs_with_the_priors_that_support_it(tmp_path, measurement):
    proc = subprocess.run([sys.executable, "-m", "csbench", "compare", "--preset", "quick", "--measurement",
                           measurement, "--priors", "vae[steps=150,restarts=3],lasso-dct", "--m", "196",
                           "--n-images", "3", "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "results.csv")
    status = results.groupby("prior").status.first()
    assert status["vae[steps=150,restarts=3]"] == "ok"
    linear = measurement not in ("one-bit", "phaseless")
    assert status["lasso-dct"] == ("ok" if linear else "skipped")
    ok = results[results.status == "ok"]
    assert ok.mse.between(0, 0.2).all()
    claim = json.loads((tmp_path / "claim.json").read_text())
    if not linear:  # no sparsity prior ran: no ratio, and the verdict says why
        assert claim["ratio"] is None and claim["reproduced"] is False and claim["verdict"]
