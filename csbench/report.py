"""Outputs of a run, rebuilt from its store: results.csv, summary.csv, claim.json, figures, report.

The report is a list of blocks (headings, text, tables, figures) rendered twice: Markdown with
figure links, and self-contained HTML with the figures embedded as base64 PNG.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.image import imsave
from PIL import Image

from csbench.analysis import figures
from csbench.analysis.claim import COMPARISONS, claim, error_floors
from csbench.analysis.compare_runs import compare_summaries, comparison_summary, comparison_table
from csbench.analysis.stats import ok_rows, summarize
from csbench.analysis.targets import FAMILIES, savings_curve
from csbench.analysis.tuning import edge_warnings, tuning_table
from csbench.store import ResultStore

FIGURE_MARK = {"Software": "csbench"}   # PNG metadata of csbench's own figures: only these are replaced
DPI, PAD_INCHES = 110, 0.1
EDGE_PIXELS = 2   # contents this close to the canvas' edge may be cut off there (layouts keep 3+ pixels clear)


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "figure"
    content: object
    caption: str = ""


def claim_line(out: Path) -> str:
    data = json.loads((Path(out) / "claim.json").read_text())
    return f"claim: {data.get('verdict') or json.dumps(data)}"


def write_outputs(out: Path, against: Path | None = None, notes: list[tuple[str, str]] = ()) -> pd.DataFrame | None:
    """Everything of the output contract, from `out/results.sqlite`; with `against` (a run directory
    holding summary.csv) also comparison.csv, returned (`compare_summaries`). `notes`: (label,
    sentence) pairs the report states under its verdict (`compare.Staleness.notes`)."""
    out = Path(out)
    store = ResultStore(out / "results.sqlite", read_only=True)
    results, meta = store.results(), {**store.meta(), "sessions": store.sessions(), "notes": list(notes),
                                      "reused": store.reused()}
    recons, experiments, tuning = store.reconstructions(), store.experiments(), store.tuning()
    store.close()
    reference = pd.read_csv(Path(against) / "summary.csv") if against is not None else None
    return render(out, results, meta, recons, experiments, tuning, reference, against)


def render(out: Path, results: pd.DataFrame, meta: dict, recons: pd.DataFrame,
           experiments: dict[str, pd.DataFrame], tuning: pd.DataFrame, reference: pd.DataFrame | None = None,
           against: Path | None = None) -> pd.DataFrame | None:
    """Write results.csv, summary.csv, claim.json, the figures and the report of one run's tables
    (those of `ResultStore`); returns the comparison with `reference` (a summary.csv) when given."""
    results.to_csv(out / "results.csv", index=False)  # columns as the store gives them
    summary = summarize(results)
    summary.to_csv(out / "summary.csv", index=False)
    verdict = claim(results, **_headline_group(results, meta.get("config", {})))
    (out / "claim.json").write_text(json.dumps(verdict, indent=2) + "\n")
    comparison = None
    if reference is not None:
        comparison = compare_summaries(summary, reference)
        comparison.to_csv(out / "comparison.csv", index=False)
    blocks = _blocks(results, summary, verdict, meta, recons, experiments, tuning, comparison, against)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    for stale in figure_dir.glob("*.png"):
        if _is_ours(stale):
            stale.unlink()
    pngs = {name: _png(fig) for name, fig in (b.content for b in blocks if b.kind == "figure")}
    for name, png in pngs.items():
        (figure_dir / f"{name}.png").write_bytes(png)
    (out / "report.md").write_text(_markdown(blocks))
    (out / "report.html").write_text(_html(blocks, pngs))
    return comparison


def _png(fig: Figure) -> bytes:
    """The figure as PNG, marked as csbench's, cropped to its contents with PAD_INCHES around them
    as savefig(bbox_inches="tight") would, but drawn once: its layout fits it in. One that reaches
    the edge of its canvas (something may stick out) is saved with bbox_inches="tight" instead."""
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    background = np.round(np.array(to_rgba(fig.get_facecolor())) * 255).astype(np.uint8)
    picture = _cropped(np.asarray(canvas.buffer_rgba()), background, round(PAD_INCHES * DPI))
    buffer = io.BytesIO()
    if picture is None:
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES, metadata=FIGURE_MARK)
    else:
        imsave(buffer, picture, format="png", dpi=DPI, metadata=FIGURE_MARK)
    return buffer.getvalue()


def _cropped(pixels: np.ndarray, background: np.ndarray, pad: int) -> np.ndarray | None:
    """`pixels` (H, W, 4) cropped to those unlike `background`, with `pad` pixels of background
    around them; None when they come within EDGE_PIXELS of an edge."""
    content = (pixels != background).any(axis=-1)
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        return pixels
    height, width = content.shape
    if min(rows[0], cols[0], height - 1 - rows[-1], width - 1 - cols[-1]) < EDGE_PIXELS:
        return None
    picture = np.empty((rows[-1] - rows[0] + 1 + 2 * pad, cols[-1] - cols[0] + 1 + 2 * pad, 4), np.uint8)
    picture[:] = background
    picture[pad:-pad or None, pad:-pad or None] = pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return picture


def _is_ours(path: Path) -> bool:
    """Whether a PNG was written by csbench (its metadata carries FIGURE_MARK)."""
    try:
        with Image.open(path) as image:
            return all(image.info.get(k) == v for k, v in FIGURE_MARK.items())
    except OSError:  # not an image PIL can read: not ours
        return False


def _headline_group(results: pd.DataFrame, config: dict) -> dict:
    """The claim is stated for the run's dataset and measurement at the paper's sigma = 0.1 when
    it was run, else at the first noise level of the configuration; {} for a run without results."""
    if results.empty:
        return {}
    noises = sorted(results.noise.unique())
    wanted = config.get("noise") or noises
    noise = 0.1 if 0.1 in noises else (wanted[0] if wanted[0] in noises else noises[0])
    return dict(dataset=results.dataset.iloc[0], measurement=results.measurement.iloc[0], noise=noise)


def _blocks(results, summary, verdict, meta, recons, experiments, tuning, comparison, against) -> list[Block]:
    config = meta.get("config", {})
    blocks = [Block("h1", "csbench comparison report"),
              Block("p", f"**Verdict.** {verdict.get('verdict', '')}")]
    for label, note in meta.get("notes", []):
        blocks.append(Block("p", f"**{label}.** {note}."))
    missing = _unfinished(results)
    if missing:
        blocks.append(Block("p", f"No finished result (left out of every figure and comparison): {missing}."))
    blocks.append(Block("table", _claim_table(verdict)))
    blocks += [Block("h2", "What was run"),
               Block("table", _run_table(results, config, meta["sessions"], meta.get("reused", [])))]

    blocks.append(Block("h2", "Error against number of measurements"))
    error_fig = figures.error_vs_m(summary)
    if error_fig is None:
        blocks.append(Block("p", "No prior has a finished result with a positive error: nothing to draw."))
    else:
        blocks.append(Block("figure", ("error_vs_m", error_fig),
                            "Mean per-pixel MSE with bootstrap 95% CI bands, one line per prior."))
    if not summary.empty:
        blocks.append(Block("table", _mse_table(summary)))
    blocks += _savings_blocks(results, summary, verdict)
    noise_fig = figures.noise_sweep(summary, None)
    if noise_fig is not None:
        blocks.append(Block("h2", "Noise sweep"))
        blocks.append(Block("figure", ("noise_sweep", noise_fig), "MSE against noise level sigma."))
    grid = _reconstructions(recons, results)
    if grid is not None:
        blocks.append(Block("h2", "Reconstructions"))
        blocks.append(Block("figure", ("reconstructions", grid), "Top row: test images; then each prior at a few m."))
    speed = figures.seconds_vs_error(summary)
    if speed is not None:
        blocks.append(Block("h2", "Speed"))
        blocks.append(Block("figure", ("seconds_vs_error", speed),
                            "Seconds per image (batched recovery, this machine) against MSE."))
    blocks += _experiment_blocks(experiments)
    blocks += _detail_blocks(results, tuning)
    if comparison is not None:
        blocks.append(Block("h2", f"Changes against {against}"))
        blocks.append(Block("p", comparison_summary(comparison)))
        table = comparison_table(comparison)
        if not table.empty:
            blocks.append(Block("table", table))
    return blocks


def _unfinished(results: pd.DataFrame) -> str:
    """The priors without one finished result (ok status, finite MSE), with why: '`x` (3 failed: boom)'."""
    finished = set(ok_rows(results)["prior"])
    parts = []
    for prior, rows in results[~results["prior"].isin(finished)].groupby("prior", sort=True):
        counts = rows["status"].value_counts()
        why = ", ".join(f"{n} {status}" for status, n in counts.items())
        errors = rows.loc[rows["error"].fillna("") != "", "error"]
        first = f": {str(errors.iloc[0]).splitlines()[0][:160]}" if len(errors) else (
            ": no finite error" if "ok" in counts else "")
        parts.append(f"`{prior}` ({why}{first})")
    return "; ".join(parts)


def _claim_table(verdict: dict) -> pd.DataFrame:
    """The claim's comparisons side by side, with the rule of each."""
    rows = []
    for name, record in [("as published", verdict), *((c, verdict.get(c) or {}) for c in COMPARISONS)]:
        if not record:
            continue
        lo, hi = record.get("ratio_ci") or (None, None)
        ratio = record.get("ratio")
        rows.append({
            "comparison": name.replace("_", " "), "generative": record.get("generative_prior") or "-",
            "baseline": record.get("sparsity_prior") or "-", "target MSE": _g(record.get("target_mse")),
            "m": f"{_g(record.get('m_generative'), '.0f')} vs {_g(record.get('m_sparsity'), '.0f')}",
            "saving": (f"{ratio:.2f}x [{_g(lo, '.2f')}, {_g(hi, '.2f')}]" if ratio is not None else
                       f">= {record['ratio_at_least']:.2f}x" if record.get("ratio_at_least") else "-"),
            "reproduced": record.get("reproduced"),
            "rule": f"{record.get('comparison_rule', '')}; {record.get('target_rule', '')}"})
    return pd.DataFrame(rows)


