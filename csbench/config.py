"""Run configuration: presets, a TOML file, and command-line overrides, in that order."""
from __future__ import annotations

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
_TUPLE_FIELDS = {"priors": str, "m": int, "noise": float, "seeds": int, "plugins": str,
                 "experiments": str}


def _coerce(key: str, value: object) -> object:
    """Accept lists or comma-separated strings for tuple fields; validate numbers."""
    if key in _TUPLE_FIELDS:
        items = _LIST_SEPARATOR.split(value) if isinstance(value, str) else list(value)
        try:
            items = tuple(_TUPLE_FIELDS[key](str(v).strip()) for v in items if str(v).strip())
        except ValueError:
            raise CsbenchError(f"bad value for {key}: {value!r}") from None
        if key in ("m", "priors", "noise", "seeds") and not items:  # the task grid's axes
            raise CsbenchError(f"{key} must not be empty")
        if key == "m" and min(items) < 1:
            raise CsbenchError(f"m must be positive, got {value!r}")
        if key == "noise" and min(items, default=0) < 0:
            raise CsbenchError(f"noise must be >= 0, got {value!r}")
        return items
    return value


def make_config(preset: str = "default", file: str | None = None, **overrides: object) -> RunConfig:
    """Preset, then the TOML file's keys, then explicit overrides (None means not given)."""
    if preset not in PRESETS:
        raise CsbenchError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    values: dict = {"preset": preset, **PRESETS[preset]}
    if file:
        path = Path(file)
        try:
            values.update(tomllib.loads(path.read_text()))
        except FileNotFoundError:
            raise CsbenchError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise CsbenchError(f"config file {file} is not valid TOML: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "seed" in values:  # the command line's --seed, spelt the same in a TOML file
        values["seeds"] = values.pop("seed")
    known = {f.name for f in fields(RunConfig)}
    if unknown := set(values) - known:
        raise CsbenchError(f"unknown configuration key(s) {sorted(unknown)}")
    config = replace(RunConfig(), **{k: _coerce(k, v) for k, v in values.items()})
    if config.n_images < 1:
        raise CsbenchError(f"--n-images must be >= 1, got {config.n_images}")
    if config.executor not in ("serial", "processes", "dask"):
        raise CsbenchError(f"unknown executor {config.executor!r}; use serial, processes or dask")
    if config.device not in ("cpu", "cuda"):
        raise CsbenchError(f"unknown device {config.device!r}; use cpu or cuda")
    return config
