"""Run configuration: a preset, then a TOML file, then command-line overrides, in that order.

A TOML file uses the command line's names: `n-images = 8` (or `n_images`), `seed = 1` (or
`seeds = [0, 1]`), `plugin = "my_prior.py"` (or `plugins = [...]`), `task-timeout = 60`, and
`preset = "quick"`, which applies that preset under the file's other keys. Lists may be TOML
arrays, comma-separated strings, or a single value (`m = 100`). Every bad key or value is one
CsbenchError naming it (and, for an unknown key, listing the valid ones).
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from csbench.errors import CsbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAPER_M = (10, 25, 50, 100, 200, 300, 400, 500, 750)
EXECUTOR_NAMES = ("serial", "processes", "dask")  # csbench/executors.py implements each
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a comparison run. The task grid is
    dataset x measurement x prior x m x noise x seed, on `n_images` test images."""

    preset: str = "default"
    dataset: str = "mnist"
    measurement: str = "gaussian"
    priors: tuple[str, ...] = ("lasso-pixel", "lasso-dct", "lasso-wavelet", "tv", "vae", "dcgan")
    m: tuple[int, ...] = PAPER_M
    noise: tuple[float, ...] = (0.1,)
    n_images: int = 64
    n_validation: int = 16
    seeds: tuple[int, ...] = (0,)
    out: str = "reports/latest"
    executor: str = "processes"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    scheduler: str | None = None
    device: str = "cpu"
    plugins: tuple[str, ...] = ()
    reuse: tuple[str, ...] = ()   # other runs' directories whose tasks of this checkout's identity are copied
    experiments: tuple[str, ...] = ()
    experiment_scale: float = 1.0
    reconstructions: int = 6
    task_timeout: float | None = None
    quiet: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "quick": dict(priors=("lasso-pixel", "lasso-dct", "lasso-wavelet", "vae"), m=(10, 25, 100, 400),
                  n_images=8, n_validation=8, reconstructions=4),
    "default": dict(experiments=("phase", "landscape")),
    "paper": dict(priors=("lasso-pixel", "lasso-dct", "lasso-wavelet", "tv", "omp", "iht", "vae",
                          "dcgan", "sparsegen", "pgd-gan", "deep-decoder"),
                  n_images=300, n_validation=32, experiments=("phase", "landscape"),
                  experiment_scale=2.0),
}

_LIST_SEPARATOR = re.compile(r",(?![^\[]*\])")  # commas outside name[key=value,...] brackets
_TUPLE_FIELDS = {"priors": str, "m": int, "noise": float, "seeds": int, "plugins": str, "experiments": str,
                 "reuse": str}
_GRID_AXES = ("m", "priors", "noise", "seeds")  # never empty
_SINGULAR = {"seed": "seeds", "plugin": "plugins"}  # the command line's --seed and --plugin
_MINIMUM = {"n_images": 1, "n_validation": 1, "workers": 1, "reconstructions": 0}  # integers
_POSITIVE = ("experiment_scale", "task_timeout")  # numbers > 0
_TEXT = ("preset", "dataset", "measurement", "out", "executor", "scheduler", "device")


def _flag(key: str) -> str:
    return key.replace("_", "-")


def valid_keys() -> str:
    """The keys a TOML file may use, spelt like the command-line options."""
    names = [_flag(f.name) for f in fields(RunConfig)] + list(_SINGULAR)
    return ", ".join(sorted(names))


def _number_kind(kind: type) -> str:
    return "an integer" if kind is int else "a number"


def _item(key: str, value: object, kind: type) -> object:
    """One list item: a string is parsed (command line, comma lists); a TOML value must have the
    right type already (no booleans for numbers, no 2.5 measurements)."""
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value.strip())
        except ValueError:
            raise CsbenchError(f"bad value for {_flag(key)}: {value!r} is not {_number_kind(kind)}") from None
    ok = isinstance(value, str) if kind is str else (
        isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool))
    if not ok:
        what = "a string" if kind is str else _number_kind(kind)
        raise CsbenchError(f"bad value for {_flag(key)}: {value!r} is not {what}")
    return kind(value)


