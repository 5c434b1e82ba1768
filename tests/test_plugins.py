"""Plug-ins: entry points (how built-ins and third parties register), module:Class, file paths."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from csbench.cli import main
from csbench.errors import CsbenchError
from csbench.priors import load_plugin, make_prior, registry


def test_builtin_baselines_come_from_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="csbench.priors")}
    assert {"lasso-pixel", "lasso-dct", "lasso-wavelet", "vae", "dcgan"} <= names
    assert {"lasso-pixel", "lasso-dct", "lasso-wavelet", "vae", "dcgan"} <= set(registry())


def test_a_third_party_package_registers_through_its_entry_point(tmp_path, monkeypatch):
    """An installed distribution (a real .dist-info on sys.path) exposing `csbench.priors`."""
    (tmp_path / "thirdparty_prior.py").write_text(textwrap.dedent("""
        from csbench import Prior
        class Mean(Prior):
            name = "third-party-mean"; kind = "other"; description = "the mean image"
            def recover(self, problem):
                return problem.operator.adjoint(problem.y).reshape(problem.batch, *problem.shape)
    """))
    info = tmp_path / "thirdparty_prior-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-prior\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[csbench.priors]\nthird-party-mean = thirdparty_prior:Mean\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = registry()
    assert "third-party-mean" in found and found["third-party-mean"].origin == "thirdparty-prior"


def test_plugin_by_path_and_by_module(monkeypatch):
    classes = load_plugin("examples/min_norm_prior.py")
    assert [c.name for c in classes] == ["min-norm"]
    monkeypatch.syspath_prepend("tests/plugins")
    assert load_plugin("odd_priors:Crashing")[0].name == "crashing"
    prior = make_prior("min-norm[ridge=0.001]")
    assert prior.params == {"ridge": 0.001} and prior.label == "min-norm[ridge=0.001]"


def test_plugin_without_metadata_is_refused(tmp_path):
    bad = tmp_path / "bad_prior.py"
    bad.write_text("class NoName:\n    def recover(self, problem):\n        return None\n")
    with pytest.raises(CsbenchError, match="lacks the class attribute 'name'"):
        load_plugin(f"{bad}:NoName")
    with pytest.raises(CsbenchError, match="defines no Prior subclass"):
        load_plugin(str(bad))
    sys.modules.pop("csbench_plugin_bad_prior", None)


EXAMPLE_PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "csbench-db4"


def test_the_package_example_installs_with_its_entry_point_and_passes_check(tmp_path, monkeypatch, capsys):
    """examples/csbench-db4 built and installed by pip (into a folder put on sys.path): its entry
    point makes `lasso-db4` a registered prior, from the distribution csbench-db4, that passes check."""
    pytest.importorskip("setuptools")
    source = shutil.copytree(EXAMPLE_PACKAGE, tmp_path / "source")  # the build leaves files behind
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(tmp_path / "site"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert registry()["lasso-db4"].origin == "csbench-db4"
    assert main(["check", "lasso-db4"]) == 0
    assert "lasso-db4: all checks passed" in capsys.readouterr().out


def test_the_single_file_example_passes_check(capsys):
    assert main(["check", "examples/min_norm_prior.py"]) == 0
    assert "min-norm: all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("page", ["README.md", "docs/plugins.md"])
def test_the_documented_first_prior_passes_check(page, tmp_path, capsys):
    text = (Path(__file__).resolve().parents[1] / page).read_text()
    start = text.index("# my_prior.py")
    (tmp_path / "my_prior.py").write_text(text[start:text.index("```", start)])
    assert main(["check", str(tmp_path / "my_prior.py")]) == 0
    assert "back-projection: all checks passed" in capsys.readouterr().out


def test_a_plugin_given_to_compare_is_compared_unless_the_priors_are_listed(tmp_path, capsys):
    """`compare --plugin FILE` adds the file's priors to the preset's; `--priors` (or a TOML file's
    `priors`) runs exactly what it lists, with a note when it leaves the plug-in's priors out."""
    plugin = Path("examples/min_norm_prior.py").resolve()
    grid = ["compare", "--plugin", str(plugin), "--out", str(tmp_path / "run"), "--dry-run"]

    def planned(*extra):
        capsys.readouterr()
        assert main([*grid, *extra]) == 0
        out, err = capsys.readouterr()
        return [line.split()[0] for line in out.splitlines()[2:-1]], err

    priors, err = planned()
    assert priors == ["lasso-pixel", "lasso-dct", "lasso-wavelet", "tv", "vae", "dcgan", "min-norm"] and not err
    priors, err = planned("--priors", "lasso-dct", "--m", "50")
    assert priors == ["lasso-dct"]
    assert f"note: the prior(s) of --plugin {plugin} (min-norm) are not in --priors" in err
    (tmp_path / "run.toml").write_text('priors = ["lasso-dct"]\n')
    priors, err = planned("--config", str(tmp_path / "run.toml"))
    assert priors == ["lasso-dct"] and "are not in --priors" in err
    priors, err = planned("--priors", "min-norm[ridge=0.1]", "--m", "50")
    assert priors == ["min-norm[ridge=0.1]"] and not err
