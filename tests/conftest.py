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


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The suite's many small batched problems run fastest without intra-op threading."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
