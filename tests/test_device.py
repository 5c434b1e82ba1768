"""`--device cuda` gives the CPU's numbers; runs where torch sees a CUDA device (skipped elsewhere)."""
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TASK = ["prior", "m", "instance"]


def _run(out, device):
    proc = subprocess.run([sys.executable, "-m", "csbench", "compare", "--preset", "quick", "--quiet",
                           "--priors", "lasso-dct,tv,vae", "--m", "25,100", "--n-images", "4",
                           "--executor", "serial", "--device", device, "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return pd.read_csv(out / "results.csv").sort_values(TASK).reset_index(drop=True)


def test_a_cuda_run_matches_the_cpu_run_and_says_where_it_ran(tmp_path):
    cpu, cuda = _run(tmp_path / "cpu", "cpu"), _run(tmp_path / "cuda", "cuda")
    assert (cuda.status == "ok").all() and list(cuda.params) == list(cpu.params)   # same tuned values
    # FISTA stops at a 1e-4 relative change, so float32 summation order moves its iterate a little:
    # on an H200, 23 of 24 errors agreed to 1e-4 and one (lasso-dct, m = 25) by 0.55%.
    np.testing.assert_allclose(cuda.mse, cpu.mse, rtol=1e-2)
    with sqlite3.connect(tmp_path / "cuda" / "results.sqlite") as db:
        sessions = json.loads(db.execute("SELECT value FROM meta WHERE key = 'sessions'").fetchone()[0])
    assert sessions[0]["device"] == "cuda" and sessions[0]["accelerator"] == torch.cuda.get_device_name()
