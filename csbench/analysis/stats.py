"""Per-(prior, m) statistics of a tidy results table: means with bootstrap confidence intervals.

The percentile bootstrap of the mean of x_1..x_n draws B resamples of n values with replacement,
computes their means  mean*_b,  and reports the (1-level)/2 and (1+level)/2 quantiles of mean*_b.
The paper's error bars, mean +- 1.96 * sd / sqrt(n), are reported alongside (`mse_se`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from csbench.rng import numpy_generator

GROUP_KEYS = ["dataset", "measurement", "prior", "m", "noise"]
SUMMARY_COLUMNS = ["dataset", "measurement", "prior", "m", "noise", "n",
                   "mse_mean", "mse_ci_low", "mse_ci_high", "psnr_mean", "seconds_mean"]
_BLOCK_ELEMENTS = 2_000_000  # resample means are computed in blocks of at most this many draws


def bootstrap_means(values: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `n_boot` resamples (with replacement) of the 1-D array `values`, shape (n_boot,)."""
    values = np.asarray(values, dtype=float)
    n = values.size
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    means = [values[rng.integers(0, n, size=(min(block, n_boot - start), n))].mean(axis=1)
             for start in range(0, n_boot, block)]
    return np.concatenate(means)


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95,
                 rng: np.random.Generator) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval (lo, hi) of the mean of `values`.

    The interval is widened, if needed, to contain the sample mean (it always does for the
    mean except in degenerate tiny samples). No values -> (nan, nan); one value -> (v, v).
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        return float("nan"), float("nan")
    mean = float(values.mean())
    if values.size == 1:
        return mean, mean
    means = bootstrap_means(values, n_boot=n_boot, rng=rng)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return min(float(lo), mean), max(float(hi), mean)


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows that count in statistics: status == 'ok' with a finite MSE."""
    return results[(results["status"] == "ok") & np.isfinite(results["mse"].astype(float))]


def summarize(results: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> pd.DataFrame:
    """One row per (dataset, measurement, prior, m, noise) of the tidy `results` table.

    Columns: the fixed contract (dataset, measurement, prior, m, noise, n, mse_mean, mse_ci_low,
    mse_ci_high, psnr_mean, seconds_mean), then kind (when `results` has it), ssim_mean,
    mse_se = 1.96 * sd / sqrt(n) (the paper's error bar half-width) and n_failed.
    Only status == 'ok' rows count; n_failed counts 'failed' rows. A group's bootstrap generator
    is derived from (seed, group key), so adding a group leaves the other intervals unchanged.
    """
    rows = []
    for key, group in results.groupby(GROUP_KEYS, sort=True, dropna=False):
        ok = ok_rows(group)
        mse = ok["mse"].to_numpy(dtype=float)
        n = mse.size
        lo, hi = bootstrap_ci(mse, n_boot=n_boot, level=level,
                              rng=numpy_generator("summarize", seed, *plain(key)))
        row = dict(zip(GROUP_KEYS, plain(key)))
        row.update(
            n=n,
            mse_mean=float(mse.mean()) if n else float("nan"),
            mse_ci_low=lo,
            mse_ci_high=hi,
            psnr_mean=_mean(ok, "psnr"),
            seconds_mean=_mean(ok, "seconds"),
        )
        if "kind" in group:
            row["kind"] = str(group["kind"].iloc[0])
        row.update(
            ssim_mean=_mean(ok, "ssim"),
            mse_se=float(1.96 * mse.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
            n_failed=int((group["status"] == "failed").sum()),
        )
        rows.append(row)
    extras = (["kind"] if "kind" in results else []) + ["ssim_mean", "mse_se", "n_failed"]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS + extras)


def plain(values: tuple) -> tuple:
    """`values` with numpy scalars turned into Python ones (stable repr for derived seeds, JSON)."""
    return tuple(v.item() if isinstance(v, np.generic) else v for v in values)


def _mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame or frame.empty:
        return float("nan")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")
