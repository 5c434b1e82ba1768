"""The bad-input catalogue: every class of bad input found by review gets one `error:` line, exit
status 2, no traceback, and leaves the results already stored in --out untouched."""
import os
import shutil
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from csbench.cli import main

BASE = ["--priors", "lasso-pixel", "--m", "25", "--n-images", "2", "--executor", "serial", "--quiet"]


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stored")
    assert main(["compare", "--out", str(out), *BASE]) == 0
    return out


def rows(out):
    connection = sqlite3.connect(out / "results.sqlite")
    frame = pd.read_sql_query("SELECT * FROM results ORDER BY prior, m, instance", connection)
    connection.close()
    return frame


def catalogue(tmp):
    directory = tmp / "a-directory"
    directory.mkdir()
    a_file = tmp / "a-file"
    a_file.write_text("not a directory")
    bad_toml = tmp / "types.toml"
    bad_toml.write_text('n_images = "four"\n')
    return [
        # (arguments after `compare --out OUT`, message, replaces BASE)
        (["--noise", "nan"], "noise"),
        (["--noise", "inf"], "noise"),
        (["--n-images", "5000"], "has 1000 test images; asked for 5000"),
        (["--priors", "lasso-dct[lam=abc]"], "parameter lam must be float"),
        (["--priors", "lasso-dct[lam=nan]"], "parameter lam must be finite"),
        (["--priors", "tv[lam=-0.1]"], "parameter lam must be >= 0"),
        (["--priors", "omp[s=0]"], "parameter s must be >= 1"),
        (["--m", "1000000000"], "more than the gaussian model can take"),
        (["--m", "785"], "at most 784"),
        (["--workers", "0"], "workers"),
        (["--scheduler", "tcp://127.0.0.1:1"], "scheduler"),
        (["--config", str(directory)], str(directory)),
        (["--config", str(bad_toml)], "n-images must be an integer"),
        (["--experiments", "telepathy"], "unknown experiment"),
        (["--seed", "7"], "holds a run with different seeds"),
        (["--dataset", "fashion-mnist"], "holds a run with different dataset"),
    ]


def test_every_bad_input_is_one_line_exit_2_and_loses_nothing(stored_run, tmp_path, capsys):
    before = rows(stored_run)
    for extra, message in catalogue(tmp_path):
        code = main(["compare", "--out", str(stored_run), *BASE, *extra])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (extra, err)
        assert "Traceback" not in err
    pd.testing.assert_frame_equal(rows(stored_run), before)


def test_an_out_that_is_a_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["compare", "--out", str(target), *BASE]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err and target.read_text() == "x"


def unprivileged(*args: str) -> subprocess.CompletedProcess:
    """`python -m csbench *args` as a user whom file permissions bind: as root, without the
    capability that lets root write read-only files (util-linux `setpriv`)."""
    command = [sys.executable, "-m", "csbench", *args]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root writes read-only files, and setpriv is not installed to drop that")
        command = ["setpriv", "--bounding-set=-dac_override", "--inh-caps=-dac_override", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_unwritable_out_is_an_error(tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        proc = unprivileged("compare", "--out", str(parent / "run"), *BASE)
    finally:
        parent.chmod(0o700)
    assert proc.returncode == 2 and proc.stderr.startswith("error: cannot write into --out"), proc.stderr
    assert proc.stderr.count("\n") == 1 and not (parent / "run").exists()


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_damaged_store_is_an_error_for_compare_and_report(tmp_path, capsys, command):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"garbage" * 1000)
    args = ["compare", "--out", str(out), *BASE] if command == "compare" else ["report", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "result store" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_read_only_store_is_an_error_and_keeps_its_results(stored_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(stored_run, out)
    before = rows(out)
    (out / "results.sqlite").chmod(0o400)
    proc = unprivileged("compare", "--out", str(out), *BASE, "--m", "10")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "result store" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    pd.testing.assert_frame_equal(rows(out), before)


def test_a_complex_or_boolean_output_fails_the_task(tmp_path):
    import torch

    from csbench.errors import CsbenchError
    from csbench.runner import checked

    class Fake:
        name = "fake"

    class P:
        batch, shape = 2, (1, 2, 2)

    for bad in (torch.zeros(2, 1, 2, 2, dtype=torch.complex64), torch.zeros(2, 1, 2, 2, dtype=torch.bool)):
        with pytest.raises(CsbenchError, match="expected real values"):
            checked(Fake(), P(), bad)
    assert checked(Fake(), P(), torch.zeros(2, 1, 2, 2, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.slow
def test_a_store_another_process_holds_is_one_error_line_and_loses_nothing(stored_run, tmp_path, capsys):
    """A store that cannot be written (here: locked by another connection, which works as root
    too, where a read-only file does not): one `error:` line, exit 2, the stored rows unchanged."""
    import shutil

    out = tmp_path / "held"
    shutil.copytree(stored_run, out)
    before = rows(out)
    holder = sqlite3.connect(out / "results.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code = main(["compare", "--out", str(out), *BASE, "--m", "10"])
    finally:
        holder.rollback()
        holder.close()
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "result store" in err and err.count("\n") == 1, err
    pd.testing.assert_frame_equal(rows(out), before)
