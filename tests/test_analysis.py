"""Analysis: statistics, measurements-to-target, savings, the claim, run comparison, figures."""
from __future__ import annotations

import io
import json
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from csbench.analysis.claim import CLAIM_KEYS, claim, error_floors, headline_target
from csbench.analysis.compare_runs import compare_summaries, comparison_summary, comparison_table
from csbench.analysis.figures import (error_vs_m, noise_sweep, prior_styles, reconstruction_grid,
                                      savings_figure, seconds_vs_error)
from csbench.analysis.stats import SUMMARY_COLUMNS, bootstrap_ci, summarize
from csbench.analysis.targets import crossing_m, savings_curve

GRID = np.array([10, 20, 40, 80, 160, 320])


def make_results(curves: dict[str, tuple[str, np.ndarray, Callable[[np.ndarray], np.ndarray]]],
                 *, n: int = 20, seed: int = 0, noise: float = 0.1, jitter: float = 0.0) -> pd.DataFrame:
    """Tidy results: curves = {prior: (kind, m_grid, f)}; instance i of prior p at m has
    mse = s_i * f(m) * exp(jitter * z), s_i a per-image difficulty shared by all priors (paired)."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0, 0.3, n))
    rows = []
    for prior, (kind, grid, f) in curves.items():
        for m in grid:
            mse = scale * f(m) * np.exp(jitter * rng.normal(size=n))
            for i in range(n):
                rows.append(dict(dataset="mnist", measurement="gaussian", prior=prior, kind=kind, m=int(m),
                                 noise=noise, seed=0, instance=i, mse=float(mse[i]),
                                 psnr=float(-10 * np.log10(mse[i])), ssim=0.5, seconds=0.01 * m,
                                 status="ok", error="", params="{}"))
    return pd.DataFrame(rows)


# --- measurements to target -------------------------------------------------------------------

def test_exact_grid_hit():
    assert crossing_m(GRID, 1.0 / GRID, 1 / 80) == pytest.approx(80)


def test_interpolation_is_log_log():
    # power law: exact between grid points
    assert crossing_m(GRID, 1.0 / GRID, 1 / 30) == pytest.approx(30)
    # by hand: (10, 0.1) -> (1000, 0.001); target 0.01 is halfway in log MSE, so m = 10^2
    assert crossing_m(np.array([10, 1000]), np.array([0.1, 0.001]), 0.01) == pytest.approx(100)


def test_zero_error_segment_falls_back_to_linear_mse():
    # c: 0.04 -> 0 between m = 10 and 40; target 0.02 is half-way in MSE -> halfway in log m: 20
    assert crossing_m(np.array([10, 40]), np.array([0.04, 0.0]), 0.02) == pytest.approx(20)


def test_never_reached_and_reached_at_first_point():
    curve = 0.05 + 1.0 / GRID
    assert crossing_m(GRID, curve, 0.01) == np.inf
    assert crossing_m(GRID, curve, 0.5) == GRID[0]


def test_crossing_is_vectorised_over_curves():
    curves = np.stack([1.0 / GRID, 2.0 / GRID, 0.05 + 1.0 / GRID])
    np.testing.assert_allclose(crossing_m(GRID, curves, 1 / 50), [50, 100, np.inf])


# --- savings -----------------------------------------------------------------------------------

def test_savings_ratio_known_for_same_function_of_m_over_c():
    f = lambda u: 0.1 * np.exp(-u / 50) + 0.002   # noqa: E731  (not a power law)
    results = make_results({
        "vae": ("generative", GRID, f),
        "gan": ("generative", GRID, lambda m: f(m / 2)),          # needs 2x more than vae
        "lasso-dct": ("sparsity", 3 * GRID, lambda m: f(m / 3)),  # needs 3x more than vae
    })
    targets = [0.05, 0.02, 0.01]
    savings = savings_curve(results, targets, n_boot=300)
    assert len(savings) == 2 * len(targets)
    best = savings[savings["best"]]
    assert list(best["generative_prior"]) == ["vae"] * 3 and list(best["sparsity_prior"]) == ["lasso-dct"] * 3
    assert best["ratio"].to_numpy() == pytest.approx(3.0)
    # the per-image difficulty is shared, so the paired bootstrap sees no uncertainty in the ratio
    assert best["ratio_ci_low"].to_numpy() == pytest.approx(3.0)
    assert best["ratio_ci_high"].to_numpy() == pytest.approx(3.0)
    gan = savings[savings["generative_prior"] == "gan"]
    assert gan["ratio"].to_numpy() == pytest.approx(1.5)
    assert savings["generative_reached"].all() and savings["sparsity_reached"].all()


def test_savings_ci_with_independent_noise_and_not_reached():
    results = make_results({
        "vae": ("generative", GRID, lambda m: 1.0 / m),
        "lasso-dct": ("sparsity", 4 * GRID, lambda m: 4.0 / m + 0.004),
    }, jitter=0.2, n=40)
    savings = savings_curve(results, [0.02, 0.005], n_boot=500).set_index("target")
    assert savings.loc[0.02, "ratio_ci_low"] <= savings.loc[0.02, "ratio"] <= savings.loc[0.02, "ratio_ci_high"]
    assert 2.5 < savings.loc[0.02, "ratio_ci_low"] and savings.loc[0.02, "ratio_ci_high"] < 8
    assert not savings.loc[0.005, "sparsity_reached"] and savings.loc[0.005, "generative_reached"]
    assert np.isnan(savings.loc[0.005, "m_sparsity"]) and savings.loc[0.005, "ratio"] == np.inf


# --- statistics --------------------------------------------------------------------------------

def test_bootstrap_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(7)
    covered = [lo <= 1.0 <= hi for lo, hi in
               (bootstrap_ci(rng.normal(1.0, 1.0, 100), n_boot=1000, rng=rng) for _ in range(400))]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_bootstrap_ci_edge_cases():
    rng = np.random.default_rng(0)
    assert np.isnan(bootstrap_ci([], rng=rng)).all()
    assert bootstrap_ci([0.3], rng=rng) == (0.3, 0.3)


def test_summarize_contract_columns_ci_and_failures():
    results = make_results({"vae": ("generative", GRID, lambda m: 1.0 / m)}, jitter=0.3)
    failed = results.iloc[:3].assign(status="failed", mse=np.nan, error="boom")
    summary = summarize(pd.concat([results, failed]), n_boot=500)
    assert list(summary.columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert {"kind", "ssim_mean", "mse_se", "n_failed"} <= set(summary.columns)
    assert ((summary.mse_ci_low <= summary.mse_mean) & (summary.mse_mean <= summary.mse_ci_high)).all()
    first = summary.iloc[0]
    assert first["n"] == 20 and first["n_failed"] == 3
    mse = results[results.m == first["m"]]["mse"]
    assert first["mse_mean"] == pytest.approx(mse.mean())
    assert first["mse_se"] == pytest.approx(1.96 * mse.std(ddof=1) / np.sqrt(20))
    assert summarize(results, n_boot=500).equals(summarize(results, n_boot=500))   # seeded


# --- the claim ---------------------------------------------------------------------------------

def _claim_results(sparsity_factor: float) -> pd.DataFrame:
    # vae: 0.64/m, floor 0.002 at m = 320, headline 0.004 reached at m = 160;
    # lasso-dct: the same curve in m / factor, so it needs `factor` x more measurements
    return make_results({
        "vae": ("generative", GRID, lambda m: 0.64 / m),
        "lasso-dct": ("sparsity", sparsity_factor * GRID, lambda m: 0.64 * sparsity_factor / m),
        "lasso-pixel": ("sparsity", GRID, lambda m: 0.2 + 0 * m),
    })


def test_a_generative_prior_that_keeps_improving_does_not_set_the_headline_target():
    # vae levels off at 0.01; the hybrid falls as 1/m^2 (0.64 -> 6e-6): it has no floor
    results = make_results({
        "vae": ("generative", GRID, lambda m: np.maximum(0.64 / m, 0.01)),
        "hybrid": ("generative", GRID, lambda m: 0.64 / m ** 2),
        "lasso-dct": ("sparsity", GRID, lambda m: 2.0 / m),
    })
    vae_floor = results[(results.prior == "vae") & (results.m == 320)]["mse"].mean()
    assert list(error_floors(results, "generative").index) == ["vae"]
    assert headline_target(results) == pytest.approx(2 * vae_floor)
    record = claim(results, n_boot=100)
    assert "levels off" in record["strongest"]["target_rule"] and "(vae)" in record["strongest"]["target_rule"]
    assert record["strongest"]["target_mse"] == pytest.approx(2 * vae_floor)


def test_claim_reproduced_with_known_ratio():
    results = _claim_results(8.0)
    floor = results[(results.prior == "vae") & (results.m == 320)]["mse"].mean()   # lowest vae mean
    assert headline_target(results) == pytest.approx(2 * floor)
    record = claim(results, n_boot=300)
    assert set(CLAIM_KEYS) <= set(record)
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["generative_prior"] == "vae" and record["sparsity_prior"] == "lasso-dct"
    assert record["m_generative"] == pytest.approx(160) and record["m_sparsity"] == pytest.approx(1280)
    assert record["ratio"] == pytest.approx(8) and record["ratio_ci"] == pytest.approx([8, 8])
    assert record["reproduced"] is True and "claim as published reproduces" in record["verdict"]
    assert record["verdict"].startswith("8.0x (95% CI 8.0-8.0) fewer measurements for vae than tuned lasso-dct")


def test_claim_not_reproduced_below_band():
    record = claim(_claim_results(2.0), n_boot=300)
    assert record["ratio"] == pytest.approx(2) and record["reproduced"] is False
    assert "claim as published does not reproduce" in record["verdict"]


def test_claim_sparsity_never_reaches_target_gives_lower_bound():
    results = make_results({
        "vae": ("generative", GRID, lambda m: 0.64 / m),
        "lasso-dct": ("sparsity", GRID, lambda m: 0.05 + 0 * m),
    })
    record = claim(results, n_boot=200)
    assert record["m_sparsity"] is None and record["ratio"] is None
    assert record["ratio_at_least"] == pytest.approx(320 / 160) and record["reproduced"] is False
    assert record["verdict"].startswith("At least 2.0x fewer measurements for vae than tuned lasso-dct")
    json.dumps(record, allow_nan=False)


def test_claim_without_a_sparsity_prior():
    record = claim(make_results({"vae": ("generative", GRID, lambda m: 1.0 / m)}), n_boot=100)
    assert set(CLAIM_KEYS) <= set(record) and record["reproduced"] is False
    assert record["ratio"] is None and "no non-generative prior" in record["strongest"]["verdict"]
    assert "the results have no tuned Lasso prior" in record["verdict"]
    json.dumps(record, allow_nan=False)


def test_claim_crossover_where_the_generative_floor_lets_lasso_win():
    results = make_results({
        "vae": ("generative", GRID, lambda m: 0.005 + 0.5 / m),
        "lasso-dct": ("sparsity", GRID, lambda m: 0.11 * np.exp(-m / 80)),
    })
    crossover = claim(results, n_boot=100)["crossover_mse"]
    summary = summarize(results, n_boot=10)
    vae = summary[summary.prior == "vae"]["mse_mean"].to_numpy()
    lasso = summary[summary.prior == "lasso-dct"]["mse_mean"].to_numpy()
    assert crossover is not None and vae.min() < crossover < vae.min() * 1.5
    assert crossing_m(GRID, lasso, crossover) < crossing_m(GRID, vae, crossover)
    assert crossing_m(GRID, lasso, 2 * crossover) > crossing_m(GRID, vae, 2 * crossover)


# --- comparing runs ----------------------------------------------------------------------------

def test_compare_summaries_flags_only_real_changes():
    curves = {"vae": ("generative", GRID, lambda m: 1.0 / m), "lasso-dct": ("sparsity", GRID, lambda m: 2.0 / m)}
    reference = summarize(make_results(curves, jitter=0.2, seed=1), n_boot=500)
    current_results = make_results(curves, jitter=0.2, seed=2)
    current_results.loc[current_results.prior == "vae", "mse"] *= 1.6
    current = summarize(current_results, n_boot=500)
    current = pd.concat([current, current.iloc[[0]].assign(prior="new-prior")])
    comparison = compare_summaries(current, reference)
    both = comparison[comparison.presence == "both"]
    assert both[both.prior == "vae"]["worse"].all()
    assert not both[both.prior == "lasso-dct"]["worse"].any() and not both["better"].any()
    assert (comparison[comparison.prior == "new-prior"]["presence"] == "current_only").all()
    flipped = compare_summaries(reference, current)
    assert flipped[flipped.prior == "vae"]["better"].all()
    assert (flipped[flipped.prior == "new-prior"]["presence"] == "reference_only").all()
    text = comparison_summary(comparison)
    assert text.startswith(f"{2 * len(GRID)} comparable (prior, m, noise) rows: {len(GRID)} worse beyond their CI, "
                           f"0 better beyond their CI, {len(GRID)} within noise; 1 only in this run (new-prior)")
    assert "only in the reference" in comparison_summary(flipped)
    table = comparison_table(comparison)
    assert len(table) == 2 * len(GRID) and list(table["flag"][:len(GRID)]) == ["worse"] * len(GRID)
    assert set(table["prior"][:len(GRID)]) == {"vae"} and set(table["flag"][len(GRID):]) == {"within noise"}


# --- figures -----------------------------------------------------------------------------------

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_figures_render_to_png():
    results = pd.concat([_claim_results(8.0), _claim_results(8.0).assign(noise=0.01)])
    summary = summarize(results, n_boot=50)
    families = {family: savings_curve(results, [0.05, 0.01, 0.004], family=family, n_boot=50)
                for family in ("lasso", "non-generative")}
    record = claim(results, n_boot=50)
    rng = np.random.default_rng(0)
    figures = [error_vs_m(summary, zero_mse=0.118), savings_figure(families, headline=record),
               seconds_vs_error(summary), noise_sweep(summary, 40),
               reconstruction_grid(rng.random((5, 1, 8, 8)), {"vae, m=40": rng.random((5, 1, 8, 8))}),
               reconstruction_grid(rng.random((2, 3, 8, 8)), {"x": rng.random((2, 3, 8, 8))}, title="rgb")]
    for fig in figures:
        assert _png(fig).startswith(b"\x89PNG")
    assert noise_sweep(summary[summary.noise == 0.1], 40) is None
    assert noise_sweep(summary[summary.noise == 0.1]) is None and noise_sweep(summary) is not None


def test_the_reconstruction_grid_shows_every_row_and_image_under_its_label():
    rng = np.random.default_rng(0)
    truth = rng.random((5, 1, 8, 6)) * 1.4 - 0.2                   # outside [0, 1]: clipped
    recons = {"dcgan m=10": rng.random((5, 1, 8, 6)), "lasso-dct m=40": rng.random((5, 1, 8, 6)),
              "vae m=10": rng.random((5, 1, 8, 6))}
    fig = reconstruction_grid(truth, recons, max_images=4)
    (ax,) = fig.axes
    assert [label.get_text() for label in ax.get_yticklabels()] == ["truth", *recons]
    picture = np.asarray(ax.images[0].get_array())
    tops = (ax.get_yticks() - 3.5).astype(int)                      # a row's first pixel: its label at the middle
    gap = tops[1] - 8
    assert gap > 0 and picture.shape == (4 * 8 + 3 * gap, 4 * 6 + 3 * gap)   # 4 rows of 4 images, no more
    for top, images in zip(tops, [truth, *recons.values()]):
        for c in range(4):
            np.testing.assert_array_equal(picture[top:top + 8, c * (6 + gap):c * (6 + gap) + 6],
                                          np.clip(images[c, 0], 0.0, 1.0))
        assert (picture[top:top + 8, 6:6 + gap] == 1.0).all()       # white between images
    assert len(ax.collections[0].get_paths()) == 16                  # a frame around each
    rgb = reconstruction_grid(rng.random((2, 3, 8, 8)), {"x": rng.random((2, 3, 8, 8))}, title="rgb")
    assert np.asarray(rgb.axes[0].images[0].get_array()).shape[2] == 3 and [t.get_text() for t in rgb.texts] == ["rgb"]


def test_every_prior_gets_its_own_line_style_however_many_share_a_kind():
    priors = [f"sparse-{i}" for i in range(14)] + ["vae", "dcgan"]
    frame = pd.DataFrame({"prior": priors, "kind": ["sparsity"] * 14 + ["generative"] * 2})
    styles = prior_styles(frame)
    looks = {(s["color"], s["marker"], s["linestyle"]) for s in styles.values()}
    assert set(styles) == set(priors) and len(looks) == len(priors)


def test_savings_figures_with_nothing_drawable_are_none():
    """One m value: every ratio is undefined; the figures say so instead of a log-axis crash."""
    from csbench.analysis.figures import savings_figure, savings_pairs

    rows = pd.DataFrame({"dataset": "mnist", "measurement": "inpaint", "noise": 0.1, "target": [0.01, 0.02],
                         "generative_prior": "vae", "sparsity_prior": "lasso-dct", "ratio": [np.nan, np.nan],
                         "ratio_ci_low": np.nan, "ratio_ci_high": np.nan, "best": True})
    assert savings_pairs(rows, {"lasso-dct": {}}) is None
    assert savings_figure({"lasso": rows}) is None
