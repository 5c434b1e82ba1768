"""The end-of-run table on the console: mean per-pixel MSE per prior (rows) and m (columns),
with the failed instances counted, read from a run's `summary.csv`."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def console_summary(out: Path) -> str:
    """One block per (dataset, measurement, noise): `prior  mse@m1  mse@m2 ...`, best per m
    marked with `*`, then `failed` counts where instances failed."""
    summary = pd.read_csv(Path(out) / "summary.csv")
    if summary.empty:
        return "no results yet"
    blocks = []
    for (dataset, measurement, noise), group in summary.groupby(["dataset", "measurement", "noise"], sort=True):
        table = group.set_index(["prior", "m"]).mse_mean.unstack("m")
        failed = group.set_index(["prior", "m"]).n_failed.unstack("m").fillna(0)
        best = {m: column.idxmin() for m, column in table.items() if column.notna().any()}
        width = max(len(str(p)) for p in table.index)
        lines = [f"mean MSE per pixel: {dataset}, {measurement}, sigma = {noise:g} (* best per m)",
                 " " * width + "".join(f"{f'm={m}':>11}" for m in table.columns)]
        for prior, row in table.iterrows():
            cells = []
            for m, value in row.items():
                text = "-" if pd.isna(value) else f"{value:.2e}" + ("*" if best.get(m) == prior else " ")
                cells.append(f"{text:>11}")
            lines.append(f"{prior:<{width}}" + "".join(cells))
            if failed.loc[prior].sum() > 0:
                lines.append(f"{'':<{width}}" + "".join(f"{f'{int(v)} failed' if v else '':>11}"
                                                        for v in failed.loc[prior]))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
