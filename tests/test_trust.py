"""Results you can trust: a stored result is reused only while what produced it is unchanged,
failed tasks heal on a rerun, runs do not mix, and a prior cannot reach the test split."""
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from csbench.cli import main
from csbench.compare import locked
from csbench.priors import PriorContext, SealedDataset, load_plugin, make_prior

PRIOR = textwrap.dedent('''
    import os
    from csbench import Prior

    class Scaled(Prior):
        """x = scale * A^T y, clipped; fails while $CSBENCH_TEST_FAIL is set."""
        name = "scaled-backprojection"
        kind = "other"
        description = "scaled back-projection"
        parameters = {"scale": SCALE}

        def recover(self, problem):
            if os.environ.get("CSBENCH_TEST_FAIL"):
                raise RuntimeError("transient fault")
            x = self.params["scale"] * problem.operator.adjoint(problem.y)
            return x.reshape(problem.batch, *problem.shape).clamp(0, 1)
''')
GRID = ["--dataset", "mnist", "--m", "50", "--n-images", "2", "--executor", "serial", "--quiet"]


def write_prior(path, scale):
    path.write_text(PRIOR.replace("SCALE", repr(scale)))
    return str(path)


def stored(out):
    connection = sqlite3.connect(out / "results.sqlite")
    frame = pd.read_sql_query("SELECT prior, m, instance, mse, params, status FROM results ORDER BY prior, m, instance",
                              connection)
    connection.close()
    return frame


def run(out, plugin, *extra):
    return main(["compare", "--plugin", plugin, "--priors", "scaled-backprojection", "--out", str(out), *GRID, *extra])


def test_a_changed_plugin_is_recomputed_never_reused(tmp_path, capsys):
    plugin, out = tmp_path / "scaled.py", tmp_path / "run"
    assert run(out, write_prior(plugin, 0.5)) == 0
    first = stored(out)
    assert run(out, write_prior(plugin, 0.5)) == 0          # unchanged: reused as it was
    pd.testing.assert_frame_equal(stored(out), first)
    assert "rerun" not in capsys.readouterr().err
    assert run(out, write_prior(plugin, 0.25)) == 0         # a new default: recomputed
    second = stored(out)
    assert "1 stored task(s) are rerun" in capsys.readouterr().err
    assert second.params.str.contains("0.25").all() and not first.params.str.contains("0.25").any()
    assert (second.mse != first.mse).all()


def test_a_plugin_with_other_comments_docstrings_or_layout_is_reused_and_other_code_recomputed(tmp_path, capsys):
    """The identity of code is its syntax without docstrings: rewording the docstring, adding
    comments and blank lines and re-wrapping a statement reuses every stored result; a string that
    is code (the description) is a change like any other."""
    plugin, out = tmp_path / "scaled.py", tmp_path / "run"
    assert run(out, write_prior(plugin, 0.5)) == 0
    first = stored(out)
    edited = (PRIOR.replace("SCALE", "0.5")
              .replace('"""x = scale * A^T y, clipped; fails while $CSBENCH_TEST_FAIL is set."""',
                       '"""Back-projection, scaled and clipped to [0, 1]."""\n\n    # a comment')
              .replace("x = self.params[\"scale\"] * problem.operator.adjoint(problem.y)",
                       "x = (self.params[\"scale\"]  # scale\n                 * problem.operator.adjoint(problem.y))\n"))
    assert edited.count("Back-projection") == 1 and edited.count("# scale") == 1
    plugin.write_text(edited)
    capsys.readouterr()
    assert run(out, str(plugin)) == 0
    pd.testing.assert_frame_equal(stored(out), first)
    assert "rerun" not in capsys.readouterr().err
    plugin.write_text(edited.replace('description = "scaled back-projection"', 'description = "scaled A^T y"'))
    assert run(out, str(plugin)) == 0
    assert "1 stored task(s) are rerun" in capsys.readouterr().err


