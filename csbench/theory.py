"""Sample-complexity theory the benchmark compares its measurements against.

* `rho(d)`: where the spurious critical point of  f(z) = 1/2 ||A G(z) - A G(z*)||^2  sits for a
  random depth-d ReLU network G (Hand & Voroninski, arXiv 1705.07576): near  -rho_d z*,  with

      rho_d = sum_{i=0}^{d-1} (sin th_i / pi) prod_{j=i+1}^{d-1} (pi - th_j) / pi,
      th_0 = pi,  th_i = g(th_{i-1}),  g(t) = arccos(((pi - t) cos t + sin t) / pi).

* `statistical_dimension_l1(s, n)`: the number of Gaussian measurements at which l1
  minimisation recovers an s-sparse vector of length n with probability 1/2 (Amelunxen, Lotz,
  McCoy, Tropp, arXiv 1303.6672):

      delta(s, n) = inf_{t >= 0} { s (1 + t^2) + 2 (n - s) [ (1 + t^2) Q(t) - t phi(t) ] },

  Q the standard Gaussian tail, phi the standard Gaussian density.
"""
from __future__ import annotations

import math

from scipy.optimize import minimize_scalar
from scipy.stats import norm

from csbench.errors import CsbenchError


def relu_angle_map(theta: float) -> float:
    """g(t) = arccos(((pi - t) cos t + sin t) / pi): the angle between relu(W x) and relu(W y)
    (in expectation, W Gaussian) when x and y are at angle t."""
    return math.acos(((math.pi - theta) * math.cos(theta) + math.sin(theta)) / math.pi)


def rho(depth: int) -> float:
    """rho_d of Hand & Voroninski: f has a spurious critical point near -rho_d z* (d >= 1 layers)."""
    if depth < 1:
        raise CsbenchError(f"rho(d) needs a depth d >= 1, got {depth}")
    angles = [math.pi]
    for _ in range(depth - 1):
        angles.append(relu_angle_map(angles[-1]))
    total = 0.0
    for i in range(depth):
        tail = math.prod((math.pi - angles[j]) / math.pi for j in range(i + 1, depth))
        total += math.sin(angles[i]) / math.pi * tail
    return total


def _l1_cone_width(t: float, s: int, n: int) -> float:
    tail = norm.sf(t)
    return s * (1 + t * t) + 2 * (n - s) * ((1 + t * t) * tail - t * norm.pdf(t))


def statistical_dimension_l1(s: int, n: int) -> float:
    """delta(s, n): the l1 phase-transition location in measurements (0 for s = 0, n for s = n)."""
    if not 0 <= s <= n or n < 1:
        raise CsbenchError(f"statistical dimension needs 0 <= s <= n and n >= 1, got s={s}, n={n}")
    if s == 0:
        return 0.0
    if s == n:
        return float(n)
    result = minimize_scalar(_l1_cone_width, bounds=(0.0, 10.0), args=(s, n), method="bounded",
                             options={"xatol": 1e-10})
    return float(result.fun)


def l1_rule_of_thumb(s: int, n: int) -> float:
    """The folklore threshold 2 s log(n / s) (an overestimate of `statistical_dimension_l1`)."""
    return 2 * s * math.log(n / s)
