"""The theory experiments' tables as the report shows them: a paragraph of measured numbers and
figures per experiment (`experiment_report`), from the tables alone (no PyTorch: `csbench report`
renders a stored run without importing it). The experiments themselves run in `run.py`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from csbench.theory import l1_rule_of_thumb, rho, statistical_dimension_l1


def experiment_report(name: str, table: pd.DataFrame) -> tuple[str, list[Figure]]:
    """A paragraph of measured numbers and the figures, for the report."""
    if name == "phase":
        nets = table[table.study == "random-net"].dropna(axis=1, how="all")
        l1 = table[table.study == "l1"].dropna(axis=1, how="all")
        k50 = m_at_half(nets, "k")
        s50 = m_at_half(l1, "s")
        n = int(l1["n"].iloc[0])
        text = ("Phase transitions (noiseless Gaussian measurements). Random ReLU net prior with the "
                "negation-check descent, measured m at 50% success against k: "
                + ", ".join(f"k={int(k)}: {m:.1f}" for k, m in zip(k50["k"], k50["m50"]))
                + " (theory: m >= k necessary, about 2k sufficient). l1 minimisation on s-sparse "
                f"signals of length n={n}, measured m at 50% vs the statistical dimension: "
                + ", ".join(f"s={int(s)}: {m:.1f} vs {statistical_dimension_l1(int(s), n):.1f}"
                            for s, m in zip(s50["s"], s50["m50"])) + ".")
        return text, [phase_figure(nets, l1)]
    if name == "landscape":
        summary = landscape_summary(table)
        text = ("Landscape of f(z) = 1/2 ||A G(z) - A G(z*)||^2 for random ReLU nets: success rates "
                "(relative error < 1e-3) of plain gradient descent and of the negation check, and the "
                "share of plain runs ending near -rho_d z*: "
                + "; ".join(f"d={r.depth} ({r.init} start): plain {r.plain_success:.2f}, negation check "
                            f"{r.check_success:.2f}, near -rho_d {r.plain_near_minus_rho:.2f} "
                            f"(rho_d={r.rho:.3f})" for r in summary.itertuples()) + ".")
        return text, [landscape_figure(table)]
    raise KeyError(name)


def m_at_half(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The m at which the success rate first reaches 1/2, per value of `by` ("k" or "s"),
    linearly interpolated between grid points (NaN when it never does)."""
    rows = []
    for key, group in frame.groupby(by):
        rate = group.groupby("m")["success"].mean().sort_index()
        ms, ps = rate.index.to_numpy(float), rate.to_numpy(float)
        above = np.flatnonzero(ps >= 0.5)
        if len(above) == 0:
            m50 = np.nan
        elif above[0] == 0:
            m50 = ms[0]
        else:
            i = above[0]
            m50 = ms[i - 1] + (0.5 - ps[i - 1]) * (ms[i] - ms[i - 1]) / (ps[i] - ps[i - 1])
        rows.append({by: key, "m50": m50})
    return pd.DataFrame(rows)


def _heatmap(ax, frame: pd.DataFrame, by: str) -> tuple[np.ndarray, np.ndarray]:
    rate = frame.pivot_table(index=by, columns="m", values="success", aggfunc="mean")
    ms, keys = rate.columns.to_numpy(float), rate.index.to_numpy(float)
    image = ax.pcolormesh(ms, keys, rate.to_numpy(float), vmin=0, vmax=1, cmap="viridis", shading="nearest")
    ax.set_xlabel("measurements m")
    return keys, image


def phase_figure(random_net: pd.DataFrame, l1: pd.DataFrame) -> Figure:
    """Two heatmaps of success probability with the theory thresholds and the measured m50."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    ks, image = _heatmap(left, random_net, "k")
    left.plot(ks, ks, "w--", label="m = k")
    left.plot(2 * ks, ks, "w:", label="m = 2k")
    half = m_at_half(random_net, "k")
    left.plot(half["m50"], half["k"], "r.-", label="measured 50%")
    left.set_ylabel("latent dimension k")
    left.set_title("random ReLU net prior, negation-check descent")
    left.legend(loc="lower right", fontsize=8, facecolor="0.35", labelcolor="white")  # white theory lines
    ss, _ = _heatmap(right, l1, "s")
    n = int(l1["n"].iloc[0])
    grid = np.linspace(ss.min(), ss.max(), 100)
    right.plot([statistical_dimension_l1(s, n) for s in grid], grid, "w--", label="statistical dimension")
    right.plot([l1_rule_of_thumb(s, n) for s in grid], grid, "w:", label="2 s log(n/s), rule of thumb")
    half = m_at_half(l1, "s")
    right.plot(half["m50"], half["s"], "r.-", label="measured 50%")
    right.set_ylabel("sparsity s")
    right.set_title(f"l1 minimisation, n = {n}")
    right.legend(loc="lower right", fontsize=8, facecolor="0.35", labelcolor="white")
    figure.colorbar(image, ax=[left, right], label="success probability")
    return figure


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
