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


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The rows both runs hold (the comparable ones), flagged worse first, then better, then within
    noise: prior, m, noise, MSE now and before (with CIs), change, flag."""
    both = comparison[comparison["presence"] == "both"]
    flag = np.where(both["worse"], "worse", np.where(both["better"], "better", "within noise"))
    rank = pd.Series(flag, index=both.index).map({"worse": 0, "better": 1, "within noise": 2})
    order = both.assign(_rank=rank).sort_values(["_rank", *GROUP_KEYS], kind="stable").index
    table = pd.DataFrame({
        "dataset": both["dataset"], "measurement": both["measurement"], "prior": both["prior"],
        "m": both["m"], "noise": both["noise"],
        "MSE now [95% CI]": [_with_ci(*v) for v in zip(both["mse_current"], both["ci_current_low"],
                                                       both["ci_current_high"])],
        "MSE before [95% CI]": [_with_ci(*v) for v in zip(both["mse_reference"], both["ci_reference_low"],
                                                          both["ci_reference_high"])],
        "change": [_num(v, signed=True) for v in both["change"]], "flag": flag}, index=both.index)
    return table.loc[order].reset_index(drop=True)


def comparison_summary(comparison: pd.DataFrame) -> str:
    """One line: counts of comparable rows worse / better beyond their CI and within noise, then the
    rows only one run holds (counted, with their priors), never listed one by one."""
    both = comparison["presence"] == "both"
    worse, better = int(comparison["worse"].sum()), int(comparison["better"].sum())
    text = (f"{int(both.sum())} comparable (prior, m, noise) rows: {worse} worse beyond their CI, "
            f"{better} better beyond their CI, {int(both.sum()) - worse - better} within noise")
    for presence, where in [("reference_only", "only in the reference"), ("current_only", "only in this run")]:
        rows = comparison[comparison["presence"] == presence]
        if len(rows):
            text += f"; {len(rows)} {where} ({', '.join(sorted(rows['prior'].unique()))})"
    return text + "."


def _with_ci(mean: float, low: float, high: float) -> str:
    return f"{_num(mean)} [{_num(low)}, {_num(high)}]"


def _num(value: float, signed: bool = False) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"
