"""Names `name[key=value]`, run configurations: presets, TOML files, overrides, bad input."""
import pytest

from csbench.config import PAPER_M, PRESETS, make_config
from csbench.errors import CsbenchError
from csbench.naming import format_name, parse_name


def test_parse_name_reads_typed_parameters():
    assert parse_name("lasso-dct[lam=0.1,steps=500,solver=fista,pos=true]") == (
        "lasso-dct", {"lam": 0.1, "steps": 500, "solver": "fista", "pos": True})
    assert parse_name("vae") == ("vae", {})


@pytest.mark.parametrize("spec", ["Lasso", "lasso[lam]", "lasso[=1]", "", "a b"])
def test_parse_name_rejects_bad_names(spec):
    with pytest.raises(CsbenchError):
        parse_name(spec)


def test_format_name_inverts_parse_name():
    spec = "lasso-dct[lam=0.1,steps=500]"
    assert format_name(*parse_name(spec)) == spec


def test_default_preset_is_the_papers_mnist_setting():
    config = make_config()
    assert config.dataset == "mnist" and config.measurement == "gaussian"
    assert config.noise == (0.1,) and config.m == PAPER_M and config.n_images >= 64


def test_paper_preset_uses_300_images():
    assert make_config("paper").n_images == 300


def test_overrides_beat_file_beat_preset(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('priors = ["vae", "lasso-dct"]\nm = [25, 50]\nn_images = 5\n')
    config = make_config("quick", str(path), n_images=3, noise="0.01,0.1")
    assert config.priors == ("vae", "lasso-dct") and config.m == (25, 50)
    assert config.n_images == 3 and config.noise == (0.01, 0.1)
    assert make_config("quick").m == PRESETS["quick"]["m"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="huge"), "unknown preset"),
    (dict(m="10,abc"), "bad value for m"),
    (dict(m="0,10"), "m must be positive"),
    (dict(noise="-1"), "noise must be >= 0"),
    (dict(n_images=0), "n-images"),
    (dict(executor="gpu-farm"), "unknown executor"),
])
def test_bad_configuration_is_a_one_line_error(kwargs, message):
    preset = kwargs.pop("preset", "quick")
    with pytest.raises(CsbenchError, match=message):
        make_config(preset, **kwargs)


def test_bad_config_files(tmp_path):
    with pytest.raises(CsbenchError, match="does not exist"):
        make_config("quick", str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("m = [25,\n")
    with pytest.raises(CsbenchError, match="not valid TOML"):
        make_config("quick", str(bad))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'red'\n")
    with pytest.raises(CsbenchError, match="unknown configuration key"):
        make_config("quick", str(unknown))


def test_prior_lists_keep_bracketed_parameters_together():
    config = make_config("quick", priors="vae[steps=150,restarts=3],lasso-dct[lam=0.1],tv")
    assert config.priors == ("vae[steps=150,restarts=3]", "lasso-dct[lam=0.1]", "tv")
