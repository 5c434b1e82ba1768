"""How many measurements a prior needs to reach a target error, and the savings of one prior over another.

Crossing rule. Given a grid m_1 < ... < m_K and a mean error curve c_1..c_K, the prior reaches the
target t at the first grid point j with c_j <= t. Between m_{j-1} and m_j we interpolate linearly in
(log m, log c):

    log m* = log m_{j-1} + (log t - log c_{j-1}) / (log c_j - log c_{j-1}) * (log m_j - log m_{j-1}),

which is exact for power-law curves c = a m^-b (straight lines in log-log, the usual shape of
recovery error vs m); if c_j = 0 the segment is interpolated linearly in c instead. A curve already
at or below t at m_1 gives m_1, flagged "at most" (the prior may need fewer). A curve that never
reaches t is "not reached": +inf.

Uncertainty. The design is paired: every prior sees the same test images (and the same A and noise
for a given seed). Bootstrap resamples draw instances, i.e. whole rows of the instances x m error
matrix, and apply the same draw to both priors of a comparison, so the ratio's interval reflects
how the two priors differ on the same images.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from csbench.analysis.stats import ok_rows, plain
from csbench.errors import CsbenchError
from csbench.rng import numpy_generator

SAVINGS_GROUP = ["dataset", "measurement", "noise"]
FAMILIES = {   # the baselines a generative prior is compared with
    "lasso": "the tuned Lasso family: sparsity priors named lasso-* that fix no parameter in their name, "
             "so their lam is tuned on validation images",
    "non-generative": "every prior of a non-generative kind (sparsity, untrained, other), plug-ins included",
}
FAMILY_LABELS = {"lasso": "tuned Lasso", "non-generative": "non-generative"}
SAVINGS_COLUMNS = ["dataset", "measurement", "noise", "target", "generative_prior", "sparsity_prior",
                   "m_generative", "m_sparsity", "ratio", "ratio_ci_low", "ratio_ci_high",
                   "generative_reached", "sparsity_reached", "generative_at_most", "sparsity_at_most",
                   "best", "n_instances"]


def crossing_m(m_grid: np.ndarray, curves: np.ndarray, target: float) -> np.ndarray:
    """Vectorised crossing rule: `curves` (..., K) on the increasing grid `m_grid` (K,) -> m (...).

    +inf where a curve never reaches `target`; m_grid[0] where it is already reached there.
    """
    m_grid = np.asarray(m_grid, dtype=float)
    curves = np.asarray(curves, dtype=float)
    below = curves <= target
    reached = below.any(axis=-1)
    j = np.argmax(below, axis=-1)
    prev = np.maximum(j - 1, 0)
    c_hi = np.take_along_axis(curves, prev[..., None], axis=-1)[..., 0]   # c_{j-1} > target
    c_lo = np.take_along_axis(curves, j[..., None], axis=-1)[..., 0]      # c_j <= target
    log_m = np.log(m_grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac_log = (np.log(target) - np.log(c_hi)) / (np.log(c_lo) - np.log(c_hi))
        frac_lin = (c_hi - target) / (c_hi - c_lo)
        frac = np.where(c_lo > 0, frac_log, frac_lin)
        m_star = np.exp(log_m[prev] + frac * (log_m[j] - log_m[prev]))
    m_star = np.where(np.isfinite(m_star), m_star, m_grid[j])   # degenerate segment: take m_j
    m_star = np.where(j == 0, m_grid[0], m_star)
    return np.where(reached, m_star, np.inf)


def _resample_counts(n_instances: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(n_instances, np.full(n_instances, 1.0 / n_instances), size=n_boot)


@functools.lru_cache(maxsize=64)
def _pair_counts(n_instances: int, n_boot: int, *parts: object) -> np.ndarray:
    """The resample counts of one (generative, baseline) pair, from the generator derived from
    ("savings", *parts); cached because a report draws the same pair for several comparisons
    (same parts, same numbers). Stored as uint32 (read-only): 4 bytes per draw."""
    counts = _resample_counts(n_instances, n_boot, numpy_generator("savings", *parts)).astype(np.uint32)
    counts.flags.writeable = False
    return counts


def instance_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Instances x m matrix of MSE for one prior's ok rows; an instance is (seed, instance).

    Instances missing at some m (a failed task or image) are dropped so rows stay comparable.
    """
    table = ok_rows(rows).pivot_table(index=["seed", "instance"], columns="m", values="mse", aggfunc="mean")
    return table.sort_index(axis=1).dropna(axis=0, how="any")


