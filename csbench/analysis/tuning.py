"""What tuning chose and why: every grid point's validation score, and choices at the edge of a grid.

A prior with a tuning grid is tuned per task (dataset, measurement, prior, m, noise, seed): each grid
point p gets score(p) = mean validation MSE (inf when it failed) and the point with the lowest score is
chosen. A chosen value at the smallest or largest value its grid offers (for a numeric parameter with
at least two values) may be a boundary optimum: the best value can lie outside the grid. The warning
says by how much the next value in scored worse, score(next) / score(chosen) - 1: a small margin means
the score has levelled off at the edge, a large one that the grid may stop short of the optimum.
"""
from __future__ import annotations

import json
import math

import pandas as pd

TUNING_KEYS = ["dataset", "measurement", "prior", "m", "noise"]


def tuning_table(tuning: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, measurement, prior, m, noise): the grid's scores in one cell,
    `value: score` per point in grid order (score averaged over seeds, `*` on the chosen point),
    and the edge warning of that row. Dataset and measurement columns only when they vary."""
    rows = []
    edges = _edges(tuning)
    for key, group in tuning.groupby(TUNING_KEYS, sort=True):
        points = group.groupby("params", sort=False).agg(score=("score", "mean"), chosen=("chosen", "any"))
        cells = [f"{_label(params)}: {_score(score)}{'*' if chosen else ''}"
                 for params, (score, chosen) in points.iterrows()]
        rows.append({**dict(zip(TUNING_KEYS, key)), "validation MSE per grid point (* chosen)": ", ".join(cells),
                     "edge": "; ".join(edges.get(key, []))})
    table = pd.DataFrame(rows)
    constant = [k for k in ("dataset", "measurement") if k in table and table[k].nunique() == 1]
    return table.drop(columns=constant)


def edge_warnings(tuning: pd.DataFrame) -> list[str]:
    """One line per (prior, noise, parameter, edge): the m values at which the chosen value was the
    grid's smallest or largest and how much higher the next value in scored there, e.g.
    'lasso-dct (sigma = 0.1): lam at the top of its grid (2.2) at m = 10, 25, where the next value in
    (0.46) scores 3.0-8.0% higher'."""
    found: dict[tuple, list] = {}
    for (dataset, measurement, prior, m, noise), notes in _edges(tuning, detail=True).items():
        for param, side, value, inner, margin in notes:
            found.setdefault((prior, noise, param, side, value, inner), []).append((m, margin))
    lines = []
    for (prior, noise, param, side, value, inner), seen in sorted(found.items(), key=lambda item: item[0][:4]):
        line = (f"{prior} (sigma = {noise:g}): {param} at the {side} of its grid ({value:g}) at m = "
                f"{', '.join(f'{m:g}' for m in sorted({m for m, _ in seen}))}")
        margins = sorted(margin for _, margin in seen if margin is not None and math.isfinite(margin))
        if margins:
            low, high = (_percent(margins[0]), _percent(margins[-1]))
            line += f", where the next value in ({inner:g}) scores {low if low == high else f'{low}-{high}'}% higher"
        lines.append(line)
    return lines


def _edges(tuning: pd.DataFrame, detail: bool = False) -> dict[tuple, list]:
    """{(dataset, measurement, prior, m, noise): edge notes of the chosen points}, as text or, with
    `detail`, as (param, 'bottom' | 'top', value, next value in, score(next) / score(chosen) - 1 or None)."""
    edges: dict[tuple, list] = {}
    for key, group in tuning.groupby(TUNING_KEYS, sort=True):
        scores = {_canonical(json.loads(p)): score for p, score in group.groupby("params")["score"].mean().items()}
        grid = [json.loads(p) for p in scores]
        for params in map(json.loads, group.loc[group["chosen"].astype(bool), "params"].unique()):
            for param, value in params.items():
                values = sorted({p[param] for p in grid if _numeric(p.get(param))})
                if not _numeric(value) or len(values) < 2 or values[0] < value < values[-1]:
                    continue
                side = "bottom" if value == values[0] else "top"
                if not detail:
                    edges.setdefault(key, []).append(f"{param} = {value:g} at the {side} of its grid")
                    continue
                inner = values[1] if side == "bottom" else values[-2]
                neighbour, chosen = scores.get(_canonical({**params, param: inner})), scores[_canonical(params)]
                margin = neighbour / chosen - 1 if neighbour is not None and chosen > 0 else None
                edges.setdefault(key, []).append((param, side, value, inner, margin))
    return edges


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}" if abs(fraction) < 0.1 else f"{100 * fraction:.0f}"


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _label(params: str) -> str:
    """'{"lam": 0.1}' -> '0.1'; several parameters -> 'a=1,b=2'."""
    values = json.loads(params)
    if len(values) == 1:
        return str(next(iter(values.values())))
    return ",".join(f"{k}={v}" for k, v in values.items())


def _score(score: float) -> str:
    return f"{score:.3g}" if math.isfinite(score) else "failed"
