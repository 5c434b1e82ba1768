"""csbench: a reproducible benchmark for compressed sensing with generative and sparsity priors.

    y = f(A x) + e,   recover x from (y, A) with a prior on x.
"""
from csbench.problem import Problem
from csbench.priors import Prior

__all__ = ["Problem", "Prior", "__version__"]
__version__ = "0.1.0"
