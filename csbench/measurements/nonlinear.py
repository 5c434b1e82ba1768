"""Gaussian measurements (A_ij ~ N(0, 1/m)) through a nonlinear link: one-bit and phaseless
(the links themselves live in links.py)."""
from __future__ import annotations

from csbench.measurements.gaussian import Gaussian


class OneBit(Gaussian):
    """y = sign(A x + e), e_i ~ N(0, sigma^2/m), with sign(0) := +1 so y is in {-1, +1}."""

    name = "one-bit"
    description = "1-bit CS: y = sign(A x + e), Gaussian A (scale of x is lost)"
    link = "sign"


class Phaseless(Gaussian):
    """y = |A x| + e, e_i ~ N(0, sigma^2/m): noise is added after the modulus, so a noisy y
    can be negative (noiseless y is >= 0). The global sign of x is lost."""

    name = "phaseless"
    description = "phase retrieval: y = |A x| + e, Gaussian A (sign of x is lost)"
    link = "abs"