@pytest.mark.slow
def test_a_report_says_which_stored_results_this_checkout_would_not_reproduce(tmp_path, capsys):
    """`report` after an edit, and `compare` over part of a stored grid, show stored numbers of
    older code: they name them (console and report) instead of passing them off as current; a
    plug-in's results are checked only when the report is given the plug-in (`--plugin`)."""
    plugin, out = tmp_path / "scaled.py", tmp_path / "run"
    assert run(out, write_prior(plugin, 0.5), "--m", "50,100") == 0
    capsys.readouterr()
    assert main(["report", str(out), "--plugin", str(plugin)]) == 0
    assert "note:" not in capsys.readouterr().err and "Not current" not in (out / "report.md").read_text()
    write_prior(plugin, 0.25)
    fresh = subprocess.run([sys.executable, "-m", "csbench", "report", str(out)], capture_output=True, text=True)
    assert fresh.returncode == 0                             # a new process: the plug-in is not imported unasked
    assert ("note: scaled-backprojection: its stored tasks were not checked against this checkout (not a prior "
            "known here: a plug-in not loaded (`--plugin`))") in fresh.stderr
    assert "**Not checked.** scaled-backprojection: its stored tasks" in (out / "report.md").read_text()
    stale = ("2 stored task(s) were computed by other code, parameters, checkpoints or images than this "
             "checkout's (scaled-backprojection: 2)")
    assert main(["report", str(out), "--plugin", str(plugin)]) == 0
    assert stale in capsys.readouterr().err
    assert f"**Not current.** {stale}" in (out / "report.md").read_text()
    assert run(out, str(plugin), "--m", "50") == 0           # recomputes m = 50, keeps m = 100 as stored
    err = capsys.readouterr().err
    assert "1 stored task(s) are rerun (scaled-backprojection: 1)" in err
    assert stale.replace("2", "1") in err and stale.replace("2", "1") in (out / "report.md").read_text()
    assert run(out, str(plugin), "--m", "50,100") == 0
    assert "Not current" not in (out / "report.md").read_text()


def test_a_report_against_a_reference_of_older_code_says_so(tmp_path, capsys):
    """`report --against REF` compares numbers; where REF's rows are of other code than this
    checkout's, the changes include that code's, and the console and the report say so."""
    plugin = write_prior(tmp_path / "scaled.py", 0.5)
    reference, out = tmp_path / "reference", tmp_path / "run"
    assert run(reference, plugin) == 0 and run(out, plugin) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--against", str(reference), "--plugin", plugin]) == 0
    assert "note:" not in capsys.readouterr().err
    connection = sqlite3.connect(reference / "results.sqlite")
    with connection:
        connection.execute("UPDATE tasks SET fingerprint = 'older code'")
    connection.close()
    assert main(["report", str(out), "--against", str(reference), "--plugin", plugin]) == 0
    note = (f"1 task(s) of the reference {reference} were computed by other code, parameters, checkpoints or "
            "images than this checkout's (scaled-backprojection: 1); the changes against them include what "
            "changed since")
    assert f"note: {note}" in capsys.readouterr().err
    assert f"**Reference not current.** {note}." in (out / "report.md").read_text()


def test_a_dry_run_tells_per_prior_what_compare_would_reuse_rerun_retry_or_compute_and_runs_nothing(
        tmp_path, capsys, monkeypatch):
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    assert run(out, plugin, "--m", "50,100") == 0
    monkeypatch.setenv("CSBENCH_TEST_FAIL", "1")
    assert run(out, plugin, "--m", "200") == 1               # stored as failed
    monkeypatch.delenv("CSBENCH_TEST_FAIL")
    connection = sqlite3.connect(out / "results.sqlite")
    with connection:
        connection.execute("UPDATE tasks SET fingerprint = 'older code' WHERE m = 100")
    (took,), = connection.execute("SELECT SUM(seconds) FROM tasks WHERE m IN (100, 200)").fetchall()
    connection.close()
    before = {name: (out / name).read_bytes() for name in ("results.sqlite", "report.md")}
    capsys.readouterr()
    assert run(out, plugin, "--m", "25,50,100,200", "--dry-run") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split() == ["prior", "stored", "rerun", "retry", "new"]
    assert printed[2].split() == ["scaled-backprojection", "1", "1", "1", "1"]
    assert printed[3] == (f"3 of 4 task(s) to compute; the stored ones took {took:.0f} task-seconds then; "
                          "experiments to run: none")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert run(out, plugin, "--m", "25,50,100,200") == 0
    assert "1 stored task(s) are rerun (scaled-backprojection: 1)" in capsys.readouterr().err
    assert run(out, plugin, "--m", "25,50,100,200", "--dry-run") == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["scaled-backprojection", "4", "0", "0", "0"]
    assert run(tmp_path / "new", plugin, "--dry-run") == 0 and not (tmp_path / "new").exists()
    assert run(out, plugin, "--n-images", "3", "--dry-run") == 2   # refused as compare refuses it
    assert "holds a run with different n_images" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_copies_what_another_run_computed_as_this_checkout_would_and_computes_the_rest(
        tmp_path, capsys, monkeypatch):
    """`--reuse DIR` copies each task and experiment DIR holds with this checkout's fingerprint (same
    code, parameters, checkpoints, images, device) instead of computing it: rows, tuning scores,
    reconstructions and seconds as stored there. Anything else is computed, and the report names
    where the copies came from."""
    plugin, source = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "source"
    (tmp_path / "small.toml").write_text("experiment-scale = 0.1\n")
    experiment = ("--experiments", "landscape", "--config", str(tmp_path / "small.toml"))
    assert run(source, plugin, *experiment) == 0
    out, reuse = tmp_path / "run", ("--reuse", str(source))
    capsys.readouterr()
    assert run(out, plugin, "--m", "50,100", *reuse, *experiment, "--dry-run") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split() == ["prior", "stored", "reused", "rerun", "retry", "new"]
    assert printed[2].split() == ["scaled-backprojection", "0", "1", "0", "0", "1"]
    assert printed[3] == ("1 of 2 task(s) to compute; experiments to run: none; experiments reused: landscape")
    monkeypatch.setenv("CSBENCH_TEST_FAIL", "1")               # computing the m = 50 task would fail
    assert run(out, plugin, "--m", "50", *reuse, *experiment) == 0
    monkeypatch.delenv("CSBENCH_TEST_FAIL")
    assert (f"1 task(s) and experiment(s) landscape reused from {source} (scaled-backprojection: 1)"
            in capsys.readouterr().err)
    for table in ("tasks", "results", "tuning", "reconstructions", "experiments"):
        copied, original = (sorted(sqlite3.connect(d / "results.sqlite").execute(f"SELECT * FROM {table}"), key=repr)
                            for d in (out, source))
        assert copied == original and (copied or table == "tuning"), table
    report = (out / "report.md").read_text()
    assert f"| reused from | {source}: 1 tasks, experiment landscape, computed there on cpu;" in report
    assert run(out, plugin, "--m", "50,100", *reuse) == 0         # m = 100 is computed
    assert list(stored(out).m) == [50, 50, 100, 100]
    assert "reused" not in capsys.readouterr().err                 # m = 50 is now this run's own
    connection = sqlite3.connect(out / "results.sqlite")
    with connection:
        connection.execute("UPDATE tasks SET fingerprint = 'older code' WHERE m = 50")
    connection.close()
    assert run(out, plugin, "--m", "50,100") == 0                  # the copy is recomputed here ...
    report = (out / "report.md").read_text()                       # ... and no longer reported as copied
    assert f"| reused from | {source}: 0 tasks, experiment landscape, computed there on cpu;" in report


