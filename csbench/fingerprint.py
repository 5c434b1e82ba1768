"""Identities of what produced a stored result, so that a rerun never reuses a stale one.

A task's fingerprint is the sha256 of everything its numbers depend on besides its key
(dataset, measurement, prior, m, noise, seed): the prior's resolved parameters and tuning grid,
the source code of the prior and of every module it imports from its own package (transitively),
the files it loads (checkpoints), the measurement model's code, the scoring code, and the test
and validation images themselves (not the progress lines, which change no number: runner.SILENT).
Change any of these and the task is recomputed.

Code is identified by what Python runs, not by the text: each source file's syntax tree without its
docstrings (`code_identity`), so comments, docstrings, blank lines and layout can be edited without
recomputing anything, and any other change (a constant, a name, an operator) is a new identity.
Each file is identified as the process first read it. The process that runs a task
or a theory experiment takes its fingerprint again (runner.task_fingerprint, experiment_fingerprint)
and sends it back with the result, which is stored only if it matches the one the calling process
took before the run; the worker also checks afterwards that its files are still the ones on disk
(`changed_sources`), and keys the prior's set-up by its checkpoints' sha256 and its dataset by the
files it reads. So a long-lived worker (a Dask cluster started before an edit, a retraining or new
images), a worker started with another environment or installation, or a file edited during a run
never puts other code's, weights' or images' numbers under a fingerprint.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np



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


def module_closure(module: ModuleType, exclude: frozenset[str] = frozenset()) -> dict[str, Path]:
    """{module name: source file} of `module` and of every module it imports, transitively, that
    belongs to the same top-level package or lies in the same folder (a single-file plug-in). The
    modules named in `exclude` are left out with what is reachable only through them."""
    root = module.__name__.split(".")[0]
    home = _module_file(module)
    folder = home.parent if home and "." not in module.__name__ else None
    seen: dict[str, Path] = {}
    visited: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if current.__name__ in visited or current.__name__ in exclude:
            continue
        visited.add(current.__name__)
        own = current.__name__.split(".")[0] == root
        file = _module_file(current) if own or folder else None   # resolving every path is slow
        if file is None or not (own or folder in file.parents):
            continue
        seen[current.__name__] = file
        stack.extend(_imported(current))
    return seen


def _closure(objects: tuple[Any, ...], exclude: frozenset[str] = frozenset()) -> dict[str, Path]:
    """{module name: source file} of the classes or modules given (`module_closure`, less
    `exclude`), with every base class of a class included."""
    files: dict[str, Path] = {}
    for obj in objects:
        classes = inspect.getmro(obj) if inspect.isclass(obj) else (obj,)
        for item in classes:
            module = item if inspect.ismodule(item) else sys.modules.get(getattr(item, "__module__", ""))
            if module is not None and module.__name__ != "builtins":
                files.update(module_closure(module, exclude))
    return files


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """The tree with the first statement of each module, class and function body dropped when it is a
    string (its docstring)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:]
    return tree


def _canonical(node: Any) -> str:
    """A syntax tree as text: node types, their non-empty fields and constants, no line numbers
    (`ast.dump` without its version-dependent spelling of empty fields)."""
    if isinstance(node, ast.AST):
        fields = (f"{name}={_canonical(value)}" for name, value in ast.iter_fields(node) if value not in (None, []))
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(map(_canonical, node))}]"
    return repr(node)


_IDENTITIES: dict[str, str] = {}  # sha256 of a source's bytes -> its code identity


def code_identity(source: bytes) -> str:
    """sha256 of Python source as code: of its syntax tree without docstrings (`_canonical`), so the
    same for any comments, docstrings and layout. Source that does not parse: sha256 of its bytes."""
    raw = hashlib.sha256(source).hexdigest()
    if raw not in _IDENTITIES:
        try:
            text = _canonical(_without_docstrings(ast.parse(source)))
        except (SyntaxError, ValueError):
            _IDENTITIES[raw] = raw
        else:
            _IDENTITIES[raw] = hashlib.sha256(text.encode()).hexdigest()
    return _IDENTITIES[raw]


def _identity_on_disk(path: Path) -> str:
    return code_identity(path.read_bytes())


_FIRST_READ: dict[Path, str] = {}  # each source file's code identity when this process first read it


def _source_hash(path: Path) -> str:
    """A source file's code identity as this process first read it, taken with the code it imported
    then: a file edited later keeps that identity here (`changed_sources` tells the difference)."""
    if path not in _FIRST_READ:
        _FIRST_READ[path] = _identity_on_disk(path)
    return _FIRST_READ[path]


def source_reloaded(path: str | Path) -> None:
    """Take a source file's identity afresh once it has been executed again (file plug-ins are, on
    every load)."""
    path = Path(path).resolve()
    _FIRST_READ[path] = _identity_on_disk(path)


def code_hash(*objects: Any, exclude: frozenset[str] = frozenset()) -> str:
    """sha256 over the source closure (module_closure, less `exclude`) of the classes or modules
    given, with every base class of a class included: each file's code identity as this process
    first read it."""
    digest = hashlib.sha256()
    for name, path in sorted(_closure(objects, exclude).items()):
        digest.update(name.encode())
        digest.update(_source_hash(path).encode())
    return digest.hexdigest()


def changed_sources(*objects: Any, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The modules of `code_hash`'s closure whose code on disk differs from the code this process first
    read (and runs): results computed now would carry a wrong code identity. An edit of comments or
    docstrings alone is no change."""
    return sorted(name for name, path in _closure(objects, exclude).items()
                  if _identity_on_disk(path) != _source_hash(path))


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
