"""Identities of what produced a stored result, so that a rerun never reuses a stale one.

A task's fingerprint is the sha256 of everything its numbers depend on besides its key
(dataset, measurement, prior, m, noise, seed): the prior's resolved parameters and tuning grid,
the source code of the prior and of every module it imports from its own package (transitively),
the files it loads (checkpoints), the measurement model's code, the scoring code, and the test
and validation images themselves. Change any of these and the task is recomputed.

Code is identified by each source file as the process first read it. The process that runs a task
or a theory experiment takes its fingerprint again (runner.task_fingerprint, experiment_fingerprint)
and sends it back with the result, which is stored only if it matches the one the calling process
took before the run; the worker also checks afterwards that its files are still the ones on disk
(`changed_sources`), and keys the prior's set-up by its checkpoints' sha256 and its dataset by the
files it reads. So a long-lived worker (a Dask cluster started before an edit, a retraining or new
images), a worker started with another environment or installation, or a file edited during a run
never puts other code's, weights' or images' numbers under a fingerprint.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from csbench.generative.checkpoints import sha256_of


def _module_file(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file and file.endswith(".py") else None


def _imported(module: ModuleType) -> list[ModuleType]:
    """Modules that `module` imports, or imports names from, at its top level."""
    found = []
    for value in vars(module).values():
        if inspect.ismodule(value):
            found.append(value)
            continue
        name = getattr(value, "__module__", None)
        if isinstance(name, str) and name in sys.modules:
            found.append(sys.modules[name])
    return found


def module_closure(module: ModuleType) -> dict[str, Path]:
    """{module name: source file} of `module` and of every module it imports, transitively, that
    belongs to the same top-level package or lies in the same folder (a single-file plug-in)."""
    root = module.__name__.split(".")[0]
    home = _module_file(module)
    folder = home.parent if home and "." not in module.__name__ else None
    seen: dict[str, Path] = {}
    visited: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if current.__name__ in visited:
            continue
        visited.add(current.__name__)
        own = current.__name__.split(".")[0] == root
        file = _module_file(current) if own or folder else None   # resolving every path is slow
        if file is None or not (own or folder in file.parents):
            continue
        seen[current.__name__] = file
        stack.extend(_imported(current))
    return seen


def _closure(objects: tuple[Any, ...]) -> dict[str, Path]:
    """{module name: source file} of the classes or modules given (`module_closure`), with every
    base class of a class included."""
    files: dict[str, Path] = {}
    for obj in objects:
        classes = inspect.getmro(obj) if inspect.isclass(obj) else (obj,)
        for item in classes:
            module = item if inspect.ismodule(item) else sys.modules.get(getattr(item, "__module__", ""))
            if module is not None and module.__name__ != "builtins":
                files.update(module_closure(module))
    return files


_FIRST_READ: dict[Path, str] = {}  # each source file's sha256 when this process first hashed it


def _source_hash(path: Path) -> str:
    """A source file's sha256 as this process first read it, taken with the code it imported then:
    a file edited later keeps that identity here (`changed_sources` tells the difference)."""
    if path not in _FIRST_READ:
        _FIRST_READ[path] = sha256_of(path)
    return _FIRST_READ[path]


def source_reloaded(path: str | Path) -> None:
    """Take a source file's identity afresh once it has been executed again (file plug-ins are, on
    every load)."""
    path = Path(path).resolve()
    _FIRST_READ[path] = sha256_of(path)


def code_hash(*objects: Any) -> str:
    """sha256 over the source closure (module_closure) of the classes or modules given, with
    every base class of a class included: each file as this process first read it."""
    digest = hashlib.sha256()
    for name, path in sorted(_closure(objects).items()):
        digest.update(name.encode())
        digest.update(_source_hash(path).encode())
    return digest.hexdigest()


def changed_sources(*objects: Any) -> list[str]:
    """The modules of `code_hash`'s closure whose source file on disk differs from the one this
    process first read (and runs): results computed now would carry a wrong code identity."""
    return sorted(name for name, path in _closure(objects).items() if sha256_of(path) != _source_hash(path))


def array_hash(*arrays: np.ndarray) -> str:
    """sha256 of arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def combine(**parts: Any) -> str:
    """One sha256 for named parts (anything JSON can write, with str() for the rest)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
