"""`csbench check`: one line per named check, each rule caught by a prior that breaks it, the place
in the plug-in where it failed, `--traceback`, the timeout, and the sealed test split."""
import re
from pathlib import Path

import pytest

from csbench.cli import main
from csbench.datasets import load_dataset

BREAKERS = "tests/plugins/contract_breakers.py"
CHECKS = ["setup(context) on mnist", "gaussian operator passes the dot-product test",
          "output is a real (B, C, H, W) tensor with finite values",
          "recover leaves the problem (y, operator) unchanged",
          "deterministic: two calls on the same task give the same answer",
          "batch independent", "output changes when y changes",
          "bad input (y one measurement short) raises an exception with a message",
          "test split unreachable"]


def check(capsys, *args):
    code = main(["check", *args])
    return code, capsys.readouterr().out


def lines(out: str, status: str) -> list[str]:
    return [line.strip()[len(status):].strip() for line in out.splitlines() if line.strip().startswith(status + " ")]


def test_a_good_plugin_passes_every_named_check(capsys):
    code, out = check(capsys, f"{BREAKERS}:BackProjection")
    assert code == 0, out
    passed = lines(out, "ok")
    assert len(passed) == len(CHECKS) and all(p.startswith(c) for p, c in zip(passed, CHECKS))
    assert "back-projection: all checks passed (9 of 9)" in out


@pytest.mark.parametrize("prior, failing, reason, line", [
    ("Constant", "output changes when y changes", "stays the same when y changes", "def recover"),
    ("InPlace", "recover leaves the problem", "changed problem.y in place", "def recover"),
    ("NoMessage", "bad input", "has no message", "def recover"),
])
def test_each_rule_has_a_check_that_fails_alone(capsys, prior, failing, reason, line):
    code, out = check(capsys, f"{BREAKERS}:{prior}")
    assert code == 1
    assert lines(out, "FAIL") == [next(f for f in lines(out, "FAIL"))] and failing in out and reason in out
    assert re.search(rf"at {re.escape(BREAKERS)}:\d+ \({line}\)", out)


def test_a_crash_names_the_plugin_line_and_traceback_shows_the_rest(capsys):
    code, out = check(capsys, "tests/plugins/odd_priors.py:Crashing")
    assert code == 1 and "RuntimeError: solver diverged" in out
    assert "at tests/plugins/odd_priors.py:15 (in recover)" in out  # the `raise` line, not csbench's
    assert "rerun with --traceback" in out and "Traceback (most recent call last)" not in out
    code, out = check(capsys, "tests/plugins/odd_priors.py:Crashing", "--traceback")
    assert code == 1 and "Traceback (most recent call last)" in out and 'raise RuntimeError("solver diverged")' in out


def test_an_error_inside_csbench_is_placed_at_the_plugin_line_that_called_it(capsys):
    code, out = check(capsys, f"{BREAKERS}:ImageShaped")
    source = Path(BREAKERS).read_text().splitlines()
    where = re.search(rf"at {re.escape(BREAKERS)}:(\d+) \(in recover\)", out)
    assert code == 1 and where and "problem.operator.forward(x)" in source[int(where.group(1)) - 1]


def test_a_hung_recover_fails_its_check_at_the_line_where_it_hangs(capsys):
    code, out = check(capsys, f"{BREAKERS}:Hanging", "--timeout", "1")
    assert code == 1 and "no answer after 1 s" in out
    assert re.search(rf"at {re.escape(BREAKERS)}:\d+ \(in recover\)", out)
    assert "skip deterministic" in out and "an earlier call timed out" in out
    assert "ok   test split unreachable" in out  # checks that do not call the prior still run


@pytest.mark.parametrize("probe", ["ProbeSplit", "ProbeBehind", "ProbeAttribute", "ProbeInSetup", "ProbeAround"])
def test_every_route_to_the_test_split_fails_the_check(capsys, probe):
    """Whatever the seal lets through, a probe that tries a route to the test split fails:
    the seal refuses it (the recover crashes) or the dataset behind the seal records it."""
    code, out = check(capsys, f"{BREAKERS}:{probe}")
    assert code == 1, out
    failed = lines(out, "FAIL")
    assert failed and ("test split" in " ".join(failed) or "attribute" in " ".join(failed))
    assert load_dataset("mnist").split("test", 1).shape == (1, 1, 28, 28)  # the guard is lifted afterwards


def test_a_read_hidden_in_setup_is_still_reported_with_its_place(capsys):
    code, out = check(capsys, f"{BREAKERS}:ProbeInSetup")
    assert code == 1 and lines(out, "FAIL")[0].startswith("test split unreachable")
    assert re.search(rf"reached split\('test'\) at {re.escape(BREAKERS)}:\d+ \(in setup\)", out)


def test_a_registered_prior_is_checked_by_name_with_parameters(capsys):
    code, out = check(capsys, "lasso-pixel[lam=0.05]")
    assert code == 0 and "checking lasso-pixel[lam=0.05] (sparsity, baselines" in out
    assert "all checks passed (9 of 9)" in out


@pytest.mark.parametrize("args, message", [
    (["check", f"{BREAKERS}:BackProjection", "--timeout", "0"], "--timeout must be a positive"),
    (["check", f"{BREAKERS}:BackProjection", "--timeout", "inf"], "--timeout must be a positive"),
    (["check", f"{BREAKERS}:BackProjection", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["check", "no/such/file.py"], "does not exist"),
    (["check", f"{BREAKERS}:Nothing"], "has no attribute 'Nothing'"),
    (["check", f"{BREAKERS}:NeedsArgument"], "NeedsArgument() failed: TypeError:"),
    (["check", "lasso-pixel[colour=red]"], "has no parameter"),
])
def test_bad_check_input_is_one_error_line(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_global_traceback_switch_shows_where_an_error_came_from(capsys):
    assert main(["--traceback", "check", "no/such/file.py"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1].startswith("error: ")
