"""The report always renders: priors or kinds without a finished result, a single m, an empty store;
the user's own figures survive; `report --against` prints its changes and can fail on a regression;
tuning scores are shown with a warning at the edge of a grid."""
from __future__ import annotations

import base64
import io
import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image
from test_analysis import GRID, make_results

from csbench.cli import main
from csbench.report import DPI, PAD_INCHES, _png, render
from csbench.store import TASK_KEY, ResultStore

RECONS = pd.DataFrame(columns=[*TASK_KEY, "instance", "image"])
META = {"config": {}, "sessions": []}
CURVES = {"vae": ("generative", GRID, lambda m: np.maximum(0.64 / m, 0.004)),
          "lasso-dct": ("sparsity", GRID, lambda m: 2.0 / m)}


def _render(out, results, tuning=None, **kwargs):
    return render(out, results, META, RECONS, {}, pd.DataFrame() if tuning is None else tuning, **kwargs)


def _figures(out) -> set[str]:
    return {p.stem for p in (out / "figures").glob("*.png")}


def test_a_kind_without_finished_results_is_listed_not_a_traceback(tmp_path):
    results = make_results(CURVES, n=4)
    failed = (results.prior == "vae") & (results.m > 10)
    results.loc[failed, ["status", "mse", "error"]] = ["failed", np.nan, "RuntimeError: boom"]
    results.loc[(results.prior == "vae") & ~failed, "mse"] = np.nan     # the rest finished with NaN
    nan_only = make_results({"nan-prior": ("other", GRID, lambda m: np.nan + m)}, n=4)
    skipped = make_results({"tv": ("sparsity", GRID[:2], lambda m: 1.0 / m)}, n=4).assign(
        status="skipped", mse=np.nan, error="tv does not support this measurement")
    _render(tmp_path, pd.concat([results, nan_only, skipped]))
    report = (tmp_path / "report.md").read_text()
    assert "`nan-prior` (24 ok: no finite error)" in report
    assert "`tv` (8 skipped: tv does not support this measurement)" in report
    assert "`vae` (20 failed, 4 ok: RuntimeError: boom)" in report
    claim = json.loads((tmp_path / "claim.json").read_text())
    assert claim["ratio"] is None and "no generative prior" in claim["verdict"]
    assert "No savings" in report and _figures(tmp_path) == {"error_vs_m", "seconds_vs_error"}


def test_nothing_finished_and_a_single_m_render(tmp_path):
    nothing = make_results(CURVES, n=3).assign(status="failed", mse=np.nan, error="boom")
    (tmp_path / "a").mkdir()
    _render(tmp_path / "a", nothing)
    report = (tmp_path / "a" / "report.md").read_text()
    assert "nothing to draw" in report and _figures(tmp_path / "a") == set()
    single = make_results({"vae": ("generative", np.array([100]), lambda m: 0.01 + 0 * m),
                           "lasso-dct": ("sparsity", np.array([100]), lambda m: 0.05 + 0 * m)}, n=3)
    (tmp_path / "b").mkdir()
    _render(tmp_path / "b", single)
    assert {"error_vs_m", "savings", "savings_pairs", "seconds_vs_error"} <= _figures(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "claim.json").read_text())["ratio_at_least"] == pytest.approx(1)


def test_report_on_an_empty_store_written_before_tuning_scores(tmp_path, capsys):
    ResultStore(tmp_path / "results.sqlite").close()
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        db.execute("DROP TABLE tuning")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("claim: ") and "No successful results" in out
    assert (tmp_path / "report.html").read_text().count("<img") == 0


