"""Shared fixtures: one real `compare --preset quick` run for every test that reads its outputs."""
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    proc = subprocess.run([sys.executable, "-m", "csbench", "compare", "--preset", "quick",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="session")
def quick_report(quick_run):
    return quick_run[0]