def test_a_run_never_copies_what_this_checkout_would_compute_otherwise(tmp_path, capsys):
    """A task stored by other code (here the plug-in edited since) is computed, not copied."""
    source, out = tmp_path / "source", tmp_path / "run"
    assert run(source, write_prior(tmp_path / "scaled.py", 0.5)) == 0
    plugin = write_prior(tmp_path / "scaled.py", 0.25)
    capsys.readouterr()
    assert run(out, plugin, "--reuse", str(source)) == 0
    assert "reused" not in capsys.readouterr().err
    assert (stored(out).mse != stored(source).mse).all()
    assert run(out, plugin, "--reuse", str(tmp_path / "nowhere")) == 2
    assert f"error: --reuse {tmp_path / 'nowhere'} holds no results.sqlite" in capsys.readouterr().err
    assert run(out, plugin, "--reuse", str(out)) == 2
    assert "is --out itself" in capsys.readouterr().err


def test_a_stored_task_of_this_code_on_another_device_is_current(tmp_path, capsys):
    """A reference may hold rows computed on a GPU: with the same code they are current, whatever
    the device of the run that last wrote the store; any other fingerprint is not."""
    from csbench.datasets import load_dataset
    from csbench.runner import images_hash, task_fingerprint

    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    assert run(out, plugin) == 0
    data = load_dataset("mnist")
    cuda = task_fingerprint("scaled-backprojection", data, images_hash(data, 2, 16), "gaussian", "cuda")
    connection = sqlite3.connect(out / "results.sqlite")
    for fingerprint, current in ((cuda, True), ("other code", False), (None, False)):
        with connection:
            connection.execute("UPDATE tasks SET fingerprint = ?", (fingerprint,))
        capsys.readouterr()
        assert main(["report", str(out), "--plugin", plugin]) == 0
        assert ("1 stored task(s) were computed by other code" not in capsys.readouterr().err) == current
    connection.close()


def test_code_identity_ignores_docstrings_comments_and_layout_only():
    from csbench.fingerprint import code_identity

    source = textwrap.dedent('''
        """Module."""
        def f(x, y=2):
            """Doc."""
            return x * y
        ''')
    same = ['"""Another module docstring."""\n' + source.split('"""Module."""')[1],
            source.replace('"""Doc."""', '"""Doc, reworded."""\n    # a comment\n'),
            source.replace("return x * y", "return (x\n            * y)  # wrapped"),
            source.replace('    """Doc."""\n', "") + "\n\n# trailing comment\n"]
    other = [source.replace("y=2", "y=3"), source.replace("x * y", "y * x"), source.replace("def f", "def g"),
             source.replace('    """Doc."""\n    return x * y', '    return x * y\n    """Doc."""'),  # not a docstring
             source + "z = 1\n", source.replace("return x * y", "return x * y +")]                # a syntax error
    identity = code_identity(source.encode())
    assert [code_identity(text.encode()) for text in same] == [identity] * len(same)
    assert len({identity, *(code_identity(text.encode()) for text in other)}) == 1 + len(other)


