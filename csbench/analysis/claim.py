"""The headline claim: "generative priors need 5-10x fewer measurements than Lasso" — tested at one target.

Headline target. Savings depend on the target error (a generative prior levels off at its
representation error, so Lasso wins at small targets); one number needs one principled target:

    t* = 2 x min over generative priors g of ( min over m of mean MSE_g(m) ),

twice the lowest error floor reached by a generative prior: the regime generative priors are meant
for, a level they do reach, and one the paper's plots put Lasso far from at small m. Only priors
that level off have a floor (`error_floors`): a hybrid that keeps improving with m, such as a
generator plus a sparse deviation, still competes at t* but does not set it.

Reproduced. The paper's claim is a saving of at least 5x ("5-10x fewer"). We call it reproduced
when the lower end of the 95% paired-bootstrap interval of the ratio m_sparsity / m_generative is at
least the band's lower end (5): the data rule out savings below 5x. A saving above 10x still
reproduces the claim (the verdict says it exceeds the band). When the sparsity prior never reaches
t* on the grid, the ratio is only bounded below, by max(m grid) / m_generative.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from csbench.analysis.stats import ok_rows, plain
from csbench.analysis.targets import (SAVINGS_GROUP, crossing_m, instance_matrix, paired_matrices,
                                      savings_curve, require_kind)

CLAIM_KEYS = ["dataset", "measurement", "noise", "target_mse", "generative_prior", "sparsity_prior",
              "m_generative", "m_sparsity", "ratio", "ratio_ci", "reproduced"]
TARGET_RULE = ("target MSE = 2 x the lowest error floor (minimum over m of the mean MSE) "
               "reached by a generative prior that levels off")


def claim_group(results: pd.DataFrame, dataset: str | None = None, measurement: str | None = None,
                noise: float | None = None) -> tuple[tuple, pd.DataFrame] | None:
    """The (dataset, measurement, noise) group the claim is made on: the first (sorted) one matching
    the given filters that holds ok rows of both a generative and a sparsity prior; if none has both,
    the first matching group; None if nothing matches."""
    frame = ok_rows(results)
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    if measurement is not None:
        frame = frame[frame["measurement"] == measurement]
    if noise is not None:
        frame = frame[np.isclose(frame["noise"].astype(float), noise)]
    groups = [(plain(key), g) for key, g in frame.groupby(SAVINGS_GROUP, sort=True)]
    both = [(key, g) for key, g in groups if {"generative", "sparsity"} <= set(g["kind"])]
    return (both or groups or [None])[0]


def error_floors(results: pd.DataFrame, kind: str) -> pd.Series:
    """min over m of the mean MSE, per prior of the given kind (ok rows only), for the priors that
    level off: doubling m at the top of the grid cuts their error by less than half,
    MSE(m_max) > MSE(m') / 2 with m' the largest grid m <= m_max / 2 (a prior with no such m'
    counts as levelling off). A prior that keeps improving (e.g. a generator plus a sparse
    deviation) has no floor; if no prior of the kind levels off, every prior's minimum is returned."""
    frame = ok_rows(results)
    means = frame[frame["kind"] == kind].groupby(["prior", "m"])["mse"].mean()
    floors = means.groupby("prior").min()
    levelling = [prior for prior, curve in means.groupby("prior") if _levels_off(curve.droplevel("prior"))]
    return floors[levelling] if levelling else floors


def _levels_off(curve: pd.Series) -> bool:
    """`curve`: mean MSE indexed by m."""
    m_max = curve.index.max()
    lower = curve[curve.index <= m_max / 2]
    return lower.empty or curve[m_max] > lower.iloc[-1] / 2


def headline_target(results: pd.DataFrame, *, dataset: str | None = None, measurement: str | None = None,
                    noise: float | None = None) -> float:
    """t* = 2 x the lowest generative error floor in the claim's group (see module docstring); nan when
    the group has no generative prior or its floor is 0."""
    require_kind(results)
    selected = claim_group(results, dataset, measurement, noise)
    if selected is None:
        return float("nan")
    floors = error_floors(selected[1], "generative")
    if floors.empty or floors.min() <= 0:
        return float("nan")
    return 2.0 * float(floors.min())


def crossover_mse(generative: pd.DataFrame, sparsity: pd.DataFrame, n_targets: int = 400) -> float | None:
    """The error below which the sparsity prior needs fewer measurements than the generative one.

    Scans targets on a fine geometric grid from large to small (instances x m matrices, paired) and
    returns the largest target at which the sparsity prior wins after the generative prior has won at
    a larger one; None if there is no such switch.
    """
    mat_g, mat_s = paired_matrices(generative, sparsity)
    if mat_g.empty:
        return None
    grid_g, curve_g = mat_g.columns.to_numpy(float), mat_g.to_numpy().mean(axis=0)
    grid_s, curve_s = mat_s.columns.to_numpy(float), mat_s.to_numpy().mean(axis=0)
    values = np.concatenate([curve_g, curve_s])
    values = values[values > 0]
    if values.size == 0:
        return None
    generative_won = False
    for t in np.geomspace(values.max(), values.min(), n_targets):
        m_g, m_s = crossing_m(grid_g, curve_g, t), crossing_m(grid_s, curve_s, t)
        if m_g < m_s:
            generative_won = True
        elif m_s < m_g and generative_won:
            return float(t)
    return None


def claim(results: pd.DataFrame, *, paper_band: tuple[float, float] = (5, 10), n_boot: int = 2000,
          seed: int = 0, level: float = 0.95, dataset: str | None = None, measurement: str | None = None,
          noise: float | None = None, target: float | None = None) -> dict[str, Any]:
    """The claim record (JSON-serialisable; NaN/inf -> None) with the fixed keys of DESIGN.md plus
    target_rule, crossover_mse, ratio_at_least, generative_at_most, n_instances, paper_band, verdict.

    `target` overrides the headline target. Best priors are chosen on point estimates at the target.
    """
    require_kind(results)
    record: dict[str, Any] = {key: None for key in CLAIM_KEYS}
    record.update(reproduced=False, target_rule=TARGET_RULE, crossover_mse=None, ratio_at_least=None,
                  generative_at_most=None, n_instances=None, paper_band=[float(b) for b in paper_band])
    selected = claim_group(results, dataset, measurement, noise)
    if selected is None:
        return _finish(record, "No successful results match the requested dataset/measurement/noise.")
    key, group = selected
    record.update(zip(SAVINGS_GROUP, key))
    kinds = set(group["kind"])
    missing = [k for k in ("generative", "sparsity") if k not in kinds]
    if missing:
        return _finish(record, f"No claim can be tested: the results have no {' and no '.join(missing)} prior.")
    if target is None:
        target = headline_target(group)
        floors = error_floors(group, "generative")
        record["target_rule"] = f"{TARGET_RULE}: 2 x {floors.min():.4g} ({floors.idxmin()})"
    else:
        record["target_rule"] = "target MSE given by the caller"
    if not (target is not None and math.isfinite(target) and target > 0):
        return _finish(record, "No claim can be tested: the generative error floor is zero or undefined.")
    record["target_mse"] = float(target)

    savings = savings_curve(group, [target], n_boot=n_boot, seed=seed, level=level)
    best = savings[savings["best"]]
    if best.empty:
        return _finish(record, "No claim can be tested: no generative and sparsity prior share test instances.")
    row = best.iloc[0]
    g, s = row["generative_prior"], row["sparsity_prior"]
    record.update(generative_prior=g, sparsity_prior=s, m_generative=row["m_generative"],
                  m_sparsity=row["m_sparsity"], ratio=row["ratio"],
                  ratio_ci=[row["ratio_ci_low"], row["ratio_ci_high"]],
                  generative_at_most=bool(row["generative_at_most"]), n_instances=int(row["n_instances"]))
    mat_g = instance_matrix(group[group["prior"] == g])
    mat_s = instance_matrix(group[group["prior"] == s])
    record["crossover_mse"] = crossover_mse(mat_g, mat_s)
    if not row["generative_reached"]:
        return _finish(record, f"No generative prior reaches MSE {target:.3g} on the m grid: the claim fails here.")

    lower = row["ratio_ci_low"]
    if not row["sparsity_reached"]:
        record["ratio_at_least"] = float(mat_s.columns.max()) / row["m_generative"]
    if not math.isfinite(lower):   # most resamples never reach: only the grid bound is known
        lower = record["ratio_at_least"] if record["ratio_at_least"] is not None else lower
    record["reproduced"] = bool(lower >= paper_band[0])
    return _finish(record, _verdict(record, row, lower, paper_band, level))


def _verdict(record: dict, row: pd.Series, lower: float, band: Sequence[float], level: float) -> str:
    g, s, t = record["generative_prior"], record["sparsity_prior"], record["target_mse"]
    band_text = f"{band[0]:g}-{band[1]:g}x"
    if row["sparsity_reached"]:
        interval = f"{level:.0%} CI {_fmt(row['ratio_ci_low'])}-{_fmt(row['ratio_ci_high'])}"
        saving = (f"{g} needs {row['ratio']:.1f}x ({interval}) fewer measurements than {s} to reach MSE {t:.3g} "
                  f"(m = {row['m_generative']:.0f} vs {row['m_sparsity']:.0f})")
        if row["generative_at_most"]:
            saving += f", a lower bound since {g} is already there at the smallest m"
    else:
        saving = (f"{s} never reaches MSE {t:.3g} on the m grid, so {g} (m = {row['m_generative']:.0f}) "
                  f"needs at least {record['ratio_at_least']:.1f}x fewer measurements")
    if record["reproduced"]:
        outcome = f"the {band_text} claim reproduces"
        if lower > band[1]:
            outcome += ", with a saving above the paper's band"
    elif math.isfinite(row["ratio_ci_high"]) and row["ratio_ci_high"] < band[0]:
        outcome = f"the {band_text} claim does not reproduce"
    else:
        outcome = f"the {band_text} claim is not established (the interval reaches below {band[0]:g}x)"
    crossover = record["crossover_mse"]
    tail = f"; below MSE {crossover:.3g} {s} needs fewer measurements" if crossover is not None else ""
    test = f"reproduced means the {level:.0%} interval's lower end is at least {band[0]:g}x"
    return f"{saving}: {outcome} ({test}){tail}."


def _fmt(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "inf"


def _finish(record: dict[str, Any], verdict: str) -> dict[str, Any]:
    record["verdict"] = verdict
    return {key: _jsonable(value) for key, value in record.items()}


def _jsonable(value: Any) -> Any:
    """Plain Python values for json.dumps: numpy scalars unwrapped, NaN/inf -> None, lists recursed."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
