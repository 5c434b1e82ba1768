"""The plug-in point: a Prior recovers x from a Problem.

    class MyPrior(Prior):
        name = "my-prior"; kind = "other"; description = "what it does, in one line"
        parameters = {"lam": 0.1}                 # defaults; `my-prior[lam=0.3]` overrides
        def recover(self, problem): ...           # -> (B, C, H, W) tensor

Priors are found through the entry-point group `csbench.priors` (built-ins are registered
the same way), or with `--plugin module:Class` / `--plugin path/to/file.py`.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor

from csbench.errors import CsbenchError
from csbench.fingerprint import source_reloaded
from csbench.naming import NAME_PATTERN, format_name, parse_name
from csbench.problem import Problem

KINDS = ("generative", "sparsity", "untrained", "other")
RESERVED_NAMES = ("truth",)  # the store keeps the ground-truth images under this prior name


class SealedDataset:
    """A dataset as a prior may see it, by whitelist: its name, shape, description, provenance,
    whether its values lie in [0, 1] (`bounded`), its "train" and "validation" splits and their sizes, and (random-net) its network G. No
    attribute leads to the test split (the ground truth) or to the test latents."""

    __slots__ = ("name", "shape", "description", "provenance", "bounded", "generator", "_read", "_size")

    def __init__(self, dataset: Any):
        for attr in ("name", "shape", "description", "provenance", "bounded", "generator"):
            object.__setattr__(self, attr, getattr(dataset, attr, None))
        object.__setattr__(self, "_read", dataset.split)
        object.__setattr__(self, "_size", dataset.size)

    def split(self, which: str, n: int | None = None) -> Any:
        self._refuse(which)
        return self._read(which, n)

    def size(self, which: str) -> int:
        self._refuse(which)
        return self._size(which)

    @staticmethod
    def _refuse(which: str) -> None:
        if which == "test":
            raise CsbenchError("the prior read the test split (ground truth)")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a sealed dataset is read-only")


@contextmanager
def test_split_refused(on_breach: Callable[[str], None] | None = None) -> Iterator[None]:
    """While active, `split("test")` and `latents("test")` of every dataset class refuse (and
    report to `on_breach`), whoever holds the dataset: the seal's own references, or one the
    prior loaded itself. The runner and `csbench check` run every prior call inside it."""
    from csbench.datasets import DATASETS

    patched = []
    for cls in DATASETS.values():
        for method in ("split", "latents"):
            original = getattr(cls, method, None)
            if original is None:
                continue

            def guard(self, which, *args, _original=original, _method=method, **kwargs):
                if which == "test":
                    if on_breach is not None:
                        on_breach(f"{_method}('test')")
                    raise CsbenchError("the prior read the test split (ground truth)")
                return _original(self, which, *args, **kwargs)

            patched.append((cls, method, cls.__dict__.get(method)))
            setattr(cls, method, guard)
    try:
        yield
    finally:
        for cls, method, own in reversed(patched):
            if own is None:
                delattr(cls, method)
            else:
                setattr(cls, method, own)


@dataclass
class PriorContext:
    """What a prior may use before recovering: the dataset (train / validation splits, never the
    test images), the signal shape, the device and the run seed."""

    dataset: Any
    shape: tuple[int, int, int]
    device: str = "cpu"
    seed: int = 0


class Prior:
    """Base class of every prior. Subclasses set `name`, `kind`, `description` and `recover`.

    `parameters`: defaults of the keyword parameters (`name[key=value]` overrides them).
    `tuning`: a grid {param: [values]} that csbench tunes per (m, sigma) on the validation
    split by the same protocol for every prior; the chosen values are recorded in the results.
    `links`: measurement links the prior handles ("identity", "sign", "abs").
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "other"
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    tuning: ClassVar[dict[str, list]] = {}
    links: ClassVar[tuple[str, ...]] = ("identity",)
    origin: ClassVar[str] = ""

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.parameters)
        if unknown:
            raise CsbenchError(f"prior {self.name!r} has no parameter(s) {sorted(unknown)}; "
                               f"known: {sorted(self.parameters)}")
        for key, value in params.items():
            _check_type(self.name, key, value, self.parameters[key])
        self.params = {**self.parameters, **params}
        self.fixed = dict(params)  # set by name (`name[key=value]`): shown in the label, never tuned
        self.context: PriorContext | None = None
        self.check_params()

    # -- hooks ---------------------------------------------------------------------------------
    def check_params(self) -> None:
        """Raise a CsbenchError naming the parameter when `self.params` holds a value the prior
        cannot use (e.g. a negative lam). Types are already checked against the defaults."""

    def setup(self, context: PriorContext) -> None:
        """Load checkpoints or fit on `context.dataset`'s train split. Called once per dataset."""
        self.context = context

    def assets(self, dataset: Any) -> list[Path]:
        """Files besides code that decide this prior's output on `dataset` (e.g. a checkpoint):
        part of a stored result's identity, so a retrained checkpoint is never silently reused."""
        return []

    def supports(self, measurement: Any, dataset: Any) -> str | None:
        """None when the prior handles this measurement model and dataset, else the reason."""
        if measurement.link not in self.links:
            return f"{self.name} does not support the {measurement.link!r} link of {measurement.name!r}"
        return None

    def recover(self, problem: Problem) -> Tensor:
        raise NotImplementedError

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """`recover` at every point of a tuning grid (one result, or the exception it raised, per
        point). Priors that can solve all grid points in one batched program override this."""
        results: list[Tensor | Exception] = []
        for combo in grid:
            try:
                results.append(self.with_params(**combo).recover(problem))
            except Exception as exc:  # a grid point that fails is simply not chosen
                results.append(exc)
        return results

    # -- helpers -------------------------------------------------------------------------------
    def with_params(self, **params: Any) -> "Prior":
        """A copy with some parameters changed, sharing what `setup` loaded."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.params = {**self.params, **params}
        return clone

    def tuning_grid(self) -> list[dict[str, Any]]:
        """Every combination of the tuning grid, minus parameters the user fixed by name."""
        grid = {k: v for k, v in self.tuning.items() if k not in self.fixed}
        keys = list(grid)
        if not keys:  # nothing to tune: no validation recovery at all
            return []
        return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]

    @property
    def label(self) -> str:
        """`name` or `name[key=value,...]` for the user-set parameters."""
        return format_name(self.name, self.fixed)


def _check_type(prior: str, key: str, value: Any, default: Any) -> None:
    """A user-set parameter must have its default's type (an int is a float too) and be finite."""
    if default is None:
        return
    expected = float if isinstance(default, float) else type(default)
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise CsbenchError(f"prior {prior!r}: parameter {key} must be {expected.__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CsbenchError(f"prior {prior!r}: parameter {key} must be finite, got {value!r}")


# -- registry ------------------------------------------------------------------------------------
_PLUGINS: dict[str, type[Prior]] = {}
def check_prior_class(cls: Any, where: str) -> type[Prior]:
    if not (inspect.isclass(cls) and callable(getattr(cls, "recover", None))):
        raise CsbenchError(f"{where} is not a prior class with a recover(problem) method")
    for attr in ("name", "kind", "description"):
        if not isinstance(getattr(cls, attr, None), str):
            raise CsbenchError(f"{where} lacks the class attribute {attr!r} (a string)")
    if cls.kind not in KINDS:
        raise CsbenchError(f"{where}: kind {cls.kind!r} is not one of {', '.join(KINDS)}")
    if not NAME_PATTERN.match(cls.name) or "[" in cls.name:
        raise CsbenchError(f"{where}: name {cls.name!r} must be lower-case letters, digits, hyphens")
    if cls.name in RESERVED_NAMES:
        raise CsbenchError(f"{where}: the name {cls.name!r} is reserved")
    return cls


def registry() -> dict[str, type[Prior]]:
    """All known priors: entry points of group `csbench.priors`, then `--plugin` classes
    (which may not take an entry point's name)."""
    return {**_entry_point_classes(), **_PLUGINS}


def _entry_point_classes() -> dict[str, type[Prior]]:
    found: dict[str, type[Prior]] = {}
    own_first = sorted(entry_points(group="csbench.priors"), key=lambda ep: (ep.dist is None or ep.dist.name != "csbench"))
    for ep in own_first:
        try:
            cls = check_prior_class(ep.load(), f"entry point {ep.name!r} ({ep.value})")
        except CsbenchError:
            raise
        except Exception as exc:  # a broken third-party package must not hide the others
            print(f"warning: cannot load prior entry point {ep.name!r}: {exc}", file=sys.stderr)
            continue
        if not getattr(cls, "origin", ""):
            cls.origin = ep.dist.name if ep.dist else ep.value
        if cls.name in found and found[cls.name] is not cls:  # csbench's own names come first
            print(f"warning: prior entry point {ep.name!r} ({ep.value}) ignored: the name {cls.name!r} "
                  f"belongs to {found[cls.name].origin}", file=sys.stderr)
            continue
        found[cls.name] = cls
    return found


def load_plugin(spec: str) -> list[type[Prior]]:
    """Register priors from `module:Class`, `module` or `path/to/file.py` (all Prior subclasses)."""
    target, _, attr = spec.partition(":") if not spec.endswith(".py") else (spec, "", "")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise CsbenchError(f"plug-in file {target} does not exist")
            module_name = f"csbench_plugin_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
            source_reloaded(path)  # executed afresh: its identity is the file as it is now
        else:
            module = importlib.import_module(target)
    except CsbenchError:
        raise
    except Exception as exc:
        raise CsbenchError(f"cannot import plug-in {spec!r}: {type(exc).__name__}: {exc}") from None
    if attr:
        if not hasattr(module, attr):
            raise CsbenchError(f"plug-in module {target!r} has no attribute {attr!r}")
        classes = [getattr(module, attr)]
    else:
        classes = [obj for obj in vars(module).values()
                   if inspect.isclass(obj) and issubclass(obj, Prior) and obj is not Prior
                   and obj.__module__ == module.__name__ and isinstance(getattr(obj, "name", None), str)]
        if not classes:
            raise CsbenchError(f"plug-in {spec!r} defines no Prior subclass with a name")
    loaded = []
    builtin = _entry_point_classes()
    for cls in classes:
        cls = check_prior_class(cls, f"plug-in {spec!r}")
        if cls.name in builtin and builtin[cls.name] is not cls:
            raise CsbenchError(f"plug-in {spec!r}: the name {cls.name!r} belongs to the prior from "
                               f"{builtin[cls.name].origin or 'an installed package'}; choose another name")
        cls.origin = cls.origin or f"plugin {spec}"
        _PLUGINS[cls.name] = cls
        loaded.append(cls)
    return loaded


def make_prior(spec: str) -> Prior:
    """Instantiate a prior from its name, e.g. 'vae' or 'lasso-dct[lam=0.1]'."""
    name, params = parse_name(spec, "prior")
    known = registry()
    if name not in known:
        raise CsbenchError(f"unknown prior {name!r}; known: {', '.join(sorted(known))}")
    return known[name](**params)


def as_images(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Reshape a (B, n) or (B, C, H, W) tensor to (B, C, H, W)."""
    return x.reshape(x.shape[0], *shape)