def _coerce(key: str, value: object) -> object:
    """A value for field `key`, checked: lists from arrays, comma-separated strings or one value;
    numbers of the right type, finite and in range."""
    if key in _TUPLE_FIELDS:
        raw = _LIST_SEPARATOR.split(value) if isinstance(value, str) else (
            list(value) if isinstance(value, (list, tuple)) else [value])
        items = tuple(_item(key, v, _TUPLE_FIELDS[key]) for v in raw if not (isinstance(v, str) and not v.strip()))
        items = tuple(v.strip() if isinstance(v, str) else v for v in items)
        if key in _GRID_AXES and not items:
            raise CsbenchError(f"{key} must not be empty")
        if key == "m" and min(items) < 1:
            raise CsbenchError(f"m must be positive, got {value!r}")
        if key == "noise" and not all(math.isfinite(v) for v in items):
            raise CsbenchError(f"noise must be finite, got {value!r}")
        if key == "noise" and min(items) < 0:
            raise CsbenchError(f"noise must be >= 0, got {value!r}")
        if key == "seeds" and min(items) < 0:
            raise CsbenchError(f"seeds must be >= 0, got {value!r}")
        return items
    if key in _MINIMUM:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CsbenchError(f"--{_flag(key)} must be an integer, got {value!r}")
        if value < _MINIMUM[key]:
            raise CsbenchError(f"--{_flag(key)} must be >= {_MINIMUM[key]}, got {value}")
    elif key in _POSITIVE:
        if value is None and key == "task_timeout":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CsbenchError(f"--{_flag(key)} must be a number, got {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise CsbenchError(f"--{_flag(key)} must be a positive finite number, got {value}")
        return float(value)
    elif key in _TEXT and not isinstance(value, str):
        raise CsbenchError(f"--{_flag(key)} must be a string, got {value!r}")
    elif key == "quiet" and not isinstance(value, bool):
        raise CsbenchError(f"quiet must be true or false, got {value!r}")
    return value


def _normalised(values: dict, where: str) -> dict:
    """Keys spelt like the flags (n-images, seed, plugin) mapped to RunConfig's field names."""
    known = {f.name for f in fields(RunConfig)}
    out: dict = {}
    for key, value in values.items():
        name = _SINGULAR.get(key.replace("-", "_"), key.replace("-", "_"))
        if name not in known:
            raise CsbenchError(f"unknown configuration key {key!r}{where}; valid keys: {valid_keys()} "
                               "(- or _ alike)")
        if name in out:
            raise CsbenchError(f"configuration key {_flag(name)} is given twice{where} (as {key!r} too)")
        out[name] = value
    return out


def _read_toml(file: str) -> dict:
    path = Path(file)
    if path.is_dir():
        raise CsbenchError(f"config file {file} is a directory, not a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CsbenchError(f"config file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CsbenchError(f"cannot read config file {file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CsbenchError(f"config file {file} is not valid TOML: {exc}") from None


def file_keys(file: str | None) -> set[str]:
    """The RunConfig fields a TOML file sets (none without a file)."""
    return set(_normalised(_read_toml(file), f" in {file}")) if file else set()


def _preset(name: object) -> dict:
    if name not in PRESETS:
        raise CsbenchError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return {"preset": name, **PRESETS[name]}


def _checked(values: dict, where: str = "") -> dict:
    try:
        return {key: _coerce(key, value) for key, value in values.items()}
    except CsbenchError as exc:
        raise CsbenchError(f"{exc}{where}") from None


def make_config(preset: str | None = None, file: str | None = None, **overrides: object) -> RunConfig:
    """The preset, then the TOML file's keys, then explicit overrides (None means not given).
    The preset is the argument, unless it is None or "default" and the file names one."""
    from_file = _normalised(_read_toml(file), f" in {file}") if file else {}
    given = _normalised({k: v for k, v in overrides.items() if v is not None}, "")
    chosen = from_file.pop("preset", None)
    values = _checked(_preset(chosen if chosen is not None and preset in (None, "default") else preset or "default"))
    values.update(_checked(from_file, f" (in {file})"))
    values.update(_checked(given))
    config = replace(RunConfig(), **values)
    if config.executor not in EXECUTOR_NAMES:
        raise CsbenchError(f"unknown executor {config.executor!r}; use {', '.join(EXECUTOR_NAMES)}")
    if config.scheduler is not None and config.executor != "dask":
        raise CsbenchError(f"--scheduler needs --executor dask (got --executor {config.executor})")
    if config.device not in DEVICES:
        raise CsbenchError(f"unknown device {config.device!r}; use {' or '.join(DEVICES)}")
    return config
