"""Where gradient descent ends on f(z) = 1/2 ||A G(z) - A G(z*)||^2 for random ReLU nets G.

Hand & Voroninski (arXiv 1705.07576): for expansive random nets of depth d, f has a descent
direction everywhere except near z* and near -rho_d z* (`csbench.theory.rho`). For each depth,
B random (G's latent z*, A) instances and R starts each, of two kinds: "random", z_0 ~ N(0, I_k),
and "near -rho z*", z_0 = -rho_d z* + 0.05 ||z*|| g / sqrt(k), g ~ N(0, I_k) (is the spurious
point attracting?). From the same starts run `hv_descent` twice: plain descent (check=False)
and with the negation check. Recorded per run: ratio = <z_final, z*> / ||z*||^2 (1 at the truth,
about -rho_d at the spurious point), cosine(z_final, z*), relative signal error, success (< 1e-3).
Networks: widths `expansive_widths(k, d, width)` (k -> width -> ... -> 784), noiseless.
"""
from __future__ import annotations

import itertools

import pandas as pd
import torch

from csbench.datasets.random_net import RandomReluGenerator, expansive_widths
from csbench.generative.hv import hv_descent
from csbench.generative.latent import decode_flat
from csbench.measurements.gaussian import Gaussian
from csbench.rng import torch_generator
from csbench.theory import rho

SUCCESS_TOLERANCE = 1e-3
METHODS = (("plain", False), ("negation check", True))


def landscape(depths: tuple[int, ...] = (2, 3, 4, 5), *, k: int = 5, m: int = 150, width: int = 150,
              instances: int = 2, starts: int = 12, steps: int = 300, seed: int = 0,
              scale: float = 1.0) -> pd.DataFrame:
    """One row per (depth, init, method, instance, start): depth, rho, init ("random" | "near
    -rho z*"), method ("plain" | "negation check"), instance, start, ratio, cosine, rel_error,
    success. `scale` multiplies starts."""
    starts = max(1, round(starts * scale))
    rows = []
    for depth in depths:
        network = RandomReluGenerator(expansive_widths(k, depth, width), seed=seed)
        generator = torch_generator("landscape", seed, depth)
        n = network.widths[-1]
        operator = Gaussian().operator(m, (1, 1, n), instances, generator)
        z_true = torch.randn(instances, k, generator=generator)
        with torch.no_grad():
            x_true = network(z_true)
        y = operator.forward(x_true)
        random_starts = torch.randn(starts, instances, k, generator=generator)
        jitter = torch.randn(starts, instances, k, generator=generator) * z_true.norm(dim=-1, keepdim=True)
        inits = {"random": random_starts, "near -rho z*": -rho(depth) * z_true + 0.05 * jitter / k ** 0.5}
        # both kinds of start in one run per method: every (start, instance) descends on its own
        finals = {method: hv_descent(network, operator, y, torch.cat(list(inits.values())), steps=steps,
                                     check=check)[0].split(starts) for method, check in METHODS}
        for (i, init), (method, _) in itertools.product(enumerate(inits), METHODS):
            z = finals[method][i]
            with torch.no_grad():
                error = (decode_flat(network, z) - x_true).norm(dim=-1) / x_true.norm(dim=-1)
            ratio = (z * z_true).sum(-1) / z_true.pow(2).sum(-1)
            cosine = (z * z_true).sum(-1) / (z.norm(dim=-1) * z_true.norm(dim=-1)).clamp_min(1e-30)
            for r, b in itertools.product(range(starts), range(instances)):
                rows.append({"depth": depth, "rho": rho(depth), "init": init, "method": method,
                             "instance": b, "start": r, "ratio": float(ratio[r, b]),
                             "cosine": float(cosine[r, b]), "rel_error": float(error[r, b]),
                             "success": bool(error[r, b] < SUCCESS_TOLERANCE)})
    return pd.DataFrame(rows)