def _g(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _savings_blocks(results: pd.DataFrame, summary: pd.DataFrame, verdict: dict) -> list[Block]:
    """The savings figures (one curve per baseline family; every pair of the claim's group) and the
    pair table at the comparison points."""
    families = {family: savings_curve(results, family=family) for family in FAMILIES}
    title = Block("h2", "Measurement savings of the generative prior")
    fig = figures.savings_figure(families, headline=verdict)
    if fig is None:
        return [title, Block("p", "No savings: they need a finished generative prior and a finished prior "
                             "of another kind, on shared test images.")]
    blocks = [title, Block("figure", ("savings", fig),
                           "m_baseline / m_generative against the target MSE for the best generative prior and "
                           "the best prior of each family (tuned Lasso; any non-generative kind, plug-ins "
                           "included), with paired-bootstrap 95% CI bands; the paper's 5-10x band is shaded.")]
    pairs = families["non-generative"]
    group = _group(pairs, verdict)
    pair_fig = figures.savings_pairs(group, figures.prior_styles(summary)) if not group.empty else None
    if pair_fig is not None:
        blocks.append(Block("figure", ("savings_pairs", pair_fig),
                            "Every (generative, non-generative) pair of the claim's dataset, measurement and "
                            "noise: m_baseline / m_generative against the target MSE."))
    if verdict.get("target_mse") is not None:
        blocks.append(Block("p", "Every (generative, non-generative) pair at the comparison targets and at twice "
                            "each generative prior's own error floor (the paper's comparison point): m needed, "
                            "ratio with paired-bootstrap 95% CI; NaN = not reached on the grid."))
        blocks.append(Block("table", _pair_table(results, verdict)))
    return blocks


def _group(frame: pd.DataFrame, verdict: dict) -> pd.DataFrame:
    """The rows of `frame` in the claim's (dataset, measurement, noise) group."""
    if verdict.get("noise") is None or frame.empty:
        return frame.iloc[:0]
    return frame[(frame.dataset == verdict["dataset"]) & (frame.measurement == verdict["measurement"])
                 & np.isclose(frame.noise.astype(float), verdict["noise"])]


def _run_table(results: pd.DataFrame, config: dict, sessions: list[dict], reused: list[dict]) -> pd.DataFrame:
    """The run's settings, the machines that computed its tasks, and the tasks copied from other runs
    (`compare --reuse`) with the machines that computed those."""
    rows = [("preset", config.get("preset")), ("dataset", ", ".join(results.dataset.unique())),
            ("measurement", ", ".join(results.measurement.unique())),
            ("priors", ", ".join(results.prior.unique())),
            ("m grid", ", ".join(str(m) for m in sorted(results.m.unique()))),
            ("noise sigma", ", ".join(str(s) for s in sorted(results.noise.unique()))),
            ("test images per task", config.get("n_images")),
            ("validation images for tuning", config.get("n_validation")),
            ("seeds", config.get("seeds"))]
    rows += [(f"ran on ({i})" if len(sessions) > 1 else "ran on", _session_text(session))
             for i, session in enumerate(sessions, 1)]
    rows += [("reused from", f"{entry['from']}: {len(entry['tasks'])} tasks"
              + "".join(f", experiment {name}" for name in entry["experiments"]) + ", computed there on "
              + ("; ".join(map(_session_text, entry["sessions"])) if entry.get("sessions") else "unrecorded machines"))
             for entry in reused]
    return pd.DataFrame(rows, columns=["setting", "value"])


def _session_text(session: dict) -> str:
    """One machine's share of a run: device, platform, versions, and the work it completed."""
    device = session.get("device", "cpu") + (f" ({session['accelerator']})" if session.get("accelerator") else "")
    work = ("interrupted" if "tasks" not in session else
            f"{session['tasks']} tasks" + (f", experiments {', '.join(session['experiments'])}"
                                          if session.get("experiments") else ""))
    pool = f", {session['executor']} executor, {session['workers']} workers" if "executor" in session else ""
    return (f"{device}; {session.get('platform')}, {session.get('threads')} threads{pool}; "
            f"csbench {session.get('csbench')}, torch {session.get('torch')}, python {session.get('python')}: {work}")


def _mse_table(summary: pd.DataFrame) -> pd.DataFrame:
    cell = summary.assign(cell=[f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in
                                zip(summary.mse_mean, summary.mse_ci_low, summary.mse_ci_high)])
    table = cell.pivot_table(index="prior", columns="m", values="cell", aggfunc="first")
    table.columns = [f"m={m}" for m in table.columns]
    return table.reset_index()


def _pair_table(results: pd.DataFrame, verdict: dict) -> pd.DataFrame:
    """Every (generative, non-generative) pair at the claim's targets and at twice each generative
    prior's own floor."""
    group = _group(results, verdict)
    floors = error_floors(group, "generative")
    claimed = [verdict.get("target_mse"), *((verdict.get(c) or {}).get("target_mse") for c in COMPARISONS)]
    targets = sorted({*(t for t in claimed if t is not None), *(2 * floors.to_numpy())})
    pairs = savings_curve(group, targets).sort_values(["target", "generative_prior", "sparsity_prior"])
    reached = pairs.generative_reached & pairs.sparsity_reached
    return pd.DataFrame({
        "target MSE": pairs.target.map(lambda t: f"{t:.4g}"), "generative": pairs.generative_prior,
        "baseline": pairs.sparsity_prior, "m generative": pairs.m_generative.round(1),
        "m baseline": pairs.m_sparsity.round(1),
        "ratio": [f"{r:.2f}" if ok else "not reached" for r, ok in zip(pairs.ratio, reached)],
        "95% CI": [f"[{lo:.2f}, {hi:.2f}]" if ok else "" for lo, hi, ok in
                   zip(pairs.ratio_ci_low, pairs.ratio_ci_high, reached)]})


def _reconstructions(recons: pd.DataFrame, results: pd.DataFrame):
    """The grid of stored reconstructions (keyed by the m asked for, as tasks are), labelled with
    the m actually measured, as every other table and figure is (some models snap m)."""
    truth = recons[recons.prior == "truth"].sort_values("instance")
    rest = recons[recons.prior != "truth"]
    if truth.empty or rest.empty:
        return None
    asked = results["m_requested"] if "m_requested" in results else results["m"]
    measured = dict(zip(zip(results["prior"], asked), results["m"]))
    grid = sorted(rest.m.unique())  # quartiles of the grid: its ends show all-fail / all-exact rows
    shown_m = sorted({grid[len(grid) // 4], grid[len(grid) // 2], grid[3 * len(grid) // 4]})
    rows = {f"{prior} m={measured.get((prior, m), m)}": np.stack(group.sort_values("instance").image.to_list())
            for (prior, m), group in rest[rest.m.isin(shown_m)].groupby(["prior", "m"], sort=True)}
    shown = min(len(truth), *(len(images) for images in rows.values()))
    return figures.reconstruction_grid(np.stack(truth.image.to_list())[:shown],
                                       {label: images[:shown] for label, images in rows.items()})


def _experiment_blocks(experiments: dict[str, pd.DataFrame]) -> list[Block]:
    if not experiments:
        return []
    from csbench.experiments.figures import experiment_report

    blocks = [Block("h2", "Theory experiments")]
    for name, table in sorted(experiments.items()):
        text, figs = experiment_report(name, table)
        blocks.append(Block("p", text))
        blocks += [Block("figure", (f"{name}_{i}" if len(figs) > 1 else name, fig)) for i, fig in enumerate(figs)]
    return blocks


def _detail_blocks(results: pd.DataFrame, tuning: pd.DataFrame) -> list[Block]:
    blocks = [Block("h2", "Details")]
    tuned = results[results.status == "ok"].groupby(["prior", "m"])["params"].first().reset_index()
    blocks.append(Block("p", "Parameters used per (prior, m): tuned on the validation split where "
                        "the prior declares a tuning grid, else the prior's fixed (paper) values."))
    blocks.append(Block("table", tuned))
    if not tuning.empty:
        blocks.append(Block("h2", "Tuning"))
        blocks.append(Block("p", "Mean validation MSE of every grid point (averaged over seeds; failed = the "
                            "point failed), per prior and m; `*` marks the chosen point. A value chosen at "
                            "the edge of its grid may be bettered outside it."))
        warnings = edge_warnings(tuning)
        if warnings:
            blocks.append(Block("p", "**Warning: chosen at the edge of the grid.** " + "; ".join(warnings) + "."))
        blocks.append(Block("table", tuning_table(tuning)))
    models = _trained_models(results)
    if not models.empty:
        blocks.append(Block("p", "Trained generators of this dataset (committed checkpoints). The "
                            "representation error min_z ||G(z) - x||^2 / n on held-out images is the "
                            "floor below which a generative prior's error cannot go."))
        blocks.append(Block("table", models))
    from csbench.metrics import CONVENTIONS  # here: the metrics import PyTorch, a report needs it only now

    links = sorted(set(results.measurement))
    conventions = [f"{link}: {text}" for link, text in CONVENTIONS.items()]
    blocks.append(Block("p", "Metrics: per-pixel MSE on the [0, 1] scale (the paper's metric), PSNR, "
                        f"SSIM. Measurements in this run: {', '.join(links)}. Conventions by link: "
                        + "; ".join(conventions)))
    bad = results[results.status != "ok"].drop_duplicates(["prior", "m", "noise", "status", "error"])
    if not bad.empty:
        blocks.append(Block("p", "Tasks that did not produce results:"))
        blocks.append(Block("table", bad[["prior", "m", "noise", "status", "error"]]))
    return blocks


def _trained_models(results: pd.DataFrame) -> pd.DataFrame:
    from csbench.generative.zoo import catalogue

    rows = [{"model": m["model"], "dataset": m["dataset"], "latent k": m.get("latent_dim"),
             "epochs": m.get("epochs"), "training images": m.get("n_train"),
             "representation error": m.get("representation_error")}
            for m in catalogue() if m["dataset"] in set(results.dataset)]
    return pd.DataFrame(rows)


# -- rendering -------------------------------------------------------------------------------------
def _markdown(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        if b.kind == "h1":
            parts.append(f"# {b.content}")
        elif b.kind == "h2":
            parts.append(f"## {b.content}")
        elif b.kind == "p":
            parts.append(str(b.content))
        elif b.kind == "table":
            parts.append(_md_table(b.content))
        elif b.kind == "figure":
            name = b.content[0]
            parts.append(f"![{name}](figures/{name}.png)" + (f"\n\n*{b.caption}*" if b.caption else ""))
    return "\n\n".join(parts) + "\n"


def _md_table(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda value: str(value).replace("|", "\\|"))
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    return "\n".join([header, rule, *("| " + " | ".join(r) + " |" for r in cells.to_numpy())])


def _html(blocks: list[Block], pngs: dict[str, bytes]) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html.escape(str(b.content))}</{b.kind}>")
        elif b.kind == "p":
            text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(str(b.content)))
            body.append(f"<p>{text}</p>")
        elif b.kind == "table":
            body.append(b.content.to_html(index=False, border=0, classes="table"))
        elif b.kind == "figure":
            name = b.content[0]
            data = base64.b64encode(pngs[name]).decode()
            body.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
             "color:#222}table{border-collapse:collapse;font-size:.85em;margin:1em 0}"
             "td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}"
             "img{max-width:100%}figcaption{font-size:.85em;color:#555}")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>csbench report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
