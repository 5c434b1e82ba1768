"""csbench: a reproducible benchmark for compressed sensing with generative and sparsity priors.

    y = f(A x) + e,   recover x from (y, A) with a prior on x.

`Problem` and `Prior` (the plug-in API) are imported on first use, so that the command line's
help, its `error:` lines and `report` do not wait for PyTorch's import.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Problem", "Prior", "__version__"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from csbench.priors import Prior
    from csbench.problem import Problem


def __getattr__(name: str) -> object:
    if name == "Problem":
        from csbench.problem import Problem
        return Problem
    if name == "Prior":
        from csbench.priors import Prior
        return Prior
    raise AttributeError(f"module 'csbench' has no attribute {name!r}")