def test_failed_tasks_are_reported_exit_1_and_heal_on_a_rerun(tmp_path, capsys, monkeypatch):
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    monkeypatch.setenv("CSBENCH_TEST_FAIL", "1")
    assert run(out, plugin) == 1
    err = capsys.readouterr().err
    assert "failed: scaled-backprojection: 1 task(s), first error: RuntimeError: transient fault" in err
    assert (stored(out).status == "failed").all() and (out / "report.html").is_file()
    assert run(out, plugin, "--allow-failures") == 0
    monkeypatch.delenv("CSBENCH_TEST_FAIL")
    assert run(out, plugin) == 0
    assert (stored(out).status == "ok").all()


def test_a_resume_with_other_seeds_is_refused_and_fresh_starts_over(tmp_path, capsys):
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    assert run(out, plugin) == 0
    capsys.readouterr()
    assert run(out, plugin, "--seed", "1") == 2
    assert "holds a run with different seeds" in capsys.readouterr().err
    assert run(out, plugin, "--seed", "1", "--fresh") == 0
    connection = sqlite3.connect(out / "results.sqlite")
    assert connection.execute("SELECT DISTINCT seed FROM results").fetchall() == [(1,)]


def test_a_second_run_into_a_locked_directory_is_refused(tmp_path, capsys):
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    with locked(out):
        assert run(out, plugin) == 2
    assert "another csbench run is writing into" in capsys.readouterr().err
    assert not (out / "results.sqlite").exists()


def test_a_plugin_cannot_take_a_builtin_name(tmp_path, capsys):
    plugin = tmp_path / "shadow.py"
    plugin.write_text(PRIOR.replace("SCALE", "0.5").replace('"scaled-backprojection"', '"tv"'))
    assert main(["compare", "--plugin", str(plugin), "--priors", "tv", "--out", str(tmp_path / "o"), *GRID]) == 2
    assert "the name 'tv' belongs to the prior from csbench" in capsys.readouterr().err


def test_the_seal_is_a_whitelist_for_every_dataset():
    from csbench.datasets import load_dataset

    for spec in ("mnist", "random-net[k=5]"):
        data = load_dataset(spec)
        sealed = SealedDataset(data)
        assert sealed.split("validation", 2).shape == (2, *data.shape)
        with pytest.raises(Exception, match="test split"):
            sealed.split("test", 1)
        for attr in ("latents", "_dataset", "images", "dataset", "__dict__"):
            assert not hasattr(sealed, attr), attr
        with pytest.raises(AttributeError):
            sealed.name = "other"
    net = SealedDataset(load_dataset("random-net[k=5]"))
    assert net.generator is not None  # the random-net prior may use G itself, never z*


def test_a_prior_that_decodes_the_test_latents_cannot(tmp_path):
    """The attack the review found: on random-net, decode the dataset's *test* latents."""
    plugin = tmp_path / "cheat.py"
    plugin.write_text(textwrap.dedent('''
        from csbench import Prior

        class Cheat(Prior):
            name = "latent-cheat"
            kind = "other"
            description = "decodes the test latents"

            def recover(self, problem):
                z = self.context.dataset.latents("test", problem.batch)
                return self.context.dataset.generator(z).reshape(problem.batch, *problem.shape)
    '''))
    load_plugin(str(plugin))
    prior = make_prior("latent-cheat")
    from csbench.datasets import load_dataset
    from csbench.runner import Task, run_task
    from csbench.config import make_config

    data = load_dataset("random-net[k=5]")
    prior.setup(PriorContext(dataset=SealedDataset(data), shape=data.shape))
    result = run_task(Task("random-net[k=5]", "gaussian", "latent-cheat", 40, 0.0, 0),
                      make_config("quick", priors="latent-cheat", plugins=str(plugin), n_images=2, n_validation=2))
    assert result.status == "failed" and "latents" in result.rows[0]["error"]


