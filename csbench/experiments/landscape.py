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

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

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


def landscape_summary(frame: pd.DataFrame, window: float = 0.15) -> pd.DataFrame:
    """Per (depth, init): success rates of both methods, the share of plain runs ending with a
    ratio within `window` of -rho_d, and the median ratio of the failed plain runs."""
    rows = []
    for (depth, init), group in frame.groupby(["depth", "init"], sort=True):
        plain = group[group["method"] == "plain"]
        failed = plain[~plain["success"]]
        rho_d = float(group["rho"].iloc[0])
        rows.append({"depth": depth, "init": init, "rho": rho_d,
                     "plain_success": plain["success"].mean(),
                     "check_success": group[group["method"] == "negation check"]["success"].mean(),
                     "plain_near_minus_rho": ((plain["ratio"] + rho_d).abs() < window).mean(),
                     "plain_failed_median_ratio": failed["ratio"].median() if len(failed) else np.nan})
    return pd.DataFrame(rows)


def landscape_figure(frame: pd.DataFrame) -> Figure:
    """Left: final ratios <z, z*>/||z*||^2 of plain descent per depth (dots: random starts,
    crosses: starts near -rho_d z*), -rho_d marked. Right: success rates per depth and start."""
    figure = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    depths = sorted(frame["depth"].unique())
    plain = frame[frame["method"] == "plain"]
    jitter = np.random.default_rng(0)
    markers = {"random": "o", "near -rho z*": "x"}
    for i, depth in enumerate(depths):
        for init, marker in markers.items():
            group = plain[(plain["depth"] == depth) & (plain["init"] == init)]
            colours = np.where(group["success"], "tab:green", "tab:red")
            left.scatter(group["ratio"], i + jitter.uniform(-0.25, 0.25, len(group)), s=14, c=colours,
                         marker=marker, alpha=0.7)
        left.plot([-rho(depth)] * 2, [i - 0.35, i + 0.35], "k-", lw=2)
    left.axvline(1.0, color="grey", ls=":")
    left.set_yticks(range(len(depths)), [f"d = {d}" for d in depths])
    left.set_xlabel("<z_final, z*> / ||z*||^2 of plain descent\n"
                    "black bar: -rho_d;  green: success;  o: random start;  x: start near -rho_d z*")
    left.set_title("where plain gradient descent ends")
    summary = landscape_summary(frame)
    bars = [(method, init) for init in markers for method in ("plain", "check")]
    width = 0.8 / len(bars)
    for j, (method, init) in enumerate(bars):
        rates = summary[summary["init"] == init].set_index("depth")[f"{method}_success"].reindex(depths)
        label = f"{'plain descent' if method == 'plain' else 'negation check'}, {init} start"
        right.bar(np.arange(len(depths)) + (j - (len(bars) - 1) / 2) * width, rates.to_numpy(), width,
                  label=label, hatch="" if init == "random" else "//")
    right.set_xticks(range(len(depths)), [f"d = {d}" for d in depths])
    right.set_ylim(0, 1.05)
    right.set_ylabel("success rate (relative error < 1e-3)")
    right.set_title("recovery: plain descent vs negation check")
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=7)  # below: no bar hidden
    return figure
