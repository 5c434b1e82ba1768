"""Compare two runs' summaries (e.g. this commit vs a stored reference) row by row.

A row is `worse` when the current run's MSE confidence interval lies entirely above the reference's
(cur_lo > ref_hi): the error rose by more than either run's sampling noise. `better` is the mirror
(cur_hi < ref_lo). Overlapping intervals are "within noise" and flag nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from csbench.analysis.stats import GROUP_KEYS

COMPARISON_COLUMNS = GROUP_KEYS + ["presence", "mse_current", "mse_reference", "change", "relative_change",
                                   "ci_current_low", "ci_current_high", "ci_reference_low",
                                   "ci_reference_high", "worse", "better"]


def compare_summaries(current: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, measurement, prior, m, noise) in either summary (`summarize` output).

    presence: "both" | "current_only" | "reference_only"; change = mse_current - mse_reference,
    relative_change = change / mse_reference; worse / better as in the module docstring (False
    unless the key is present in both).
    """
    keep = GROUP_KEYS + ["mse_mean", "mse_ci_low", "mse_ci_high"]
    merged = pd.merge(current[keep], reference[keep], on=GROUP_KEYS, how="outer",
                      suffixes=("_current", "_reference"), indicator=True, sort=True)
    presence = merged.pop("_merge").map({"both": "both", "left_only": "current_only",
                                         "right_only": "reference_only"}).astype(str)
    cur_lo, cur_hi = merged["mse_ci_low_current"], merged["mse_ci_high_current"]
    ref_lo, ref_hi = merged["mse_ci_low_reference"], merged["mse_ci_high_reference"]
    both = presence == "both"
    out = merged[GROUP_KEYS].copy()
    out["presence"] = presence
    out["mse_current"] = merged["mse_mean_current"]
    out["mse_reference"] = merged["mse_mean_reference"]
    out["change"] = out["mse_current"] - out["mse_reference"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative_change"] = out["change"] / out["mse_reference"]
    out["ci_current_low"], out["ci_current_high"] = cur_lo, cur_hi
    out["ci_reference_low"], out["ci_reference_high"] = ref_lo, ref_hi
    out["worse"] = both & (cur_lo > ref_hi)
    out["better"] = both & (cur_hi < ref_lo)
    return out[COMPARISON_COLUMNS].reset_index(drop=True)


def comparison_markdown(comparison: pd.DataFrame) -> str:
    """A short Markdown account of `compare_summaries`: counts, then a table of the rows flagged
    worse or better and of those present in one run only."""
    worse, better = comparison["worse"], comparison["better"]
    one_sided = comparison["presence"] != "both"
    lines = [f"{int(worse.sum())} worse beyond their CI, {int(better.sum())} better beyond their CI, "
             f"{int((~worse & ~better & ~one_sided).sum())} within noise, "
             f"{int(one_sided.sum())} present in one run only."]
    shown = comparison[worse | better | one_sided]
    if shown.empty:
        return lines[0] + "\n"
    lines += ["", "| dataset | measurement | prior | m | noise | MSE now | MSE before | change | flag |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in shown.itertuples(index=False):
        flag = "worse" if row.worse else "better" if row.better else row.presence.replace("_", " ")
        lines.append(f"| {row.dataset} | {row.measurement} | {row.prior} | {row.m:g} | {row.noise:g} | "
                     f"{_num(row.mse_current)} | {_num(row.mse_reference)} | {_num(row.change, signed=True)} "
                     f"| {flag} |")
    return "\n".join(lines) + "\n"


def _num(value: float, signed: bool = False) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"