def test_a_plugin_edited_during_a_run_is_not_stored_under_the_fingerprint_taken_before(tmp_path, capsys):
    """compare fingerprints every prior before the run; a plug-in file edited meanwhile (here by the
    run's first task) runs as edited in the task that loads it next. That task fails with the reason
    instead of storing the edited code's numbers under the old fingerprint; the rerun stores it."""
    out, target = tmp_path / "run", write_prior(tmp_path / "scaled.py", 0.5)
    editor = tmp_path / "editor.py"
    editor.write_text(textwrap.dedent(f'''
        from pathlib import Path
        from csbench import Prior

        class Editor(Prior):
            """x = 0, after rewriting scaled.py's default scale."""
            name = "editor"
            kind = "untrained"                        # a costlier kind than scaled's: it runs first
            description = "edits another plug-in"

            def recover(self, problem):
                path = Path({target!r})
                path.write_text(path.read_text().replace("0.5", "0.25"))
                return problem.y.new_zeros(problem.batch, *problem.shape)
    '''))
    args = ["compare", "--plugin", str(editor), "--plugin", target, "--priors", "editor,scaled-backprojection",
            "--out", str(out), *GRID, "--experiments", "none"]
    assert main(args) == 1
    assert "ran other code, parameters or checkpoints than this run fingerprinted" in capsys.readouterr().err
    assert set(stored(out).query("prior == 'scaled-backprojection'").status) == {"failed"}
    assert main(args) == 0                                    # the file as it is now, fingerprinted
    rerun = stored(out).query("prior == 'scaled-backprojection'")
    assert set(rerun.status) == {"ok"} and {json.loads(p)["scale"] for p in rerun.params} == {0.25}


def test_a_hand_picked_grid_runs_no_experiments(tmp_path):
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    assert run(out, plugin) == 0
    connection = sqlite3.connect(out / "results.sqlite")
    assert connection.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)


@pytest.mark.slow
def test_experiments_are_stored_with_their_identity_and_rerun_when_it_changes(tmp_path, capsys):
    """An experiment runs beside the tasks, once per identity (code, scale, seed): a stored table
    with another fingerprint is recomputed, one with the same is kept."""
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    (tmp_path / "small.toml").write_text("experiment-scale = 0.1\n")
    extra = ("--experiments", "landscape", "--config", str(tmp_path / "small.toml"))
    assert run(out, plugin, *extra) == 0
    connection = sqlite3.connect(out / "results.sqlite")
    (table, fingerprint), = connection.execute("SELECT table_json, fingerprint FROM experiments").fetchall()
    assert fingerprint and "depth" in table
    stale = json.dumps({**json.loads(table), "data": json.loads(table)["data"][:1]})  # a marked table
    with connection:
        connection.execute("UPDATE experiments SET table_json = ?", (stale,))
    assert run(out, plugin, *extra) == 0                     # same identity: kept as stored
    assert connection.execute("SELECT table_json FROM experiments").fetchone() == (stale,)
    with connection:
        connection.execute("UPDATE experiments SET fingerprint = 'from older code'")
    capsys.readouterr()
    assert main(["report", str(out), "--plugin", plugin]) == 0   # a report says what it shows is not current
    note = "Stored experiment(s) landscape were computed by other code, scale or seed"
    assert note in capsys.readouterr().err and note in (out / "report.md").read_text()
    assert run(out, plugin, *extra) == 0                     # another identity: recomputed
    assert connection.execute("SELECT table_json FROM experiments").fetchone() == (table,)
    assert "landscape" in (out / "report.md").read_text().lower()
    assert "Not current" not in (out / "report.md").read_text()


def test_an_experiments_identity_covers_the_code_that_computes_its_tables_and_not_its_figures():
    """The stored tables are keyed by the source of everything that computes them (the descent, the
    random nets, the l1 solver, the theory), so editing any of it reruns them; the report's text
    and figures of a table do not change the table, so editing them reruns nothing."""
    import csbench.runner
    from csbench.fingerprint import module_closure

    hashed = {}
    def code_hash(*modules, exclude=frozenset()):
        for module in modules:
            hashed.update(module_closure(module, exclude))
        return "hashed"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csbench.runner, "code_hash", code_hash)
        csbench.runner.experiment_fingerprint(1.0, 0)
    closure = set(hashed)
    assert {"csbench.experiments.run", "csbench.experiments.phase", "csbench.experiments.landscape",
            "csbench.generative.hv", "csbench.datasets.random_net", "csbench.baselines.solvers",
            "csbench.theory", "csbench.rng"} <= closure
    assert "csbench.experiments.figures" not in closure and "csbench.progress" not in closure


def _another_version(monkeypatch, module_name):
    """As if `module_name`'s file had held other code when this process first read it."""
    from pathlib import Path

    from csbench import fingerprint

    path = Path(sys.modules[module_name].__file__).resolve()
    monkeypatch.setitem(fingerprint._FIRST_READ, path, f"another version of {module_name}")


# What a task's numbers depend on (a prior using csbench's generative code, one that does not)...
SCORING = ["csbench.runner", "csbench.metrics", "csbench.problem", "csbench.rng", "csbench.priors",
           "csbench.datasets.mnist_digits", "csbench.measurements.gaussian", "csbench.measurements.base",
           "csbench.measurements"]   # the registry: it builds the task's model
