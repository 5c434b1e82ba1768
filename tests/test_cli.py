"""The command line: one-line errors with non-zero exit, `list`, `check`."""
import os
import subprocess
import sys

import pytest

from csbench.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "csbench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["compare", "--priors", "no-such-prior"], "unknown prior 'no-such-prior'"),
    (["compare", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["compare", "--measurement", "telepathy"], "unknown measurement 'telepathy'"),
    (["compare", "--m", "10,ten"], "bad value for m"),
    (["compare", "--noise", ","], "noise must not be empty"),
    (["compare", "--seed", ","], "seeds must not be empty"),
    (["compare", "--preset", "enormous"], "unknown preset"),
    (["compare", "--plugin", "no/such/file.py"], "plug-in file no/such/file.py does not exist"),
    (["compare", "--plugin", "no_such_module:Thing"], "cannot import plug-in"),
    (["compare", "--priors", "lasso-dct[colour=red]"], "has no parameter"),
    (["compare", "--dataset", "folder:/no/such/folder"], "folder"),
    (["compare", "--bogus"], "unrecognized arguments"),
    (["report", "/no/such/run"], "holds no results.sqlite"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_error_and_exit_2(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_input_through_the_real_entry_point_has_no_traceback():
    proc = run_cli("compare", "--priors", "nope", "--quiet")
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown prior")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["compare", "--m", "10,ten"], ["compare", "--noise", ","]])
def test_help_and_option_errors_do_not_wait_for_pytorch(args):
    """`csbench --help` and a malformed option answer without importing PyTorch (seconds on a laptop)."""
    code = ("import sys\nfrom csbench.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)" % (args,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "torch imported: False" in proc.stderr


def test_the_report_module_does_not_import_pytorch():
    """`csbench report` on a run without theory experiments needs numpy, pandas and matplotlib only."""
    code = "import sys, csbench.report, csbench.analysis; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_the_plug_in_api_is_importable_from_the_package():
    import csbench
    from csbench.priors import Prior
    from csbench.problem import Problem

    assert csbench.Prior is Prior and csbench.Problem is Problem
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        csbench.Nothing


def test_list_shows_priors_datasets_measurements_and_models():
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    for word in ["lasso-pixel", "lasso-dct", "lasso-wavelet", "vae", "dcgan", "mnist", "fashion-mnist",
                 "random-net", "gaussian", "representation error", "sparsity", "generative"]:
        assert word in proc.stdout


def test_list_into_a_closed_pipe_exits_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `csbench list | head` after head has left
    proc = subprocess.run([sys.executable, "-m", "csbench", "list"], stdout=write_end, stderr=subprocess.PIPE,
                          text=True, timeout=600)
    os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""


def test_check_passes_a_good_plugin_and_fails_cheaters(capsys):
    assert main(["check", "examples/min_norm_prior.py"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    assert main(["check", "tests/plugins/odd_priors.py:Peeking"]) == 1
    assert "read the test split" in capsys.readouterr().out
    assert main(["check", "tests/plugins/odd_priors.py:Noisy"]) == 1
    out = capsys.readouterr().out
    assert "FAIL deterministic" in out and "FAIL batch independent" in out
