"""TOML configurations: keys spelt like the flags, `preset` as a real preset, and one-line errors
that name the bad key or value (and list the valid keys)."""
from pathlib import Path

import pytest

from csbench.cli import main
from csbench.config import PRESETS, make_config
from csbench.errors import CsbenchError


def toml(tmp_path, text: str) -> str:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return str(path)


def test_keys_spelt_like_the_flags_or_the_fields(tmp_path):
    flags = make_config(None, toml(tmp_path, 'n-images = 5\nseed = 3\nplugin = "a.py"\ntask-timeout = 60\n'
                                             'n-validation = 4\nexperiment-scale = 0.5\n'))
    assert (flags.n_images, flags.seeds, flags.plugins, flags.task_timeout) == (5, (3,), ("a.py",), 60.0)
    assert (flags.n_validation, flags.experiment_scale) == (4, 0.5)
    fields = make_config(None, toml(tmp_path, 'n_images = 5\nseeds = [3, 4]\nplugins = ["a.py", "b:C"]\n'))
    assert (fields.n_images, fields.seeds, fields.plugins) == (5, (3, 4), ("a.py", "b:C"))


def test_a_single_value_or_a_comma_string_is_a_list(tmp_path):
    config = make_config(None, toml(tmp_path, 'm = 100\nnoise = 0.1\npriors = "vae,lasso-dct[lam=0.1,steps=5]"\n'))
    assert config.m == (100,) and config.noise == (0.1,) and config.priors == ("vae", "lasso-dct[lam=0.1,steps=5]")


def test_preset_key_acts_as_a_preset_under_the_files_keys(tmp_path):
    path = toml(tmp_path, 'preset = "quick"\nm = [25, 50]\n')
    config = make_config(None, path)
    assert config.preset == "quick" and config.m == (25, 50)
    assert config.priors == PRESETS["quick"]["priors"] and config.n_images == PRESETS["quick"]["n_images"]
    paper = make_config("paper", path)  # a preset given on the command line wins over the file's
    assert paper.preset == "paper" and paper.n_images == 300 and paper.m == (25, 50)
    assert make_config("default", path).preset == "quick"  # "default": what the CLI passes when not told
    assert make_config(None).preset == "default"


def test_preset_key_through_the_command_line(tmp_path, monkeypatch):
    """`compare --config` with `preset = "quick"` runs the quick preset's grid (compare stubbed out)."""
    import csbench.compare

    seen = {}

    def fake_compare(config, **kwargs):
        seen["config"] = config
        raise CsbenchError("stop here")

    monkeypatch.setattr(csbench.compare, "compare", fake_compare)
    path = toml(tmp_path, 'preset = "quick"\nn-images = 2\n')
    assert main(["compare", "--config", path, "--out", str(tmp_path / "out")]) == 2
    assert seen["config"].preset == "quick" and seen["config"].priors == PRESETS["quick"]["priors"]
    assert seen["config"].n_images == 2


def test_an_unknown_key_lists_the_valid_keys(tmp_path):
    with pytest.raises(CsbenchError) as error:
        make_config(None, toml(tmp_path, "images = 4\n"))
    message = str(error.value)
    assert "unknown configuration key 'images'" in message and "run.toml" in message
    for key in ("n-images", "seed", "seeds", "plugin", "plugins", "task-timeout", "preset", "priors", "m"):
        assert f" {key}," in message or f" {key} " in message
    with pytest.raises(CsbenchError, match="given twice"):
        make_config(None, toml(tmp_path, "seed = 1\nseeds = [2]\n"))


@pytest.mark.parametrize("text, message", [
    ('n_images = "four"', "--n-images must be an integer, got 'four' (in "),
    ("n_images = true", "--n-images must be an integer, got True"),
    ("n_images = 2.5", "--n-images must be an integer"),
    ("n_images = -3", "--n-images must be >= 1"),
    ("workers = 0", "--workers must be >= 1"),
    ("m = [25, true]", "bad value for m: True is not an integer"),
    ("m = [25.5]", "bad value for m: 25.5 is not an integer"),
    ('m = [25, "x"]', "bad value for m: 'x' is not an integer"),
    ("m = -5", "m must be positive"),
    ("noise = nan", "noise must be finite"),
    ("noise = [0.1, inf]", "noise must be finite"),
    ("noise = -0.1", "noise must be >= 0"),
    ("noise = false", "bad value for noise: False is not a number"),
    ("seeds = [-1]", "seeds must be >= 0"),
    ("task-timeout = 0", "--task-timeout must be a positive finite number"),
    ("task-timeout = inf", "--task-timeout must be a positive finite number"),
    ("experiment-scale = true", "--experiment-scale must be a number"),
    ("dataset = 3", "--dataset must be a string"),
    ("quiet = 1", "quiet must be true or false"),
    ('preset = "huge"', "unknown preset 'huge'"),
    ('scheduler = "tcp://127.0.0.1:8786"', "--scheduler needs --executor dask"),
])
def test_values_of_the_wrong_type_or_range_are_one_error(tmp_path, text, message):
    with pytest.raises(CsbenchError) as error:
        make_config(None, toml(tmp_path, text + "\n"))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    (dict(workers=0), "--workers must be >= 1"),
    (dict(noise="nan"), "noise must be finite"),
    (dict(noise="inf,0.1"), "noise must be finite"),
    (dict(seed="-2"), "seeds must be >= 0"),
    (dict(task_timeout=-1.0), "--task-timeout must be a positive"),
    (dict(scheduler="tcp://127.0.0.1:8786", executor="processes"), "--scheduler needs --executor dask"),
])
def test_command_line_values_are_checked_the_same_way(overrides, message):
    with pytest.raises(CsbenchError, match=message.replace("+", r"\+")):
        make_config("quick", **overrides)
    assert make_config("quick", scheduler="tcp://127.0.0.1:8786", executor="dask").scheduler


def test_config_that_is_a_directory_or_unreadable_is_one_error_line(tmp_path, capsys):
    assert main(["compare", "--config", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config file") and "is a directory" in err and err.count("\n") == 1
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00m = 1")
    assert main(["compare", "--config", str(binary), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read config file {binary}")


def test_config_without_read_permission_is_one_error_line(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked.toml"
    locked.write_text("m = 25\n")

    def refuse(self, *args, **kwargs):  # what reading a chmod 000 file does (as any user but root)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    assert main(["compare", "--config", str(locked), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read config file {locked}: ") and "Permission denied" in err
    assert err.count("\n") == 1


def test_workers_zero_and_scheduler_without_dask_on_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["compare", "--workers", "0", "--out", out]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--scheduler", "tcp://127.0.0.1:8786", "--out", out]) == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err