GENERATIVE = ["csbench.generative.checkpoints", "csbench.generative.models", "csbench.generative.latent"]
# ... and what it does not: the run settings and presets, progress lines, other measurement models.
NOT_SCORING = ["csbench.config", "csbench.progress", "csbench.measurements.superres",
               "csbench.measurements.inpaint", "csbench.measurements.nonlinear"]


@pytest.mark.parametrize("prior, changed, recomputed", [
    *[("lasso-dct", name, True) for name in SCORING + ["csbench.baselines.lasso"]],
    *[("lasso-dct", name, False) for name in NOT_SCORING + GENERATIVE],
    *[("vae", name, True) for name in SCORING + GENERATIVE],
    *[("vae", name, False) for name in NOT_SCORING + ["csbench.baselines.lasso"]],  # progress: though latent.py imports it
])
def test_a_tasks_identity_covers_the_code_its_numbers_depend_on_and_no_other(monkeypatch, prior, changed,
                                                                           recomputed):
    """Editing code a task runs (its prior, the runner, metrics, random streams, dataset loaders, its
    measurement model, a generative prior's loader and models) gives it a new fingerprint, so it is
    recomputed; editing a preset, the progress lines, another measurement model, or the generative
    code for a sparsity prior keeps it."""
    import importlib

    from csbench.datasets import load_dataset
    from csbench.runner import images_hash, task_fingerprint

    importlib.import_module(changed)
    data = load_dataset("mnist")
    images = images_hash(data, 2, 16)
    before = task_fingerprint(prior, data, images, "gaussian", "cpu")
    _another_version(monkeypatch, changed)
    assert (task_fingerprint(prior, data, images, "gaussian", "cpu") != before) == recomputed


@pytest.mark.parametrize("changed, stored", [*[(name, True) for name in NOT_SCORING],
                                             ("csbench.metrics", False), ("csbench.runner", False)])
def test_a_long_lived_worker_stores_across_edits_that_change_no_numbers(monkeypatch, changed, stored):
    """A worker whose files changed on disk since it read them stores its result only if the
    change is outside the task's identity (a preset edited while a Dask cluster stays up)."""
    _another_version(monkeypatch, changed)
    result = _long_lived_task("lasso-pixel")
    assert (result.status == "ok") == stored
    assert (f"{changed} changed on disk since this process loaded it" in result.rows[0]["error"]) != stored


def test_a_prior_cannot_read_the_test_split_around_the_seal(tmp_path):
    """Through the seal's own references, or by loading the dataset itself: both refused."""
    plugin = tmp_path / "around.py"
    plugin.write_text(textwrap.dedent('''
        from csbench import Prior
        from csbench.datasets import load_dataset

        class Around(Prior):
            name = "around-the-seal"
            kind = "other"
            description = "reads the test images behind the seal"
            parameters = {"route": "private"}

            def recover(self, problem):
                if self.params["route"] == "private":
                    x = self.context.dataset._read("test", problem.batch)
                else:
                    x = load_dataset(problem.dataset).split("test", problem.batch)
                return x.reshape(problem.batch, *problem.shape)
    '''))
    from csbench.config import make_config
    from csbench.runner import Task, run_task

    config = make_config("quick", plugins=str(plugin), n_images=2, n_validation=2)
    for route in ("private", "reload"):
        result = run_task(Task("mnist", "gaussian", f"around-the-seal[route={route}]", 40, 0.1, 0), config)
        assert result.status == "failed" and "read the test split" in result.rows[0]["error"], route


def _long_lived_task(prior: str, plugins: str = "", dataset: str = "mnist"):
    """What one worker process runs: csbench's own task function, here in this (long-lived) process."""
    from csbench.config import make_config
    from csbench.runner import Task, run_task

    config = make_config("quick", dataset=dataset, n_images=2, n_validation=2, plugins=plugins or None)
    return run_task(Task(dataset, "gaussian", prior, 100, 0.1, 0), config)


