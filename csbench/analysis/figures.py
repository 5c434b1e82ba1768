"""The report's figures. Each function returns a matplotlib Figure built without pyplot (no global
state, no display needed); `fig.savefig("x.png")` renders it with the Agg backend.

Every figure styles a prior the same way: its colour comes from its kind's palette, generative
priors are solid lines, sparsity priors dashed, others dotted or dash-dot.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import text_to_path
from matplotlib.transforms import ScaledTranslation

from csbench.analysis.targets import FAMILY_LABELS

KIND_STYLE = {
    "generative": ("-", "o", ["#1f77b4", "#2ca02c", "#17becf", "#9467bd", "#000080"]),
    "sparsity": ("--", "s", ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#637939"]),
    "untrained": (":", "^", ["#7f7f7f", "#9edae5", "#c5b0d5"]),
    "other": ("-.", "D", ["#c49c94", "#dbdb8d", "#f7b6d2"]),
}
PANEL_KEYS = ["dataset", "measurement", "noise"]
TILE_INCHES = 1.1  # each picture of the reconstruction grid, with its gap


def prior_styles(frame: pd.DataFrame) -> dict[str, dict]:
    """{prior: matplotlib line kwargs}, colours assigned within each kind in name order; when a
    kind has more priors than colours, the next round of colours gets another marker."""
    kinds = (frame.groupby("prior")["kind"].first() if "kind" in frame
             else pd.Series("other", index=sorted(frame["prior"].unique())))
    styles = {}
    for kind, priors in kinds.groupby(kinds):
        linestyle, marker, palette = KIND_STYLE.get(kind, KIND_STYLE["other"])
        for i, prior in enumerate(sorted(priors.index)):
            round_marker = (marker + "vP*X")[(i // len(palette)) % 5]
            styles[prior] = dict(color=palette[i % len(palette)], linestyle=linestyle, marker=round_marker)
    return styles


def error_vs_m(summary: pd.DataFrame, *, zero_mse: float | None = None) -> Figure | None:
    """Mean MSE vs m (log axis) with its CI band, one line per prior, one panel per
    (dataset, measurement, noise); `zero_mse` draws the all-zero-image level. None when no prior has
    a positive finite mean (nothing a log axis can show)."""
    summary = drawable(summary, "mse_mean")
    if summary.empty:
        return None
    styles = prior_styles(summary)
    panels = list(summary.groupby(PANEL_KEYS, sort=True))
    fig, axes = _panels(len(panels))
    for ax, (key, panel) in zip(axes, panels):
        for prior, rows in panel.groupby("prior", sort=True):
            rows = rows.sort_values("m")
            ax.plot(rows["m"], rows["mse_mean"], label=prior, markersize=4, **styles[prior])
            ax.fill_between(rows["m"], rows["mse_ci_low"], rows["mse_ci_high"],
                            color=styles[prior]["color"], alpha=0.15, linewidth=0)
        if zero_mse is not None:
            ax.axhline(zero_mse, color="grey", linestyle=":", linewidth=1, label="all-zero image")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(xlabel="measurements m", ylabel="per-pixel MSE", title=_panel_title(key))
        ax.legend(fontsize="small")
    return fig


def savings_figure(families: Mapping[str, pd.DataFrame], *, headline: Mapping | None = None,
                   paper_band: Sequence[float] = (5, 10)) -> Figure | None:
    """Savings ratio m_baseline / m_generative against the target MSE, one curve per baseline family
    (`families`: family -> `savings_curve(..., family=family)`; its best-pair rows are drawn) with its
    paired-bootstrap CI band, the paper's band shaded, one panel per (dataset, measurement, noise).
    The legend names the priors each curve passes through. `headline` (a claim record) marks, on its
    own panel, the claim as published (its target) and the strongest comparison (the headline target).
    None without a curve."""
    frames = [drawable(frame[frame["best"]], "target", "ratio").assign(family=family)
              for family, frame in families.items() if not frame.empty]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return None
    panels = list(pd.concat(frames).groupby(PANEL_KEYS, sort=True))
    fig, axes = _panels(len(panels))
    for ax, (key, panel) in zip(axes, panels):
        for i, (family, rows) in enumerate(panel.groupby("family", sort=False)):
            rows = rows.sort_values("target")
            pairs = f"{', '.join(rows.generative_prior.unique())} vs {', '.join(rows.sparsity_prior.unique())}"
            color, linestyle = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"][i % 4], ["-", "--", "-.", ":"][i % 4]
            ax.plot(rows["target"], _positive(rows["ratio"]), marker="o", markersize=3, color=color,
                    linestyle=linestyle, label=f"vs best {FAMILY_LABELS[family]} ({pairs})")
            ax.fill_between(rows["target"], _positive(rows["ratio_ci_low"]), _positive(rows["ratio_ci_high"]),
                            color=color, alpha=0.2, linewidth=0)
        ax.set_title(_panel_title(key))
        for record, style, label in _marked(headline, key):
            ax.axvline(record["target_mse"], color="black", linestyle=style,
                       label=f"{label}: MSE {record['target_mse']:.3g}")
    for ax in axes:
        ax.axhspan(*paper_band, color="gold", alpha=0.25, label=f"paper: {paper_band[0]:g}-{paper_band[1]:g}x")
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(xlabel="target per-pixel MSE", ylabel="measurements saved (x)")
        # below, so the curves stay clear, a fixed 0.45 in down: a drop in axes units would move as the
        # layout resizes the axes, and the layout would not settle (it cut the legend's bottom edge)
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, 0),
                  bbox_transform=ax.transAxes + ScaledTranslation(0, -0.45, fig.dpi_scale_trans))
    return fig


def savings_pairs(savings: pd.DataFrame, styles: Mapping[str, dict], *,
                  paper_band: Sequence[float] = (5, 10)) -> Figure | None:
    """Every (generative, baseline) pair's savings ratio against the target MSE (`savings_curve` rows
    of one (dataset, measurement, noise) group), one panel per generative prior, one line per baseline
    styled by `styles` (`prior_styles`); bands are left to the family figure. None without a
    drawable (positive) ratio."""
    savings = drawable(savings, "target", "ratio")
    if savings.empty:
        return None
    panels = list(savings.groupby("generative_prior", sort=True))
    fig, axes = _panels(len(panels))
    for ax, (generative, panel) in zip(axes, panels):
        for baseline, rows in panel.groupby("sparsity_prior", sort=True):
            rows = rows.sort_values("target")
            ax.plot(rows["target"], _positive(rows["ratio"]), label=baseline, markersize=3, **styles[baseline])
        ax.axhspan(*paper_band, color="gold", alpha=0.25)
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(xlabel="target per-pixel MSE", ylabel=f"measurements saved by {generative} (x)", title=generative)
        ax.legend(fontsize="small")
    return fig


def seconds_vs_error(summary: pd.DataFrame) -> Figure | None:
    """Seconds per image vs mean MSE, one line per prior through its m grid (log-log); None when no
    row has both positive."""
    summary = drawable(summary, "mse_mean", "seconds_mean")
    if summary.empty:
        return None
    styles = prior_styles(summary)
    fig, (ax,) = _panels(1)
    for prior, rows in summary.groupby("prior", sort=True):
        rows = rows.sort_values("m")
        ax.plot(rows["mse_mean"], rows["seconds_mean"], label=prior, markersize=4, **styles[prior])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="per-pixel MSE", ylabel="seconds per image", title="cost vs error (points: m grid)")
    ax.legend(fontsize="small")
    return fig


def noise_sweep(summary: pd.DataFrame, m: float | None = None) -> Figure | None:
    """Mean MSE vs noise level sigma at a fixed m, one line per prior, with CI bands; None when fewer
    than two noise levels have a positive mean at that m. m = None: the m run at the most noise levels (largest m
    on ties)."""
    if m is None:
        levels = summary.groupby("m")["noise"].nunique()
        m = float(levels[levels == levels.max()].index.max()) if len(levels) else 0.0
    rows = drawable(summary[np.isclose(summary["m"].astype(float), m)], "mse_mean")
    if rows["noise"].nunique() < 2:
        return None
    styles = prior_styles(summary)
    fig, (ax,) = _panels(1)
    for prior, line in rows.groupby("prior", sort=True):
        line = line.groupby("noise", sort=True)[["mse_mean", "mse_ci_low", "mse_ci_high"]].mean()
        ax.plot(line.index, line["mse_mean"], label=prior, markersize=4, **styles[prior])
        ax.fill_between(line.index, line["mse_ci_low"], line["mse_ci_high"],
                        color=styles[prior]["color"], alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set(xlabel="noise level sigma", ylabel="per-pixel MSE", title=f"noise sweep at m = {m:g}")
    ax.legend(fontsize="small")
    return fig


def reconstruction_grid(truth: np.ndarray, recons: Mapping[str, np.ndarray], *, max_images: int = 8,
                        title: str | None = None) -> Figure:
    """Rows: the ground truth, then each reconstruction (label -> (N, C, H, W) array, e.g.
    "vae, m=100"); columns: the first `max_images` images. C = 1 grey, C = 3 RGB; values clipped to
    [0, 1]. One axes shows the grid as one image (white gaps, a frame per picture), the row labels as
    its y tick labels."""
    rows = [("truth", np.asarray(truth))] + [(label, np.asarray(x)) for label, x in recons.items()]
    labels = [label for label, _ in rows]
    n = min(max_images, rows[0][1].shape[0])
    height, width = rows[0][1].shape[2:]
    gap = max(1, max(height, width) // 14)
    picture = mosaic([images[:n] for _, images in rows], gap)
    fig, ax = _picture_figure(picture, TILE_INCHES / (max(height, width) + gap),
                              left=_text_inches(labels, "small") + 0.25, top=0.45 if title else 0.05)
    corners = [(c * (width + gap) - 0.5, r * (height + gap) - 0.5) for r in range(len(rows)) for c in range(n)]
    ax.add_collection(PatchCollection([Rectangle(xy, width, height) for xy in corners],
                                      facecolor="none", edgecolor="black", linewidth=0.8))
    ax.set_yticks([r * (height + gap) + (height - 1) / 2 for r in range(len(rows))], labels, fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _picture_figure(picture: np.ndarray, inches: float, *, left: float, top: float) -> tuple[Figure, Axes]:
    """A figure showing `picture` (grey in [0, 1], or RGB) at `inches` per pixel, with `left` and `top`
    inches of margin (0.05 right and below), no x ticks, tick marks or spines; a fixed layout: one draw."""
    size = (left + picture.shape[1] * inches + 0.05, top + picture.shape[0] * inches + 0.05)
    fig = Figure(figsize=size)
    ax = fig.add_axes((left / size[0], 0.05 / size[1], picture.shape[1] * inches / size[0],
                       picture.shape[0] * inches / size[1]))
    ax.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    return fig, ax


def _text_inches(texts: Sequence[str], size: str) -> float:
    """The width of the widest of `texts` at font size `size`, in inches."""
    prop = FontProperties(size=size)
    return max(text_to_path.get_text_width_height_descent(text, prop, ismath=False)[0] for text in texts) / 72


def mosaic(rows: Sequence[np.ndarray], gap: int) -> np.ndarray:
    """Images tiled into one picture on white: row r, column c is rows[r][c] (each row (n, C, H, W)),
    `gap` pixels apart, clipped to [0, 1]; (H', W') for C = 1, (H', W', C) otherwise."""
    tiles = np.pad(np.clip(np.stack(rows), 0.0, 1.0), [(0, 0)] * 3 + [(0, gap)] * 2, constant_values=1.0)
    count, n, channels, height, width = tiles.shape
    picture = tiles.transpose(0, 3, 1, 4, 2).reshape(count * height, n * width, channels)[:-gap, :-gap]
    return picture[..., 0] if channels == 1 else picture


def _panels(count: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(5.5 * count, 4.0), layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, count, squeeze=False)[0]))


def _panel_title(key: tuple) -> str:
    dataset, measurement, noise = key
    return f"{dataset}, {measurement}, sigma = {noise:g}"


def _marked(headline: Mapping | None, key: tuple) -> list[tuple[Mapping, str, str]]:
    """The comparisons of a claim record to mark on panel `key`: (record, line style, label)."""
    if not headline or (headline.get("dataset"), headline.get("measurement")) != key[:2] or \
            headline.get("noise") is None or not np.isclose(headline["noise"], key[2]):
        return []
    marks = [(headline, "--", f"as published ({headline.get('generative_prior')}'s floor x 2)"),
             (headline.get("strongest") or {}, ":", "headline target")]
    return [(record, style, label) for record, style, label in marks if record.get("target_mse")]


def drawable(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The rows a log axis can show: every one of `columns` finite and positive."""
    keep = np.ones(len(frame), dtype=bool)
    for column in columns:
        values = frame[column].to_numpy(dtype=float)
        keep &= np.isfinite(values) & (values > 0)
    return frame[keep]


def _positive(values: pd.Series) -> np.ndarray:
    """Values a log axis can show: non-positive and infinite ones become gaps (nan)."""
    values = values.to_numpy(dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)
