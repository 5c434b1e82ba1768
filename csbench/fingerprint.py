"""Identities of what produced a stored result, so that a rerun never reuses a stale one.

A task's fingerprint is the sha256 of everything its numbers depend on besides its key
(dataset, measurement, prior, m, noise, seed): the prior's resolved parameters and tuning grid,
the source code of the prior and of every module it imports from its own package (transitively),
the files it loads (checkpoints), the measurement model's code, the scoring code, and the test
and validation images themselves. Change any of these and the task is recomputed.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import sys
from functools import lru_cache
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
    stack = [module]
    while stack:
        current = stack.pop()
        file = _module_file(current)
        if current.__name__ in seen or file is None:
            continue
        if current.__name__.split(".")[0] != root and not (folder and folder in file.parents):
            continue
        seen[current.__name__] = file
        stack.extend(_imported(current))
    return seen


def code_hash(*objects: Any) -> str:
    """sha256 over the source closure (module_closure) of the classes or modules given, with
    every base class of a class included."""
    files: dict[str, Path] = {}
    for obj in objects:
        classes = inspect.getmro(obj) if inspect.isclass(obj) else (obj,)
        for item in classes:
            module = item if inspect.ismodule(item) else sys.modules.get(getattr(item, "__module__", ""))
            if module is not None and module.__name__ != "builtins":
                files.update(module_closure(module))
    return _hash_files(tuple(sorted((name, str(path)) for name, path in files.items())))


@lru_cache(maxsize=None)
def _hash_files(files: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


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