def test_a_long_lived_worker_reads_a_changed_image_folder_afresh(tmp_path):
    """A worker keeps the datasets it loaded. When the images of a `folder:` dataset are rewritten
    between runs, its next task must recover the new images (which the fingerprint hashes)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    dataset = f"folder[size=16,channels=1]:{tmp_path}"
    before = [row["mse"] for row in _long_lived_task("lasso-dct", dataset=dataset).rows]
    for i in range(30):
        Image.fromarray(np.full((16, 16), 8 * i, dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    after = [row["mse"] for row in _long_lived_task("lasso-dct", dataset=dataset).rows]
    assert after != before
    from csbench.runner import _DATASETS, _PRIORS
    _DATASETS.clear()
    _PRIORS.clear()                                            # a fresh worker
    assert [row["mse"] for row in _long_lived_task("lasso-dct", dataset=dataset).rows] == after


def test_a_long_lived_worker_keeps_one_version_of_a_dataset_that_changes(tmp_path):
    """A worker that outlives several rewrites of a `folder:` dataset holds one copy of it (and of
    the prior set up on it), the latest, not one per version it has seen."""
    import gc

    import numpy as np
    from PIL import Image

    from csbench.datasets.folder import FolderDataset

    dataset, results = f"folder[size=16,channels=1]:{tmp_path}", []
    for version in range(3):
        for i in range(30):
            Image.fromarray(np.full((16, 16), 8 * i + version, dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
        results.append(_long_lived_task("lasso-dct", dataset=dataset))
    assert [result.status for result in results] == ["ok"] * 3 and len({result.images for result in results}) == 3
    gc.collect()
    held = [o for o in gc.get_objects() if type(o) is FolderDataset and str(tmp_path) in o.provenance]
    assert len(held) == 1


def test_a_long_lived_worker_follows_the_environment_to_other_mnist_files(tmp_path, monkeypatch):
    """A worker keeps the datasets it loaded. When CSBENCH_MNIST_DIR comes to name IDX files, or
    those files are rewritten, its next task must run on the images they now hold, as a fresh
    process loading the dataset would."""
    from csbench.datasets import load_dataset
    from csbench.runner import images_hash
    from test_data import write_idx_directory

    monkeypatch.delenv("CSBENCH_MNIST_DIR", raising=False)
    shipped = _long_lived_task("lasso-dct")
    assert shipped.images == images_hash(load_dataset("mnist"), 2, 2)
    write_idx_directory(tmp_path, n_train=5010, n_test=10)
    monkeypatch.setenv("CSBENCH_MNIST_DIR", str(tmp_path))
    full = _long_lived_task("lasso-dct")
    assert full.status == "ok" and full.images == images_hash(load_dataset("mnist"), 2, 2) != shipped.images
    write_idx_directory(tmp_path, n_train=5010, n_test=11, seed=1)    # rewritten in place
    rewritten = _long_lived_task("lasso-dct")
    assert rewritten.images == images_hash(load_dataset("mnist"), 2, 2) != full.images
    assert [row["mse"] for row in rewritten.rows] != [row["mse"] for row in full.rows]


@pytest.mark.slow
def test_a_worker_with_other_images_fails_its_tasks_instead_of_storing_them(tmp_path, monkeypatch):
    """A real Dask cluster on loopback whose worker was started with CSBENCH_MNIST_DIR set loads other
    images than the process that fingerprints the run: each of its tasks fails with the reason and a
    rerun with the same environment stores them."""
    from distributed import LocalCluster
    from test_data import write_idx_directory

    write_idx_directory(tmp_path / "idx", n_train=5010, n_test=10)
    monkeypatch.delenv("CSBENCH_MNIST_DIR", raising=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env={"CSBENCH_MNIST_DIR": str(tmp_path / "idx")}) as cluster:
        args = ["compare", "--dataset", "mnist", "--priors", "lasso-pixel", "--m", "50,100", "--n-images", "2",
                "--experiments", "none", "--executor", "dask", "--scheduler", cluster.scheduler_address,
                "--quiet", "--out", str(tmp_path / "run")]
        assert main(args) == 1
        connection = sqlite3.connect(tmp_path / "run" / "results.sqlite")
        rows = connection.execute("SELECT status, error FROM results").fetchall()
        connection.close()
        assert len(rows) == 4 and {status for status, _ in rows} == {"failed"}
        assert all("its worker ran it on other images" in error for _, error in rows)
        monkeypatch.setenv("CSBENCH_MNIST_DIR", str(tmp_path / "idx"))   # now the same images as the worker's
        assert main([*args, "--fresh"]) == 0
        assert set(stored(tmp_path / "run").status) == {"ok"}


@pytest.mark.slow
def test_a_worker_with_another_installation_does_not_store_its_experiment(tmp_path, capsys):
    """A real Dask worker on loopback that imports csbench from another installation, whose
    landscape experiment differs from this one's: its table would be filed under this run's
    fingerprint of the experiment; it fails with the reason instead, and the task (whose code is
    the same in both) is stored."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from distributed import Client, LocalCluster

    other = tmp_path / "other"
    ignore = shutil.ignore_patterns("__pycache__", "*.pt")
    shutil.copytree("csbench", other / "csbench", ignore=ignore)
    for name in ("datasets", "baselines"):                     # laid out as pip installs them
        shutil.copytree(name, other / "csbench" / name, ignore=ignore)
    landscape = other / "csbench" / "experiments" / "landscape.py"
    landscape.write_text(landscape.read_text() + "\nANOTHER_VERSION = True\n")   # code, not a comment
    plugin, out = write_prior(tmp_path / "scaled.py", 0.5), tmp_path / "run"
    (tmp_path / "small.toml").write_text("experiment-scale = 0.1\n")
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nthreads", "1",
             "--no-nanny", "--no-dashboard"], cwd=other, env={**os.environ, "PYTHONPATH": str(other)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=120)
            assert client.run(lambda: __import__("csbench").__file__) == {
                address: str(other / "csbench" / "__init__.py") for address in client.scheduler_info()["workers"]}
            code = run(out, plugin, "--experiments", "landscape", "--config", str(tmp_path / "small.toml"),
                       "--executor", "dask", "--scheduler", cluster.scheduler_address)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    assert code == 1
    assert "its worker ran other code than this run fingerprinted" in capsys.readouterr().err
    connection = sqlite3.connect(out / "results.sqlite")
    assert connection.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
    connection.close()
    assert set(stored(out).status) == {"ok"}
    assert Path("csbench/experiments/landscape.py").read_text() != landscape.read_text()