def test_only_csbench_figures_are_replaced(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    Image.new("L", (4, 4)).save(figures / "mine.png")
    (figures / "notes.png").write_text("not even a PNG")
    two_noises = pd.concat([make_results(CURVES, n=3), make_results(CURVES, n=3, noise=0.5)])
    _render(tmp_path, two_noises)
    assert {"noise_sweep", "mine", "notes"} <= _figures(tmp_path)
    _render(tmp_path, make_results(CURVES, n=3))                 # one noise level: no sweep any more
    assert "noise_sweep" not in _figures(tmp_path) and {"mine", "notes"} <= _figures(tmp_path)
    assert Image.open(figures / "mine.png").size == (4, 4)


def test_the_html_embeds_the_figure_files(tmp_path):
    _render(tmp_path, make_results(CURVES, n=3))
    embedded = re.findall(r'alt="([^"]+)" src="data:image/png;base64,([^"]+)"', (tmp_path / "report.html").read_text())
    assert {name: base64.b64decode(data) for name, data in embedded} == {
        path.stem: path.read_bytes() for path in (tmp_path / "figures").glob("*.png")} != {}


def test_a_figure_is_cropped_to_its_contents_and_nothing_that_sticks_out_is_cut():
    fits = Figure(figsize=(3, 2), layout="constrained")
    fits.add_subplot().plot([1, 2], [3, 4])
    image = Image.open(io.BytesIO(_png(fits)))
    white = (np.asarray(image.convert("RGB")) == 255).all(axis=-1)
    pad = round(PAD_INCHES * DPI)
    assert image.info["Software"] == "csbench"
    for edge in (white, white.T, white[::-1], white.T[::-1]):     # pad white pixels, then contents
        assert edge[:pad].all() and not edge[pad].all()
    wide = Figure(figsize=(3, 2))
    legend = Line2D([], [], label="a legend entry far wider than its figure " * 3)
    wide.add_subplot().legend(handles=[legend], loc="upper center", bbox_to_anchor=(0.5, -0.1))
    assert Image.open(io.BytesIO(_png(wide))).width > 6 * DPI    # the whole legend, beyond the 3 in canvas


def _stored_run(out, results):
    store = ResultStore(out / "results.sqlite")
    for key, rows in results.assign(m_requested=results.m).groupby(TASK_KEY):
        store.write_task(dict(zip(TASK_KEY, key)), "ok", 1.0, rows.to_dict("records"))
    store.close()


@pytest.mark.slow
def test_report_against_prints_changes_and_fails_on_a_regression(tmp_path, capsys):
    reference, current = tmp_path / "reference", tmp_path / "current"
    _stored_run(reference, make_results(CURVES, n=12, jitter=0.2, seed=1))
    assert main(["report", str(reference)]) == 0
    worse = make_results({**CURVES, "tv": ("sparsity", GRID, lambda m: 1.0 / m)}, n=12, jitter=0.2, seed=2)
    worse = worse[worse.m != 10]                                    # a reference-only m
    worse.loc[worse.prior == "vae", "mse"] *= 1.8
    _stored_run(current, worse)
    capsys.readouterr()
    assert main(["report", str(current), "--against", str(reference)]) == 0
    printed = capsys.readouterr().out.splitlines()
    n = len(GRID) - 1
    assert printed[1].startswith(f"changes against {reference}: {2 * n} comparable (prior, m, noise) rows: "
                                 f"{n} worse beyond their CI")
    assert printed[1].endswith(f"; 2 only in the reference (lasso-dct, vae); {n} only in this run (tv).")
    assert "flag" in printed[2] and all(" vae " in line and "worse" in line for line in printed[3:3 + n])
    assert main(["report", str(current), "--against", str(reference), "--fail-on-regression"]) == 1
    assert main(["report", str(reference), "--against", str(reference), "--fail-on-regression"]) == 0
    html = (current / "report.html").read_text()
    changes = html[html.index("<h2>Changes against"):]
    assert "<pre>" not in html and changes.count("<tr") == 1 + 2 * n and changes.count("worse</td>") == n


def test_tuning_scores_per_prior_and_m_with_a_warning_at_the_edge(tmp_path):
    grid = [0.001, 0.01, 0.1]
    rows = [dict(dataset="mnist", measurement="gaussian", prior="lasso-dct", m=m, noise=0.1, seed=0,
                 params=json.dumps({"lam": lam}), score=score, chosen=lam == best)
            for m, best in [(10, 0.1), (20, 0.01)] for lam, score in zip(grid, [0.3, 0.2, 0.1 if m == 10 else 0.25])]
    rows[0]["score"] = np.nan                                       # a grid point that failed
    rows += [dict(dataset="mnist", measurement="gaussian", prior="lasso-pixel", m=m, noise=0.1, seed=0,
                  params=json.dumps({"lam": lam}), score=score, chosen=lam == 0.001)
             for m, near in [(10, 0.1005), (20, 0.102)] for lam, score in zip(grid + [1.0], [0.1, near, 0.3, 0.4])]
    _render(tmp_path, make_results(CURVES, n=3), tuning=pd.DataFrame(rows))
    report = (tmp_path / "report.md").read_text()
    assert ("lasso-dct (sigma = 0.1): lam at the top of its grid (0.1) at m = 10, where the next value in "
            "(0.01) scores 100% higher; lasso-pixel (sigma = 0.1): lam at the bottom of its grid (0.001) at "
            "m = 10, 20, where the next value in (0.01) scores 0.5-2.0% higher.") in report
    assert "| lasso-dct | 10 | 0.1 | 0.001: failed, 0.01: 0.2, 0.1: 0.1* | lam = 0.1 at the top of its grid |" in report
    assert "| lasso-dct | 20 | 0.1 | 0.001: 0.3, 0.01: 0.2*, 0.1: 0.25 |  |" in report
    _render(tmp_path, make_results(CURVES, n=3))
    assert "## Tuning" not in (tmp_path / "report.md").read_text()


def test_reconstructions_are_labelled_with_the_m_measured():
    """Stored reconstructions are keyed by the m asked for (as tasks are); a model that snaps m
    (here 100 and 200 measure 96 and 196) shows the measured m, as the curves and tables do."""
    from csbench.report import _reconstructions

    rng = np.random.default_rng(0)
    key = dict(dataset="mnist", measurement="inpaint-block", noise=0.1, seed=0)
    recons = pd.DataFrame([{**key, "prior": "truth", "m": 0, "instance": i, "image": rng.random((1, 4, 4))}
                           for i in range(2)]
                          + [{**key, "prior": prior, "m": m, "instance": i, "image": rng.random((1, 4, 4))}
                             for prior in ("tv", "vae") for m in (100, 200) for i in range(2)])
    results = pd.DataFrame([{**key, "prior": prior, "m_requested": m, "m": m - 4, "instance": i}
                            for prior in ("tv", "vae") for m in (100, 200) for i in range(2)])
    (ax,) = _reconstructions(recons, results).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["truth", "tv m=96", "tv m=196", "vae m=96", "vae m=196"]
