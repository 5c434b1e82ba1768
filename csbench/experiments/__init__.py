"""Theory experiments: each returns a tidy pandas DataFrame and has a function drawing its Figure.

- `phase`: empirical phase transitions (success over (k, m) for a random ReLU net prior with
  the negation-check descent; over (s, m) for l1 minimisation) against the theory thresholds.
- `landscape`: where plain gradient descent ends on random ReLU nets of depth 2..5, compared
  with the spurious critical point -rho_d z*, and success of plain descent vs the negation check.
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from matplotlib.figure import Figure

from csbench.experiments.landscape import landscape, landscape_figure, landscape_summary
from csbench.experiments.phase import l1_phase, m_at_half, phase_figure, random_net_phase
from csbench.theory import statistical_dimension_l1


def run_phase(scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Both phase-transition studies in one tidy table, told apart by `study`."""
    with _one_thread():
        nets = random_net_phase(scale=scale, seed=seed).assign(study="random-net")
        l1 = l1_phase(scale=scale, seed=seed).assign(study="l1")
    return pd.concat([nets, l1], ignore_index=True)


def run_landscape(scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    with _one_thread():
        return landscape(scale=scale, seed=seed)


EXPERIMENTS: dict[str, Callable[..., pd.DataFrame]] = {"phase": run_phase, "landscape": run_landscape}


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


class _one_thread:
    """Small batched problems run fastest on one thread (no intra-op synchronisation)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