def test_a_long_lived_worker_retrained_checkpoint_is_loaded_afresh(tmp_path, monkeypatch):
    """A worker (a Dask cluster's, say) that set the VAE up keeps it for later tasks; after
    `csbench train` overwrites the checkpoint it must recover with the new weights, which the
    task's fingerprint (the checkpoint's sha256) says it used."""
    import shutil

    import torch

    from csbench.generative.checkpoints import load_checkpoint, read_sidecar, save_checkpoint

    for suffix in (".pt", ".json"):
        shutil.copy(f"csbench/checkpoints/vae-mnist{suffix}", tmp_path / f"vae-mnist{suffix}")
    monkeypatch.setenv("CSBENCH_CHECKPOINTS", str(tmp_path))
    prior = "vae[steps=20,restarts=1]"
    before = [row["mse"] for row in _long_lived_task(prior).rows]
    model, meta = load_checkpoint(tmp_path / "vae-mnist.pt")
    with torch.no_grad():
        model.decoder[-1].bias.add_(0.5)                      # a "retrained" decoder: brighter images
    save_checkpoint(model, tmp_path / "vae-mnist.pt", {k: v for k, v in read_sidecar(tmp_path / "vae-mnist.pt").items()
                                                         if k not in ("architecture", "config", "sha256")})
    after = [row["mse"] for row in _long_lived_task(prior).rows]
    assert after != before
    from csbench.runner import _PRIORS
    _PRIORS.clear()                                            # a fresh worker
    assert [row["mse"] for row in _long_lived_task(prior).rows] == after


def test_a_long_lived_worker_does_not_store_old_code_under_new_code(tmp_path, monkeypatch):
    """A worker keeps the modules it imported. When a prior's source changes on disk after that
    (an edit while a Dask cluster stays up), its task fails with a one-line reason instead of
    returning old code's numbers that would be stored under the new code's fingerprint."""
    package = tmp_path / "shrink_prior.py"
    source = textwrap.dedent('''
        import torch
        from csbench import Prior

        class Shrink(Prior):
            name = "shrink"
            kind = "other"
            description = "x = FACTOR A^T y"
            FACTOR = 0.5

            def recover(self, problem):
                x = problem.operator.adjoint(problem.y) * self.FACTOR
                return x.clamp(0, 1).reshape(problem.batch, *problem.shape)
        ''')
    package.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    first = _long_lived_task("shrink", "shrink_prior:Shrink")
    assert first.status == "ok"
    package.write_text(source.replace('name = "shrink"', '"""Shrunk back-projection."""\n'
                                      '    name = "shrink"  # a comment'))                   # the same code
    assert _long_lived_task("shrink", "shrink_prior:Shrink").status == "ok"
    package.write_text(source.replace("FACTOR = 0.5", "FACTOR = 0.25"))   # the module stays imported
    stale = _long_lived_task("shrink", "shrink_prior:Shrink")
    assert stale.status == "failed" and {row["status"] for row in stale.rows} == {"failed"}
    assert "shrink_prior changed on disk since this process loaded it" in stale.rows[0]["error"]


@pytest.mark.slow
def test_a_long_lived_worker_does_not_store_an_experiment_of_old_code(monkeypatch):
    """The same for a theory experiment: a worker that first read landscape.py before it changed on
    disk (here: its recorded identity is another file's) fails the experiment with the reason."""
    from pathlib import Path

    from csbench import fingerprint
    from csbench.runner import ExperimentJob, run_experiment

    assert run_experiment(ExperimentJob("landscape", 0.1, 0)).status == "ok"
    landscape = Path("csbench/experiments/landscape.py").resolve()
    monkeypatch.setitem(fingerprint._FIRST_READ, landscape, "the file as an earlier version")
    stale = run_experiment(ExperimentJob("landscape", 0.1, 0))
    assert stale.status == "failed" and stale.table is None
    assert "csbench.experiments.landscape changed on disk since this process loaded it" in stale.error