def paired_matrices(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Restrict two instance matrices to the instances both have, in the same row order."""
    common = a.index.intersection(b.index).sort_values()
    return a.loc[common], b.loc[common]


def target_grid(results: pd.DataFrame, n: int = 25) -> np.ndarray:
    """`n` geometrically spaced targets spanning the mean MSE curves of `results` (all priors, m)."""
    means = ok_rows(results).groupby(["prior", "m"])["mse"].mean()
    means = means[means > 0]
    if means.empty:
        return np.array([])
    return np.geomspace(means.min(), means.max(), n)


def family_members(results: pd.DataFrame, family: str) -> list[str]:
    """The priors of `results` (ok rows) that belong to a baseline family (see `FAMILIES`), sorted."""
    if family not in FAMILIES:
        raise CsbenchError(f"unknown baseline family {family!r}; known: {', '.join(FAMILIES)}")
    kinds = ok_rows(results).groupby("prior")["kind"].first()
    if family == "lasso":
        return sorted(p for p, k in kinds.items() if k == "sparsity" and p.startswith("lasso") and "[" not in p)
    return sorted(p for p, k in kinds.items() if k != "generative")


def savings_curve(results: pd.DataFrame, targets: Sequence[float] | None = None, *,
                  family: str = "non-generative", n_boot: int = 2000, seed: int = 0,
                  level: float = 0.95) -> pd.DataFrame:
    """Measurements-to-target of every (generative, baseline) prior pair, per (dataset, measurement, noise);
    the baselines are the priors of `family` (`FAMILIES`), in the `sparsity_prior` and `m_sparsity` columns.

    One row per (group, target, pair) with m_generative, m_sparsity, ratio = m_sparsity / m_generative
    and its paired bootstrap interval (ratio_ci_low, ratio_ci_high; inf where the baseline misses
    the target in that tail of resamples), the reached / at-most flags, and `best`: True on the pair of
    the best generative prior and the best baseline at that target. "Best" = fewest measurements on the
    point estimates (ties -> lower error floor, then name), chosen before and independently of the
    bootstrap; the interval does not include the selection's own uncertainty. `targets` default:
    `target_grid`.
    """
    require_kind(results)
    rows: list[dict] = []
    for key, group in results.groupby(SAVINGS_GROUP, sort=True):
        key = plain(key)
        kinds = ok_rows(group).groupby("prior")["kind"].first()
        matrices = {p: instance_matrix(group[group["prior"] == p]) for p in kinds.index}
        matrices = {p: mat for p, mat in matrices.items() if mat.size}
        generative = sorted(p for p in matrices if kinds[p] == "generative")
        baselines = [p for p in family_members(group, family) if p in matrices]
        if not generative or not baselines:
            continue
        group_targets = target_grid(group) if targets is None else np.asarray(targets, dtype=float)
        for t in group_targets:
            _check_target(t)
        best_g = {t: best_prior(matrices, generative, t) for t in group_targets}
        best_s = {t: best_prior(matrices, baselines, t) for t in group_targets}
        for g, s in itertools.product(generative, baselines):
            mat_g, mat_s = paired_matrices(matrices[g], matrices[s])
            if mat_g.empty:
                continue
            weights = _pair_counts(len(mat_g), n_boot, seed, *key, g, s) / len(mat_g)
            grid_g, grid_s = mat_g.columns.to_numpy(float), mat_s.columns.to_numpy(float)
            mean_g, mean_s = mat_g.to_numpy().mean(axis=0), mat_s.to_numpy().mean(axis=0)
            boot_g, boot_s = weights @ mat_g.to_numpy(), weights @ mat_s.to_numpy()
            for t in group_targets:
                m_g = float(crossing_m(grid_g, mean_g, t))
                m_s = float(crossing_m(grid_s, mean_s, t))
                ratio = _ratio(np.array(m_s), np.array(m_g))
                ratios = _ratio(crossing_m(grid_s, boot_s, t), crossing_m(grid_g, boot_g, t))
                lo, hi = _interval(ratios[~np.isnan(ratios)], level, float(ratio))
                rows.append(dict(
                    zip(SAVINGS_GROUP, key), target=float(t), generative_prior=g, sparsity_prior=s,
                    m_generative=_nan_if_inf(m_g), m_sparsity=_nan_if_inf(m_s),
                    ratio=float(ratio), ratio_ci_low=lo, ratio_ci_high=hi,
                    generative_reached=bool(np.isfinite(m_g)), sparsity_reached=bool(np.isfinite(m_s)),
                    generative_at_most=bool(mean_g[0] <= t), sparsity_at_most=bool(mean_s[0] <= t),
                    best=(g == best_g[t] and s == best_s[t]), n_instances=len(mat_g),
                ))
    return pd.DataFrame(rows, columns=SAVINGS_COLUMNS)


def best_prior(matrices: dict[str, pd.DataFrame], priors: Sequence[str], target: float) -> str:
    """The prior needing the fewest measurements to reach `target` (point estimates only);
    ties (e.g. none reaches it) are broken by the lower error floor, then by name."""
    def rank(prior: str) -> tuple[float, float, str]:
        mat = matrices[prior]
        curve = mat.to_numpy().mean(axis=0)
        return float(crossing_m(mat.columns.to_numpy(float), curve, target)), float(curve.min()), prior
    return min(priors, key=rank)


def _ratio(m_sparsity: np.ndarray, m_generative: np.ndarray) -> np.ndarray:
    """m_s / m_g with "not reached" = inf: inf/finite = inf, finite/inf = 0, inf/inf = nan."""
    with np.errstate(invalid="ignore"):
        return np.asarray(m_sparsity, dtype=float) / np.asarray(m_generative, dtype=float)


def _interval(samples: np.ndarray, level: float, estimate: float) -> tuple[float, float]:
    """Percentile interval of bootstrap `samples` (may hold inf), widened to contain a finite or
    infinite `estimate`; (nan, nan) without samples. Order statistics, so inf is handled exactly."""
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    if np.isnan(estimate):
        return float(lo), float(hi)
    return float(min(lo, estimate)), float(max(hi, estimate))


def _check_target(target: float) -> None:
    if not (np.isfinite(target) and target > 0):
        raise CsbenchError(f"target error must be a positive number, got {target}")


def require_kind(results: pd.DataFrame) -> None:
    if "kind" not in results:
        raise CsbenchError("results lack a 'kind' column (generative|sparsity|untrained|other)")


def _nan_if_inf(value: float) -> float:
    return value if np.isfinite(value) else float("nan")
